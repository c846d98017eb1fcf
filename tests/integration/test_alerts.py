"""Alerts end to end on real servers: client mail into Dovecot -> sync -> one alert in the
owner's mailbox with quoted evidence -> owner replies SNOOZE -> no further alert."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select

from service.pipeline import live_pass
from service.store.models import ClientState, CommandLog, OutboxMessage
from service.workflows.alerts import parse_snooze
from tests.integration.test_outbox_env import CLIENT, OWNER, SERVICE, Env, open_env
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration

CALM = [
    "Hi Olga, thanks for the draft, it looks good. Could you send the final files?",
    "Thanks a lot, the team loves the new colours.",
    "Great work, thank you. Let's talk next week about phase two.",
]
ANGRY = [
    "This is the third time I have asked you to fix the footer. Unacceptable.",
    "Honestly this is still not what we asked for. Another round, and it needs to be "
    "done by tomorrow morning.",
    "We will not pay the invoice until this is fixed, and I expect a discount for the delays.",
    "I am copying our CEO. If this is not resolved this week we will have to escalate and "
    "talk to our lawyer about the contract.",
    "Your team keeps ignoring our feedback. This is a waste of our time and money.",
]


@pytest.fixture
def env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from open_env(dovecot, tmp_path, monkeypatch)


def client_mail(n: int, body: str, when: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Ana <{CLIENT}>"
    msg["To"] = SERVICE
    msg["Subject"] = "Website relaunch"
    msg["Message-ID"] = f"<client{n}@acme.test>"
    msg["Date"] = format_datetime(when)
    msg.set_content(body)
    return msg.as_bytes()


def alerts_for_owner(env: Env) -> list[EmailMessage]:
    return [m for m in env.inbox(OWNER) if "Acme" in str(m["Subject"])
            and "Re:" not in str(m["Subject"])]


def test_one_alert_with_evidence_then_snooze_stops_further_alerts(env: Env) -> None:
    now = datetime.now(UTC)
    for i, body in enumerate(CALM):
        env.dovecot.deliver(SERVICE, client_mail(i, body, now - timedelta(days=60 - i)))
    first = live_pass(env.settings, env.store)
    assert first["stored"] == 3
    assert alerts_for_owner(env) == []  # healthy backfill: nothing to say

    for i, body in enumerate(ANGRY, start=10):
        env.dovecot.deliver(SERVICE, client_mail(i, body, now - timedelta(days=5, hours=-i)))
    live_pass(env.settings, env.store)
    [alert] = alerts_for_owner(env)
    with env.store.session() as session:
        state = session.get(ClientState, "Acme")
        assert state is not None and state.state in {"at_risk", "unhealthy"}
        assert state.episode_open
    text = alert.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Unacceptable" in text or "lawyer" in text or "discount" in text  # quoted evidence
    assert alert.get_body(("html",)) is not None
    assert alert["Reply-To"].startswith("team+")

    # the same state on the next pass: still exactly one alert (one per episode)
    live_pass(env.settings, env.store)
    assert len(alerts_for_owner(env)) == 1

    # the owner replies SNOOZE 30d through the real SMTP server (our A-R stamped)
    reply = EmailMessage()
    reply["From"] = OWNER
    reply["To"] = alert["Reply-To"]
    reply["Subject"] = "Re: " + str(alert["Subject"])
    reply["Message-ID"] = make_msgid(domain="northwind.test")
    reply["In-Reply-To"] = alert["Message-ID"]
    reply["References"] = f"{alert['References']} {alert['Message-ID']}"
    reply.set_content("SNOOZE 30d\n\nOn Mon, saygoodbye wrote:\n> Acme looks unhealthy\n")
    smtp = env.smtp
    asyncio.run(aiosmtplib.send(reply, hostname=smtp.host, port=smtp.port,
                                username=smtp.username, password=smtp.password,
                                use_tls=False, start_tls=False))
    live_pass(env.settings, env.store)
    with env.store.session() as session:
        [logged] = session.scalars(select(CommandLog)).all()
        assert logged.accepted and logged.command == "SNOOZE", logged.reason
        state = session.get(ClientState, "Acme")
        assert state is not None and state.snoozed_until is not None
        assert state.snoozed_until > now + timedelta(days=29)
    confirmations = [m for m in env.inbox(OWNER) if str(m["Subject"]).startswith("Re:")]
    assert len(confirmations) == 1

    # more angry mail while snoozed: no further alert
    for i, body in enumerate(ANGRY, start=30):
        env.dovecot.deliver(SERVICE, client_mail(i, body, now - timedelta(hours=40 - i)))
    live_pass(env.settings, env.store)
    assert len(alerts_for_owner(env)) == 1
    with env.store.session() as session:
        kinds = [r.kind for r in session.scalars(select(OutboxMessage))]
    assert kinds.count("alert") == 1


def test_backfill_of_a_troubled_client_is_summarised_not_alerted(env: Env) -> None:
    now = datetime.now(UTC)
    for i, body in enumerate(ANGRY):
        env.dovecot.deliver(SERVICE, client_mail(i, body, now - timedelta(days=3, hours=-i)))
    live_pass(env.settings, env.store)
    with env.store.session() as session:
        kinds = [r.kind for r in session.scalars(select(OutboxMessage))]
    assert "alert" not in kinds and kinds.count("alert_summary") == 1
    [summary] = [m for m in env.inbox(OWNER) if "first read" in str(m["Subject"])]
    assert "Acme" in summary.get_body(("plain",)).get_content()  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "days"), [("", 30), ("30d", 30), ("2 weeks", 14),
                                            ("7 days", 7), ("1w", 7)])
def test_snooze_durations(text: str, days: int) -> None:
    assert parse_snooze(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["forever", "0d", "400d", "soon"])
def test_bad_snooze_durations(text: str) -> None:
    assert parse_snooze(text) is None

"""Email commands end to end: request out through SMTP, owner reply back, act once or refuse."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import select

from service.mail.compose import compose
from service.store.models import CommandLog, CommandToken, OutboxMessage
from service.workflows import approvals, outbox
from service.workflows.approvals import CommandContext, CommandResult
from service.workflows.outbox import SendPolicy
from tests.integration.test_outbox_env import (
    CLIENT,
    OTHER_OWNER,
    OWNER,
    SERVICE,
    Env,
    open_env,
    parse,
)
from tests.rig.dovecot import Dovecot
from tests.rig.smtp import SmtpServer

pytestmark = pytest.mark.integration

FAST = SendPolicy(backoff_base=timedelta(0), backoff_cap=timedelta(0))
PURPOSE = "testdraft"
ACTED: list[tuple[str, str, str]] = []
REFUSE_NEXT: list[str] = []


def _approve(ctx: CommandContext) -> CommandResult:
    if REFUSE_NEXT:
        return CommandResult(False, REFUSE_NEXT.pop())
    ACTED.append((ctx.command, ctx.subject_id, ctx.owner))
    return CommandResult(True, f"draft {ctx.subject_id} approved")


approvals.register_command("APPROVE", _approve, purposes=(PURPOSE,))
approvals.register_command("CANCEL", _approve, purposes=(PURPOSE,))
_CURRENT_VERSION: dict[str, int] = {}
approvals.register_version_check(PURPOSE, lambda session, sid: _CURRENT_VERSION.get(sid))


@pytest.fixture
def env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    ACTED.clear()
    REFUSE_NEXT.clear()
    _CURRENT_VERSION.clear()
    yield from open_env(dovecot, tmp_path, monkeypatch)


def request(env: Env, *, owner: str = OWNER, subject_id: str = "7", version: int = 1,
            now: datetime | None = None) -> EmailMessage:
    """Queue and send an approval request; return it as the owner received it."""
    with env.store.session() as session:
        token = approvals.issue_token(session, env.settings, owner=owner, purpose=PURPOSE,
                                      subject_id=subject_id, version=version, now=now)
        headers = approvals.reply_headers(env.settings, token,
                                          parent_message_id="<client-1@acme.test>")
        msg = compose(from_addr=SERVICE, to=[owner], subject=f"Approve farewell {subject_id}?",
                      text="Reply APPROVE or CANCEL.\n", **headers)  # type: ignore[arg-type]
        outbox.queue(session, env.settings, msg, kind="approval_request", owner=owner, now=now)
    outbox.send_due(env.settings, env.store, policy_=FAST)
    received = [m for m in env.inbox(owner) if m["Subject"] == f"Approve farewell {subject_id}?"]
    assert received, "the request did not arrive"
    return received[-1]


def reply_to(received: EmailMessage, *, sender: str = OWNER, text: str = "APPROVE",
             extra: dict[str, str] | None = None, to: str | None = None,
             smtp: SmtpServer) -> bytes:
    """Reply as a mail client does, through the real SMTP server; return what it relayed."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = to or received["Reply-To"]
    reply["Subject"] = "Re: " + received["Subject"]
    reply["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    reply["In-Reply-To"] = received["Message-ID"]
    reply["References"] = f"{received['References']} {received['Message-ID']}"
    for name, value in (extra or {}).items():
        reply[name] = value
    body = received.get_body(("plain",))
    assert body is not None
    quoted = "\n".join("> " + line for line in body.get_content().splitlines())
    reply.set_content(f"{text}\n\nOn Wed, Northwind <{SERVICE}> wrote:\n{quoted}\n")
    asyncio.run(aiosmtplib.send(reply, hostname=smtp.host, port=smtp.port,
                                username=smtp.username, password=smtp.password,
                                use_tls=False, start_tls=False))
    relayed = [a for a in smtp.accepted if a.message_id == reply["Message-ID"]]
    assert len(relayed) == 1
    return relayed[0].raw


def log_rows(env: Env) -> list[CommandLog]:
    with env.store.session() as session:
        return list(session.scalars(select(CommandLog).order_by(CommandLog.id)))


def owner_mail(env: Env, owner: str, prefix: str) -> list[EmailMessage]:
    outbox.send_due(env.settings, env.store, policy_=FAST)
    return [m for m in env.inbox(owner) if m["Subject"].startswith(prefix)]


def test_genuine_reply_is_acted_on_once_and_confirmed_in_thread(env: Env) -> None:
    received = request(env)
    assert received["Reply-To"].startswith("team+")
    raw = reply_to(received, smtp=env.smtp)
    assert raw.startswith(b"Authentication-Results: mx.northwind.test; dkim=pass")
    assert approvals.is_command_reply(env.settings, raw)
    outcome = approvals.process_reply(env.settings, env.store, raw)
    assert outcome.accepted, outcome.reason
    assert ACTED == [("APPROVE", "7", OWNER)]
    confirmations = owner_mail(env, OWNER, "Re: Approve")
    assert len(confirmations) == 1
    assert "draft 7 approved" in confirmations[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert confirmations[0]["In-Reply-To"] == parse(raw)["Message-ID"]
    # in the thread, but a reply to the confirmation is not a new answer
    assert "@token." not in confirmations[0]["References"]
    assert parse(raw)["Message-ID"] in confirmations[0]["References"]
    # the same reply seen again (resync) does nothing
    again = approvals.process_reply(env.settings, env.store, raw)
    assert again.duplicate and ACTED == [("APPROVE", "7", OWNER)]
    [logged] = log_rows(env)
    assert logged.accepted and logged.command == "APPROVE"
    with env.store.session() as session:
        token = session.scalars(select(CommandToken)).one()
        assert token.used_at is not None and len(token.token_hash) == 64


def test_replayed_token_in_a_new_message_is_refused_and_the_owner_told(env: Env) -> None:
    received = request(env)
    approvals.process_reply(env.settings, env.store, reply_to(received, smtp=env.smtp))
    second = approvals.process_reply(
        env.settings, env.store, reply_to(received, text="CANCEL", smtp=env.smtp)
    )
    assert not second.accepted and "already answered" in second.reason
    assert ACTED == [("APPROVE", "7", OWNER)]
    rejections = owner_mail(env, OWNER, "Not done:")
    assert len(rejections) == 1
    assert "already answered" in rejections[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_reply_without_plus_addressing_uses_the_reference_token(env: Env) -> None:
    received = request(env)
    outcome = approvals.process_reply(
        env.settings, env.store, reply_to(received, to=SERVICE, smtp=env.smtp)
    )
    assert outcome.accepted, outcome.reason


def test_wrong_sender_is_refused_and_only_the_real_owner_is_told(env: Env) -> None:
    received = request(env)
    outcome = approvals.process_reply(
        env.settings, env.store, reply_to(received, sender="mallory@evil.test", smtp=env.smtp)
    )
    assert not outcome.accepted and "mallory@evil.test" in outcome.reason
    assert outcome.notified == OWNER
    assert ACTED == []
    assert len(owner_mail(env, OWNER, "Not done:")) == 1


def test_token_issued_to_another_owner_is_refused(env: Env) -> None:
    received = request(env, owner=OTHER_OWNER)
    outcome = approvals.process_reply(env.settings, env.store,
                                      reply_to(received, sender=OWNER, smtp=env.smtp))
    assert not outcome.accepted and f"made to {OTHER_OWNER}" in outcome.reason
    assert ACTED == []


def test_expired_token_is_refused(env: Env) -> None:
    received = request(env, now=datetime.now(UTC) - timedelta(hours=25))
    outcome = approvals.process_reply(env.settings, env.store, reply_to(received, smtp=env.smtp))
    assert not outcome.accepted and "expired" in outcome.reason
    assert ACTED == []


def test_token_for_an_older_draft_version_is_refused(env: Env) -> None:
    received = request(env, version=1)
    _CURRENT_VERSION["7"] = 2
    outcome = approvals.process_reply(env.settings, env.store, reply_to(received, smtp=env.smtp))
    assert not outcome.accepted and "version 1" in outcome.reason


def test_garbled_and_missing_tokens_are_refused(env: Env) -> None:
    received = request(env)
    garbled = reply_to(received, to="team+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@northwind.test",
                       smtp=env.smtp)
    garbled = garbled.replace(b"@token.northwind.test", b"@token.elsewhere.test")
    outcome = approvals.process_reply(env.settings, env.store, garbled)
    assert not outcome.accepted and "unknown or garbled" in outcome.reason
    assert outcome.notified == OWNER  # a known owner wrote: tell them
    assert ACTED == []


def test_auto_reply_carrying_the_token_is_ignored_silently(env: Env) -> None:
    received = request(env)
    raw = reply_to(received, extra={"Auto-Submitted": "auto-replied"}, smtp=env.smtp)
    outcome = approvals.process_reply(env.settings, env.store, raw)
    assert not outcome.accepted and outcome.notified is None
    assert ACTED == [] and owner_mail(env, OWNER, "Not done:") == []
    assert [r.accepted for r in log_rows(env)] == [False]


def test_failing_or_foreign_authentication_is_refused(
    env: Env, dovecot: Dovecot
) -> None:
    received = request(env)
    with SmtpServer(dovecot, authserv_id="mx.northwind.test", dkim="fail") as failing:
        raw = reply_to(received, smtp=failing)
    outcome = approvals.process_reply(env.settings, env.store, raw)
    assert not outcome.accepted and "could not be authenticated" in outcome.reason
    with SmtpServer(dovecot, authserv_id="mx.someone-else.test") as foreign:
        raw = reply_to(received, smtp=foreign)
    outcome = approvals.process_reply(env.settings, env.store, raw)
    assert not outcome.accepted and "no Authentication-Results header from" in outcome.reason
    assert ACTED == []


def test_handler_refusal_leaves_the_token_usable(env: Env) -> None:
    received = request(env)
    REFUSE_NEXT.append("pending work must be handed over first")
    first = approvals.process_reply(env.settings, env.store, reply_to(received, smtp=env.smtp))
    assert not first.accepted and "pending work" in first.reason
    second = approvals.process_reply(env.settings, env.store, reply_to(received, smtp=env.smtp))
    assert second.accepted and ACTED == [("APPROVE", "7", OWNER)]


def test_unknown_command_is_refused_with_the_possible_ones(env: Env) -> None:
    received = request(env)
    outcome = approvals.process_reply(env.settings, env.store,
                                      reply_to(received, text="Sure, go ahead", smtp=env.smtp))
    assert not outcome.accepted
    assert "APPROVE" in outcome.reason and "CANCEL" in outcome.reason


# -- RESEND / DROP of uncertain outbox messages -------------------------------------


def _uncertain(env: Env) -> tuple[int, EmailMessage]:
    msg = compose(from_addr=SERVICE, to=[CLIENT], subject="Goodbye", text="Thanks.\n")
    with env.store.session() as session:
        row_id = outbox.queue(session, env.settings, msg, kind="farewell", client="Acme").id
    env.smtp.drop_next("data")
    report = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert report.asked == [row_id]
    [ask] = [m for m in env.inbox(OWNER) if m["Subject"].startswith("Was it delivered?")]
    return row_id, ask


def _state(env: Env, row_id: int) -> str:
    with env.store.session() as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        return row.state


def test_resend_sends_the_same_message_again(env: Env) -> None:
    row_id, ask = _uncertain(env)
    outcome = approvals.process_reply(env.settings, env.store,
                                      reply_to(ask, text="RESEND", smtp=env.smtp))
    assert outcome.accepted, outcome.reason
    assert _state(env, row_id) == "scheduled"
    outbox.send_due(env.settings, env.store, policy_=FAST)
    assert _state(env, row_id) == "sent"
    assert len(env.raw_inbox(CLIENT)) == 1


def test_drop_leaves_it_and_a_late_resend_is_refused(env: Env) -> None:
    row_id, ask = _uncertain(env)
    assert approvals.process_reply(env.settings, env.store,
                                   reply_to(ask, text="DROP", smtp=env.smtp)).accepted
    assert _state(env, row_id) == "cancelled"
    late = approvals.process_reply(env.settings, env.store,
                                   reply_to(ask, text="RESEND", smtp=env.smtp))
    assert not late.accepted
    outbox.send_due(env.settings, env.store, policy_=FAST)
    assert env.raw_inbox(CLIENT) == []


def test_outbox_commands_do_not_work_on_draft_tokens(env: Env) -> None:
    received = request(env)
    outcome = approvals.process_reply(env.settings, env.store,
                                      reply_to(received, text="RESEND", smtp=env.smtp))
    assert not outcome.accepted and "not a command here" in outcome.reason


def test_our_own_request_is_never_taken_for_a_reply(env: Env) -> None:
    request(env)
    [copy] = env.dovecot.messages(SERVICE, "Sent")  # the request, with its token reference
    assert not approvals.is_command_reply(env.settings, copy)
    outcome = approvals.process_reply(env.settings, env.store, copy)
    assert not outcome.accepted and outcome.notified is None
    assert ACTED == []

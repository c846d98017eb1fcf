"""Offboarding end to end on real servers: Dovecot mailboxes, an SMTP relay stamping our
Authentication-Results, owner replies through the real mailbox and the live pass."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from icalendar import Calendar
from sqlalchemy import select

from service.app import refresh_health
from service.directory import Directory
from service.ingest import Ingestor
from service.mail.imap import sync_once
from service.pipeline import reply_hook
from service.store.models import CommandLog, Draft, Feedback, Offboarding, OutboxMessage
from service.workflows import approvals, offboarding, outbox, pending
from tests.integration.test_outbox_env import (
    CLIENT,
    FAST,
    OWNER,
    SERVICE,
    Env,
    open_env,
    reply_to,
)
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration


@pytest.fixture
def env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from open_env(dovecot, tmp_path, monkeypatch, window="09:00-17:00", days="mon-fri")


# A Monday, 10:00 in Berlin: inside the window.
T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)


def client_mail(env: Env, n: int, body: str, when: datetime, *, subject: str,
                in_reply_to: str | None = None) -> str:
    msg = EmailMessage()
    msg["From"] = f"Ana López <{CLIENT}>"
    msg["To"] = SERVICE
    msg["Subject"] = subject
    msg["Message-ID"] = f"<c{n}@acme.test>"
    msg["Date"] = format_datetime(when)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body)
    env.dovecot.deliver(SERVICE, msg.as_bytes())
    return str(msg["Message-ID"])


def history(env: Env) -> None:
    client_mail(env, 1, "Hi Olga, could you send the homepage mockups?", T0 - timedelta(days=400),
                subject="Website relaunch")
    client_mail(env, 2, "Thanks, they look great.", T0 - timedelta(days=398),
                subject="Re: Website relaunch")
    client_mail(env, 3, "Brochure copy attached, thanks!", T0 - timedelta(days=200),
                subject="Spring brochure")


def sync(env: Env, now: datetime) -> None:
    """The live pass's steps with the clock injected everywhere (owner replies are acted on
    by `answer`, at their own time, and only logged as duplicates here)."""
    with Ingestor(env.store, Directory.from_settings(env.settings),
                  before_store=reply_hook(env.settings, env.store)) as ingestor:
        result = sync_once(env.settings, ingestor)
    refresh_health(env.settings, env.store, now=now)
    offboarding.on_new_messages(env.settings, env.store, list(result.stored_ids), now=now)
    outbox.send_due(env.settings, env.store, now=now, policy_=FAST)
    offboarding.advance(env.settings, env.store, now=now)
    outbox.send_due(env.settings, env.store, now=now, policy_=FAST)


def owner_mail(env: Env, prefix: str) -> list[EmailMessage]:
    return [m for m in env.inbox(OWNER) if str(m["Subject"]).strip().startswith(prefix)]


def latest_request(env: Env, kind_word: str) -> EmailMessage:
    found = [m for m in env.inbox(OWNER) if m["Reply-To"]
             and kind_word in m.get_body(("plain",)).get_content()  # type: ignore[union-attr]
             and "Nothing goes out until you reply" in
             m.get_body(("plain",)).get_content()]  # type: ignore[union-attr]
    assert found, f"no approval request for {kind_word}"
    return found[-1]


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def client_inbox(env: Env, kind: str) -> list[EmailMessage]:
    with env.store.session() as session:
        ids = {r.message_id for r in session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == kind))}
    return [m for m in env.inbox(CLIENT) if m["Message-ID"] in ids]


def answer(env: Env, request: EmailMessage, text: str, now: datetime, **kw: str) -> None:
    """The owner's reply through the real SMTP relay, acted on at `now` (injected clock);
    the later sync sees the same reply in the mailbox and does not act twice."""
    raw = reply_to(request, text=text, smtp=env.smtp, **kw)  # type: ignore[arg-type]
    approvals.process_reply(env.settings, env.store, raw, now=now)
    sync(env, now)


def last_log(env: Env) -> CommandLog:
    with env.store.session() as session:
        row = session.scalars(select(CommandLog).order_by(CommandLog.id.desc())).first()
        assert row is not None
        session.expunge(row)
        return row


def state(env: Env) -> str:
    with env.store.session() as session:
        off = session.scalars(select(Offboarding).order_by(Offboarding.id.desc())).first()
        assert off is not None
        return off.state


def test_full_offboarding_conversation_farewell_feedback(env: Env) -> None:
    history(env)
    sync(env, T0)
    result = offboarding.start(env.settings, env.store, "acme", now=T0)
    assert result["state"] == "proposed"
    outbox.send_due(env.settings, env.store, now=T0, policy_=FAST)

    # 1. the conversation request's approval request, the draft inline
    request = latest_request(env, "conversation request")
    body = text_of(request)
    assert "Hi Ana," in body and "Website relaunch" in body
    assert request.get_body(("html",)) is not None
    answer(env, request, "APPROVE", T0 + timedelta(minutes=5))
    assert last_log(env).accepted, last_log(env).reason
    assert state(env) == "conversation_requested"
    [conv] = client_inbox(env, "conversation_request")
    [ics] = [p for p in conv.iter_attachments() if p.get_content_type() == "text/calendar"]
    cal = Calendar.from_ical(ics.get_content())
    assert str(cal["method"]) == "REQUEST"
    [event] = cal.walk("VEVENT")
    assert str(event["organizer"]) == f"mailto:{OWNER}"
    assert str(event["attendee"]) == f"mailto:{CLIENT}"
    assert event["dtstart"].params["TZID"] == "Europe/Berlin"
    start = event.decoded("dtstart")
    assert 9 <= start.hour < 17 and start.weekday() < 5 and start > T0
    scheduled = owner_mail(env, "Scheduled:")[-1]
    # sending the same pass again sends nothing twice
    sync(env, T0 + timedelta(minutes=6))
    assert len(client_inbox(env, "conversation_request")) == 1

    # 2. the meeting is held: MET with what was agreed -> farewell draft with open work
    client_mail(env, 4, "Could you also send the final logo files by Friday?",
                T0 + timedelta(days=1), subject="Logo files")
    sync(env, T0 + timedelta(days=1, hours=1))
    env_items = pending.list_items(env.settings, env.store, "Acme",
                                   now=T0 + timedelta(days=1, hours=1))
    assert [i["source"] for i in env_items] == ["mailbox"]
    pending.add_item(env.settings, env.store, "Acme", "Hand over the CMS admin access",
                     now=T0 + timedelta(days=2))
    answer(env, scheduled, "MET\nWe finish the brochure and hand over in March.",
           T0 + timedelta(days=2, hours=1))
    assert last_log(env).accepted, last_log(env).reason
    farewell_request = latest_request(env, "farewell")
    body = text_of(farewell_request)
    assert "CMS admin access" in body and "Logo files" in body  # open work listed
    assert "APPROVE ANYWAY" in body
    assert "We finish the brochure" in body  # what was agreed, confirmed in the draft

    # plain APPROVE is refused while work is open; the token stays usable
    answer(env, farewell_request, "APPROVE", T0 + timedelta(days=2, hours=2))
    refusal = last_log(env)
    assert not refusal.accepted and "still open" in (refusal.reason or "")
    answer(env, farewell_request, "APPROVE ANYWAY", T0 + timedelta(days=2, hours=3))
    assert last_log(env).accepted, last_log(env).reason
    with env.store.session() as session:
        draft = session.scalars(select(Draft).where(Draft.kind == "farewell")).one()
        assert draft.override_pending and draft.scheduled_for is not None
        assert draft.scheduled_for == T0 + timedelta(days=2, hours=3)  # window open: now

    # 3. it went in the window (Wed 12:00 Berlin); exactly once; in the client's thread
    [farewell] = client_inbox(env, "farewell")
    assert farewell["In-Reply-To"] == "<c4@acme.test>"
    assert "Ana" in text_of(farewell)
    sync(env, T0 + timedelta(days=3))
    assert len(client_inbox(env, "farewell")) == 1
    assert state(env) == "sent"

    # 4. the feedback request: approved now, leaves feedback_after_days (14) later
    feedback_request = latest_request(env, "feedback request")
    answer(env, feedback_request, "APPROVE", T0 + timedelta(days=3, hours=1))
    assert last_log(env).accepted, last_log(env).reason
    sync(env, T0 + timedelta(days=10))
    assert client_inbox(env, "feedback_request") == []
    sync(env, T0 + timedelta(days=17))
    [asked] = client_inbox(env, "feedback_request")
    assert state(env) == "feedback_requested"

    # 5. the client's answer is kept with the client record
    client_mail(env, 5, "Honestly the brochure process was great; more check-ins would help.",
                T0 + timedelta(days=18), subject="Re: " + str(asked["Subject"]),
                in_reply_to=str(asked["Message-ID"]))
    sync(env, T0 + timedelta(days=18, hours=1))
    with env.store.session() as session:
        [kept] = session.scalars(select(Feedback)).all()
        assert "check-ins" in kept.text and kept.client == "Acme"
        status = offboarding.client_status(session, "Acme")
    assert state(env) == "closed"
    assert status is not None and status["feedback"][0]["text"].startswith("Honestly")


# Friday 18:00 Berlin: after the window closes.
FRIDAY_EVENING = datetime(2030, 3, 8, 17, 0, tzinfo=UTC)


def farewell_pending_approval(env: Env, at: datetime = T0) -> EmailMessage:
    history(env)
    sync(env, at)
    offboarding.start(env.settings, env.store, "Acme", skip_conversation=True, now=at)
    outbox.send_due(env.settings, env.store, now=at, policy_=FAST)
    return latest_request(env, "farewell")


def test_edit_cycle_failing_edit_refused_then_new_version(env: Env) -> None:
    request = farewell_pending_approval(env)
    answer(env, request, "EDIT\nAna,\n\nGiven how the last three rounds went, we stop here.\n",
           T0 + timedelta(minutes=1))
    refused = last_log(env)
    assert not refused.accepted and "fails its checks" in (refused.reason or "")
    good = ("EDIT\nHi Ana,\n\nThank you for the work we did together on the website relaunch; "
            "it has been a real pleasure. As we discussed, our work together will come to a "
            "close at the end of the month.\n\nYour feedback would mean a lot: what could we "
            "have done better?\n\nPlease don't hesitate to reach out if we can ever help in "
            "the future.\n\nWarm regards,\n")
    answer(env, request, good, T0 + timedelta(minutes=2))
    assert last_log(env).accepted, last_log(env).reason
    v2 = latest_request(env, "farewell")
    assert "(version 2)" in text_of(v2)
    # the version-1 request is stale now (its token was used by the EDIT anyway)
    answer(env, v2, "APPROVE", T0 + timedelta(minutes=3))
    assert last_log(env).accepted, last_log(env).reason
    sync(env, T0 + timedelta(minutes=4))
    [sent] = client_inbox(env, "farewell")
    assert "it has been a real pleasure" in text_of(sent)
    assert "Olga" in text_of(sent)  # the signature put back after reply parsing


def test_cancel_after_approval_stops_the_farewell(env: Env) -> None:
    friday_evening = FRIDAY_EVENING  # approved outside the window: waits for Monday 09:00
    request = farewell_pending_approval(env, friday_evening - timedelta(hours=1))
    answer(env, request, "APPROVE", friday_evening)
    assert last_log(env).accepted, last_log(env).reason
    scheduled = owner_mail(env, "Scheduled:")[-1]
    assert "Monday 11 March 2030, 09:00" in text_of(scheduled)
    answer(env, scheduled, "CANCEL", friday_evening + timedelta(hours=1))
    assert last_log(env).accepted, last_log(env).reason
    sync(env, friday_evening + timedelta(days=3))
    assert client_inbox(env, "farewell") == []
    assert state(env) == "cancelled"


def test_new_client_mail_holds_the_farewell_until_confirmed(env: Env) -> None:
    friday_evening = FRIDAY_EVENING
    request = farewell_pending_approval(env, friday_evening - timedelta(hours=1))
    answer(env, request, "APPROVE", friday_evening)
    assert last_log(env).accepted
    client_mail(env, 9, "One more thing: we loved the brochure. Thanks for everything.",
                friday_evening + timedelta(hours=20), subject="Brochure")
    sync(env, friday_evening + timedelta(days=1))
    [held] = owner_mail(env, "Held:")
    assert "we loved the brochure" in text_of(held)
    with env.store.session() as session:
        [row] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "farewell"))
        assert row.state == "cancelled" and (row.error or "").startswith("held")
        assert session.scalars(select(Offboarding)).one().held_reason
    assert "held" in [d["draft_state"] for d in offboarding.drafts_listing(
        env.settings, env.store, now=friday_evening + timedelta(days=1))]
    answer(env, held, "CONFIRM", friday_evening + timedelta(days=1, hours=1))
    assert last_log(env).accepted, last_log(env).reason
    sync(env, friday_evening + timedelta(days=2))  # Sunday: still waiting for the window
    assert client_inbox(env, "farewell") == []
    sync(env, friday_evening + timedelta(days=2, hours=17))  # Monday 10:00
    sync(env, friday_evening + timedelta(days=2, hours=18))
    [sent] = client_inbox(env, "farewell")
    assert sent["Subject"] and state(env) == "sent"


def test_forged_and_stale_replies_are_refused(env: Env) -> None:
    request = farewell_pending_approval(env)
    # wrong sender (the client pretending to be the owner)
    answer(env, request, "APPROVE", T0 + timedelta(minutes=1), sender=CLIENT)
    forged = last_log(env)
    assert not forged.accepted and "sent by" in (forged.reason or "")
    # a new version makes the first request's token stale
    with env.store.session() as session:
        draft = session.scalars(select(Draft)).one()
        session.add(Draft(offboarding_id=draft.offboarding_id, kind="farewell", version=2,
                          subject=draft.subject, text=draft.text, html=draft.html,
                          guardrails=draft.guardrails, state="awaiting_approval", meta=draft.meta,
                          created_at=T0))
    answer(env, request, "APPROVE", T0 + timedelta(minutes=2))
    stale = last_log(env)
    assert not stale.accepted and "version 1" in (stale.reason or "")
    sync(env, T0 + timedelta(hours=1))
    assert client_inbox(env, "farewell") == []

"""The outbox against real servers: exactly one copy, retries, failures, uncertain sends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from service.errors import UsageError
from service.mail.compose import compose
from service.store.models import CommandToken, Event, OutboxMessage
from service.workflows import outbox
from service.workflows.outbox import SendPolicy
from tests.integration.test_outbox_env import (
    CLIENT,
    OWNER,
    SERVICE,
    Env,
    make_settings,
    open_env,
    parse,
)
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration

FAST = SendPolicy(backoff_base=timedelta(seconds=0), backoff_cap=timedelta(seconds=0),
                  max_attempts=3)


@pytest.fixture
def env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from open_env(dovecot, tmp_path, monkeypatch)


def farewell(env: Env, **kwargs: object) -> int:
    msg = compose(
        from_addr=f"Northwind <{SERVICE}>",
        to=[CLIENT],
        subject="Thank you, and goodbye",
        text="Dear Ana,\nthank you for the work together.\n.\nA line with a dot above.\n",
        html="<p>Dear Ana,</p><p>thank you.</p>",
        in_reply_to="<thread-2@acme.test>",
        references=["<thread-1@acme.test>", "<thread-2@acme.test>"],
        domain="northwind.test",
    )
    with env.store.session() as session:
        row = outbox.queue(session, env.settings, msg, kind="farewell", client="Acme",
                           **kwargs)  # type: ignore[arg-type]
        return row.id


def row(env: Env, row_id: int) -> OutboxMessage:
    with env.store.session() as session:
        found = session.get(OutboxMessage, row_id)
        assert found is not None
        return found


def test_send_delivers_exactly_one_copy_with_headers_threading_crlf_and_sent_copy(
    env: Env,
) -> None:
    row_id = farewell(env)
    report = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert report.sent == [row_id]
    sent = row(env, row_id)
    assert sent.state == "sent" and sent.sent_at is not None and sent.saved_to_sent
    assert sent.raw.count(b"\n") == sent.raw.count(b"\r\n")  # frozen with CRLF only

    raws = env.raw_inbox(CLIENT)
    assert len(raws) == 1
    msg = parse(raws[0])
    assert msg["Message-ID"] == sent.message_id
    assert sent.message_id.endswith("@northwind.test>")
    assert msg["In-Reply-To"] == "<thread-2@acme.test>"
    assert msg["References"].split() == ["<thread-1@acme.test>", "<thread-2@acme.test>"]
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    assert text is not None
    assert ".\nA line with a dot above." in text.get_content().replace("\r\n", "\n")
    # delivered bytes equal the frozen bytes (below the relay's added headers)
    assert sent.raw in raws[0].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert env.smtp.delivered_count(sent.message_id) == 1

    copies = env.sent()
    assert [c["Message-ID"] for c in copies] == [sent.message_id]
    # a second pass sends nothing again
    assert outbox.send_due(env.settings, env.store, policy_=FAST).sent == []
    assert len(env.raw_inbox(CLIENT)) == 1


def test_auto_mode_does_not_duplicate_a_copy_the_provider_filed(
    env: Env, tmp_path: Path
) -> None:
    settings = make_settings(env.dovecot, env.smtp, env.store.url, save_to_sent="auto")
    env.settings = settings
    row_id = farewell(env)
    # the provider already filed it (as Gmail does): auto must see it and not APPEND
    env.dovecot.append(SERVICE, row(env, row_id).raw, folder="Sent")
    outbox.send_due(env.settings, env.store, policy_=FAST)
    assert len(env.sent()) == 1
    assert row(env, row_id).saved_to_sent


def test_never_mode_keeps_no_copy(env: Env) -> None:
    env.settings = make_settings(env.dovecot, env.smtp, env.store.url, save_to_sent="never")
    row_id = farewell(env)
    outbox.send_due(env.settings, env.store, policy_=FAST)
    assert row(env, row_id).state == "sent"
    assert env.sent() == []


@pytest.mark.parametrize("code", [421, 451])
def test_4xx_is_retried_and_delivered_once(env: Env, code: int) -> None:
    row_id = farewell(env)
    env.smtp.fail_next("mail" if code == 421 else "data", code)
    first = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert first.retried == [row_id]
    assert row(env, row_id).state == "scheduled"
    assert str(code) in (row(env, row_id).error or "")
    second = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert second.sent == [row_id]
    assert len(env.raw_inbox(CLIENT)) == 1


def test_retry_waits_with_exponential_backoff(env: Env) -> None:
    row_id = farewell(env)
    env.smtp.fail_next("rcpt", 451, count=2)
    slow = SendPolicy(backoff_base=timedelta(minutes=1), backoff_cap=timedelta(hours=1))
    now = datetime.now(UTC)
    outbox.send_due(env.settings, env.store, policy_=slow, now=now)
    first = row(env, row_id).next_attempt_at
    assert first is not None and first - now == timedelta(minutes=1)
    # not due yet: nothing happens
    assert outbox.send_due(env.settings, env.store, policy_=slow, now=now).retried == []
    outbox.send_due(env.settings, env.store, policy_=slow, now=first)
    second = row(env, row_id).next_attempt_at
    assert second is not None and second - first == timedelta(minutes=2)
    assert outbox.send_due(env.settings, env.store, policy_=slow, now=second).sent == [row_id]


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_5xx_fails_with_the_servers_words_and_tells_the_owner(env: Env, stage: str) -> None:
    row_id = farewell(env)
    env.smtp.fail_next(stage, 550, text="5.7.1 mailbox unavailable")  # type: ignore[arg-type]
    report = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert report.failed == [row_id]
    failed = row(env, row_id)
    assert failed.state == "failed"
    assert "550 5.7.1 mailbox unavailable" in (failed.error or "")
    assert env.raw_inbox(CLIENT) == []
    # the notice to the owner is an outbox message like any other
    outbox.send_due(env.settings, env.store, policy_=FAST)
    notices = env.inbox(OWNER)
    assert len(notices) == 1
    assert notices[0]["Subject"].startswith("Not delivered:")
    assert "550 5.7.1" in notices[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # and never retried
    outbox.send_due(env.settings, env.store, policy_=FAST)
    assert env.raw_inbox(CLIENT) == []


def test_drop_before_data_is_retried(env: Env) -> None:
    row_id = farewell(env)
    env.smtp.drop_next("rcpt")
    assert outbox.send_due(env.settings, env.store, policy_=FAST).retried == [row_id]
    assert outbox.send_due(env.settings, env.store, policy_=FAST).sent == [row_id]
    assert len(env.raw_inbox(CLIENT)) == 1


def test_gives_up_after_max_attempts(env: Env) -> None:
    row_id = farewell(env)
    env.smtp.fail_next("mail", 421, count=5)
    for _ in range(3):
        outbox.send_due(env.settings, env.store, policy_=FAST)
    failed = row(env, row_id)
    assert failed.state == "failed" and "gave up after 3 attempts" in (failed.error or "")


def test_unreachable_server_keeps_the_message_scheduled(env: Env) -> None:
    row_id = farewell(env)
    env.smtp.stop()
    report = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert report.retried == [row_id]
    assert row(env, row_id).state == "scheduled"
    with env.store.session() as session:
        assert session.scalars(select(Event).where(Event.component == "outbox")).first()
    env.smtp.start()
    assert outbox.send_due(env.settings, env.store, policy_=FAST).sent == [row_id]


def test_wrong_password_never_sends(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SG_TEST_SMTP_PASSWORD", "wrong")
    row_id = farewell(env)
    report = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert report.retried == [row_id]
    assert "login" in (row(env, row_id).error or "")
    assert "wrong" not in (row(env, row_id).error or "")  # the password is never shown


def test_drop_after_data_is_uncertain_and_the_owner_is_asked(env: Env) -> None:
    row_id = farewell(env)
    env.smtp.drop_next("data")  # the server got the bytes, then the line died
    report = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert report.uncertain == [row_id]
    assert report.asked == [row_id]
    assert row(env, row_id).state == "uncertain"
    # never resent blindly, however often the loop runs
    for _ in range(2):
        outbox.send_due(env.settings, env.store, policy_=FAST)
    assert env.smtp.delivered_count(row(env, row_id).message_id) == 0
    asks = [m for m in env.inbox(OWNER) if m["Subject"].startswith("Was it delivered?")]
    assert len(asks) == 1
    body = asks[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "RESEND" in body and "DROP" in body
    assert re.match(r"team\+[a-z2-7]{32}@northwind\.test", asks[0]["Reply-To"])


def test_uncertain_is_resolved_by_the_sent_folder(env: Env) -> None:
    row_id = farewell(env)
    env.smtp.drop_next("after_delivery")  # delivered, but the 250 never arrived
    env.settings = make_settings(env.dovecot, env.smtp, env.store.url, save_to_sent="never")
    # a provider that files sent mail itself has the copy in Sent
    env.dovecot.append(SERVICE, row(env, row_id).raw, folder="Sent")
    report = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert report.uncertain == [row_id] and report.resolved == [row_id]
    assert row(env, row_id).state == "sent"
    assert env.smtp.delivered_count(row(env, row_id).message_id) == 0  # 250 lost...
    assert len(env.raw_inbox(CLIENT)) == 1  # ...but delivered once
    assert report.asked == []
    with env.store.session() as session:
        assert session.scalars(select(CommandToken)).first() is None


def test_owner_only_mode_delivers_client_mail_to_the_owner_marked(env: Env) -> None:
    env.settings = make_settings(env.dovecot, env.smtp, env.store.url, send_mode="owner-only")
    row_id = farewell(env)
    queued = row(env, row_id)
    assert queued.to_addrs == [OWNER]
    outbox.send_due(env.settings, env.store, policy_=FAST)
    assert env.raw_inbox(CLIENT) == []
    got = env.inbox(OWNER)
    assert len(got) == 1
    assert got[0]["To"] == OWNER  # reply-all cannot reach the client
    assert got[0]["Subject"] == f"[Trial: would go to {CLIENT}] Thank you, and goodbye"
    assert got[0]["X-Saygoodbye-Mode"] == f"owner-only; intended-for={CLIENT}"


def test_client_mail_waits_for_the_window_in_the_clients_zone(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = open_env(dovecot, tmp_path, monkeypatch, window="09:00-17:00", days="mon-fri",
                   client_tz="America/New_York")
    env = next(gen)
    try:
        ny = ZoneInfo("America/New_York")
        saturday = datetime(2026, 11, 28, 12, tzinfo=ny)
        row_id = farewell(env, now=saturday)
        assert row(env, row_id).not_before == datetime(2026, 11, 30, 9, tzinfo=ny)
        # an alert to the owner goes at once, weekend or not
        with env.store.session() as session:
            alert = outbox.queue_notice(session, env.settings, owner=OWNER, kind="alert",
                                        subject="Acme looks unhappy", text="...", now=saturday)
            assert alert.not_before == saturday
        report = outbox.send_due(env.settings, env.store, policy_=FAST, now=saturday)
        assert report.sent == [alert.id]
        monday = datetime(2026, 11, 30, 9, 0, 1, tzinfo=ny)
        assert outbox.send_due(env.settings, env.store, policy_=FAST, now=monday).sent == [row_id]
    finally:
        gen.close()


def test_retry_past_closing_time_waits_for_the_next_opening(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = open_env(dovecot, tmp_path, monkeypatch, window="09:00-17:00", days="mon-fri")
    env = next(gen)
    try:
        berlin = ZoneInfo("Europe/Berlin")
        row_id = farewell(env, now=datetime(2026, 11, 25, 16, 59, tzinfo=berlin))
        late = datetime(2026, 11, 25, 17, 30, tzinfo=berlin)
        report = outbox.send_due(env.settings, env.store, policy_=FAST, now=late)
        assert report.deferred == [row_id]
        assert row(env, row_id).not_before == datetime(2026, 11, 26, 9, tzinfo=berlin)
    finally:
        gen.close()


def test_cancel_and_listing(env: Env) -> None:
    row_id = farewell(env)
    listed = outbox.listing(env.store)
    assert listed[0]["id"] == row_id
    for key in ("id", "kind", "to", "subject", "message_id", "state", "not_before",
                "sent_at", "error"):
        assert key in listed[0]
    assert outbox.cancel(env.store, row_id)["state"] == "cancelled"
    assert outbox.send_due(env.settings, env.store, policy_=FAST).sent == []
    assert env.raw_inbox(CLIENT) == []
    with pytest.raises(UsageError):
        outbox.cancel(env.store, 9999)
    sent_id = farewell(env)
    outbox.send_due(env.settings, env.store, policy_=FAST)
    with pytest.raises(UsageError, match="sent"):
        outbox.cancel(env.store, sent_id)


def test_recover_after_crash_before_data_retries_after_data_is_uncertain(env: Env) -> None:
    before = farewell(env)
    after = farewell(env)
    with env.store.session() as session:
        a = session.get(OutboxMessage, before)
        b = session.get(OutboxMessage, after)
        assert a is not None and b is not None
        a.state = b.state = "sending"
        b.error = outbox.DATA_MARKER + "2026-11-25T10:00:00+00:00"
    changed = outbox.recover_interrupted(env.settings, env.store)
    assert sorted(changed) == sorted([before, after])
    assert row(env, before).state == "scheduled"
    assert row(env, after).state == "uncertain"


def test_timeout_before_data_retries_and_after_data_is_uncertain(env: Env) -> None:
    env.settings = make_settings(env.dovecot, env.smtp, env.store.url, timeout=0.4)
    early = farewell(env)
    env.smtp.delay_next("rcpt", 1.0)
    assert outbox.send_due(env.settings, env.store, policy_=FAST).retried == [early]
    env.smtp.clear_faults()
    assert outbox.send_due(env.settings, env.store, policy_=FAST).sent == [early]

    late = farewell(env)
    env.smtp.delay_next("after_delivery", 1.0)  # delivered; the answer comes too late
    report = outbox.send_due(env.settings, env.store, policy_=FAST)
    assert report.uncertain == [late]
    assert "DATA" in (row(env, late).error or "")
    assert len(env.raw_inbox(CLIENT)) == 2  # each delivered once, nothing resent


def test_a_pass_stopped_early_puts_untouched_messages_back(env: Env) -> None:
    ids = [farewell(env) for _ in range(3)]

    class Stop(Exception):
        pass

    def hook(point: str, outbox_id: int) -> None:
        if point == "connected" and outbox_id == ids[1]:
            raise Stop

    with pytest.raises(Stop):
        outbox.send_due(env.settings, env.store, policy_=FAST, hook=hook)
    assert [row(env, i).state for i in ids] == ["sent", "scheduled", "scheduled"]
    assert row(env, ids[1]).attempts == 0  # never tried
    assert outbox.send_due(env.settings, env.store, policy_=FAST).sent == ids[1:]
    assert len(env.raw_inbox(CLIENT)) == 3


def test_deferred_rows_do_not_hide_due_ones_behind_the_batch_limit(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = open_env(dovecot, tmp_path, monkeypatch, window="09:00-17:00", days="mon-fri")
    env = next(gen)
    try:
        berlin = ZoneInfo("Europe/Berlin")
        morning = datetime(2026, 11, 25, 10, tzinfo=berlin)
        stale = [farewell(env, now=morning) for _ in range(3)]  # due in the window...
        with env.store.session() as session:
            notice = outbox.queue_notice(session, env.settings, owner=OWNER, kind="alert",
                                         subject="Acme", text="...", now=morning).id
        evening = datetime(2026, 11, 25, 18, tzinfo=berlin)  # ...but retried after closing
        small = SendPolicy(batch_size=2, backoff_base=timedelta(0), backoff_cap=timedelta(0))
        report = outbox.send_due(env.settings, env.store, policy_=small, now=evening)
        assert sorted(report.deferred) == stale
        assert report.sent == [notice]
    finally:
        gen.close()

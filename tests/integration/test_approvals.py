"""Email commands end to end: request out through SMTP, owner reply back, act once or refuse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from service.mail.compose import compose
from service.store.models import CommandLog, CommandToken, OutboxMessage
from service.workflows import approvals, outbox
from tests.integration.test_outbox_env import (
    CLIENT,
    FAST,
    OTHER_OWNER,
    OWNER,
    SERVICE,
    Env,
    acted,
    open_env,
    parse,
    reply_to,
    request,
)
from tests.rig.dovecot import Dovecot
from tests.rig.smtp import SmtpServer

pytestmark = pytest.mark.integration



@pytest.fixture
def env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from open_env(dovecot, tmp_path, monkeypatch)


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
    assert acted(env) == [("APPROVE", "7", OWNER)]
    confirmations = owner_mail(env, OWNER, "Re: Approve")
    assert len(confirmations) == 1
    assert "draft 7 approved" in confirmations[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert confirmations[0]["In-Reply-To"] == parse(raw)["Message-ID"]
    # in the thread, but a reply to the confirmation is not a new answer
    assert "@token." not in confirmations[0]["References"]
    assert parse(raw)["Message-ID"] in confirmations[0]["References"]
    # the same reply seen again (resync) does nothing
    again = approvals.process_reply(env.settings, env.store, raw)
    assert again.duplicate and acted(env) == [("APPROVE", "7", OWNER)]
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
    assert acted(env) == [("APPROVE", "7", OWNER)]
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
    assert acted(env) == []
    assert len(owner_mail(env, OWNER, "Not done:")) == 1


def test_token_issued_to_another_owner_is_refused(env: Env) -> None:
    received = request(env, owner=OTHER_OWNER)
    outcome = approvals.process_reply(env.settings, env.store,
                                      reply_to(received, sender=OWNER, smtp=env.smtp))
    assert not outcome.accepted and f"made to {OTHER_OWNER}" in outcome.reason
    assert acted(env) == []


def test_expired_token_is_refused(env: Env) -> None:
    received = request(env, now=datetime.now(UTC) - timedelta(hours=25))
    outcome = approvals.process_reply(env.settings, env.store, reply_to(received, smtp=env.smtp))
    assert not outcome.accepted and "expired" in outcome.reason
    assert acted(env) == []


def test_token_for_an_older_draft_version_is_refused(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = request(env, version=1)
    monkeypatch.setenv("SG_TEST_VERSION_7", "2")
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
    assert acted(env) == []


def test_auto_reply_carrying_the_token_is_ignored_silently(env: Env) -> None:
    received = request(env)
    raw = reply_to(received, extra={"Auto-Submitted": "auto-replied"}, smtp=env.smtp)
    outcome = approvals.process_reply(env.settings, env.store, raw)
    assert not outcome.accepted and outcome.notified is None
    assert acted(env) == [] and owner_mail(env, OWNER, "Not done:") == []
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
    assert acted(env) == []


def test_handler_refusal_leaves_the_token_usable(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = request(env)
    monkeypatch.setenv("SG_TEST_REFUSE", "pending work must be handed over first")
    first = approvals.process_reply(env.settings, env.store, reply_to(received, smtp=env.smtp))
    assert not first.accepted and "pending work" in first.reason
    second = approvals.process_reply(env.settings, env.store, reply_to(received, smtp=env.smtp))
    assert second.accepted and acted(env) == [("APPROVE", "7", OWNER)]


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
    assert acted(env) == []


def test_tokens_are_keyed_with_the_approval_secret_when_configured(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setenv("SG_TEST_APPROVAL_SECRET", "k" * 32)
    approvals_cfg = env.settings.approvals.model_copy(
        update={"secret_env": "SG_TEST_APPROVAL_SECRET"})
    env.settings = env.settings.model_copy(update={"approvals": approvals_cfg})
    received = request(env)
    token = received["Reply-To"].split("+", 1)[1].split("@", 1)[0]
    with env.store.session() as session:
        stored = session.scalars(select(CommandToken.token_hash)).one()
    assert stored != hashlib.sha256(token.encode()).hexdigest()  # a copied DB is not enough
    assert token not in stored
    assert approvals.process_reply(env.settings, env.store,
                                   reply_to(received, smtp=env.smtp)).accepted

"""The outbox, commands and scheduler contract on every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.mail.compose import compose
from service.store.db import Store
from service.store.models import OutboxMessage
from service.workflows import approvals, outbox
from service.workflows.scheduler import Scheduler, next_jobs
from tests.integration.test_outbox_env import (
    CLIENT,
    FAST,
    OWNER,
    SERVICE,
    Env,
    open_env,
    reply_to,
    request,
)
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration

@pytest.fixture
def env(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> Iterator[Env]:
    yield from open_env(dovecot, tmp_path, monkeypatch, database_url=database_url)


def _queue(env: Env, **kwargs: object) -> int:
    msg = compose(from_addr=SERVICE, to=[CLIENT], subject="Goodbye", text="Thank you.\n")
    with env.store.session() as session:
        return outbox.queue(session, env.settings, msg, kind="farewell", client="Acme",
                            **kwargs).id  # type: ignore[arg-type]


def _state(env: Env, row_id: int) -> str:
    with env.store.session() as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        return row.state


def test_send_retry_and_uncertain_resend(env: Env) -> None:
    ok = _queue(env)
    env.smtp.fail_next("mail", 451)
    assert outbox.send_due(env.settings, env.store, policy_=FAST).retried == [ok]
    assert outbox.send_due(env.settings, env.store, policy_=FAST).sent == [ok]
    lost = _queue(env)
    env.smtp.drop_next("data")
    assert outbox.send_due(env.settings, env.store, policy_=FAST).asked == [lost]
    [ask] = [m for m in env.inbox(OWNER) if m["Subject"].startswith("Was it delivered?")]
    outcome = approvals.process_reply(env.settings, env.store,
                                      reply_to(ask, text="RESEND", smtp=env.smtp))
    assert outcome.accepted, outcome.reason
    outbox.send_due(env.settings, env.store, policy_=FAST)
    assert _state(env, lost) == "sent"
    assert len(env.raw_inbox(CLIENT)) == 2  # one copy of each message


def test_reply_accepted_once(env: Env) -> None:
    received = request(env)
    raw = reply_to(received, text="CANCEL", smtp=env.smtp)
    assert approvals.process_reply(env.settings, env.store, raw).accepted
    assert approvals.process_reply(env.settings, env.store, raw).duplicate
    again = reply_to(received, text="CANCEL", smtp=env.smtp)
    assert "already answered" in approvals.process_reply(env.settings, env.store, again).reason


def test_scheduler_job_store_survives_a_restart(env: Env) -> None:
    due = datetime.now(UTC) + timedelta(hours=3)
    _queue(env, not_before=due)
    first = Scheduler(env.settings, env.store, poll=timedelta(hours=1))
    first.start()
    first.shutdown()
    store = Store(env.store.url)
    try:
        wakes = [j for j in next_jobs(store) if j["id"].startswith("outbox:wake:")]
        assert [datetime.fromisoformat(j["next_run"]) for j in wakes] == [due]
    finally:
        store.dispose()

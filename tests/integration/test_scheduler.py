"""The persistent scheduler: restarts, missed runs caught up once, other time zones, DST."""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from service.mail.compose import compose
from service.store.db import Store
from service.workflows import outbox
from service.workflows.scheduler import Scheduler, next_jobs
from tests.integration.test_outbox_env import CLIENT, SERVICE, Env, open_env
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration

FAST = outbox.SendPolicy(backoff_base=timedelta(0), backoff_cap=timedelta(0))
RUNS: list[float] = []


def count_run() -> None:
    """A job function importable by reference (as persisted jobs must be)."""
    RUNS.append(clock.monotonic())


@pytest.fixture
def env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from open_env(dovecot, tmp_path, monkeypatch)


def _queue(env: Env, *, not_before: datetime | None = None, now: datetime | None = None) -> int:
    msg = compose(from_addr=SERVICE, to=[CLIENT], subject="Goodbye", text="Thank you.\n")
    with env.store.session() as session:
        return outbox.queue(session, env.settings, msg, kind="farewell", client="Acme",
                            not_before=not_before, now=now).id


def _outbox_wakes(env: Env, *, queued_at: datetime) -> list[str]:
    """Queue a farewell at ``queued_at``; the times the scheduler will wake the outbox."""
    _queue(env, now=queued_at)
    sched = Scheduler(env.settings, env.store, poll=timedelta(hours=1))
    sched.start()
    try:
        return [j["next_run"] for j in sched.jobs() if j["id"].startswith("outbox:wake:")]
    finally:
        sched.shutdown()


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        if predicate():
            return True
        clock.sleep(0.05)
    return False


def test_restart_between_scheduling_and_due_time_sends_exactly_once(env: Env) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    row_id = _queue(env, not_before=due)
    first = Scheduler(env.settings, env.store, poll=timedelta(hours=1), send_policy=FAST)
    first.start()
    wakes = [j for j in next_jobs(env.store) if j["id"].startswith("outbox:wake:")]
    first.shutdown()
    # the wake-up is stored in the database, for the due second
    assert [datetime.fromisoformat(j["next_run"]) for j in wakes] == [due]
    assert env.raw_inbox(CLIENT) == []
    clock.sleep(2.0)  # down while it became due

    store = Store(env.store.url)  # a new process would open the database afresh
    second = Scheduler(env.settings, store, poll=timedelta(hours=1), send_policy=FAST)
    second.start()
    try:
        assert _wait_for(lambda: len(env.raw_inbox(CLIENT)) == 1)
        clock.sleep(0.5)
    finally:
        second.shutdown()
        store.dispose()
    assert len(env.raw_inbox(CLIENT)) == 1
    with env.store.session() as session:
        row = session.get(outbox.OutboxMessage, row_id)
        assert row is not None and row.state == "sent"
    assert not [j for j in next_jobs(env.store) if j["id"].startswith("outbox:wake:")]


def test_missed_runs_are_caught_up_once_not_repeated(env: Env) -> None:
    RUNS.clear()
    sched = Scheduler(env.settings, env.store, poll=timedelta(hours=1))
    sched.start()
    sched.every("test:count", count_run, timedelta(seconds=1))
    assert _wait_for(lambda: len(RUNS) >= 1, timeout=3)
    sched.shutdown()
    beat = RUNS[0]  # the job's beats fall on beat + n seconds
    store = Store(env.store.url)
    # down for two beats; back half-way between beats, so the next regular one
    # is half a second away and anything before it is catch-up
    clock.sleep(max(0.0, beat + 2.5 - clock.monotonic()))
    again = Scheduler(env.settings, store, poll=timedelta(hours=1))
    again.start()
    try:
        clock.sleep(max(0.0, beat + 2.95 - clock.monotonic()))
        catch_up = [t for t in RUNS[1:] if t < beat + 2.95]
    finally:
        again.remove("test:count")
        again.shutdown()
        store.dispose()
    assert len(catch_up) == 1  # coalesced: one run for the two missed, not two


def test_due_time_in_the_clients_time_zone(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = open_env(dovecot, tmp_path, monkeypatch, window="09:00-17:00", days="mon-fri",
                   client_tz="America/New_York")
    env = next(gen)
    try:
        # queued on a Saturday (Berlin evening), due Monday 09:00 New York = 14:00 UTC
        saturday = datetime(2030, 11, 23, 20, tzinfo=ZoneInfo("Europe/Berlin"))
        assert _outbox_wakes(env, queued_at=saturday) == ["2030-11-25T14:00:00+00:00"]
    finally:
        gen.close()


def test_send_window_across_the_spring_dst_switch(
    dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = open_env(dovecot, tmp_path, monkeypatch, window="09:00-17:00", days="mon-fri")
    env = next(gen)
    try:
        # Friday evening before Europe's switch (2030-03-31): Monday 09:00 CEST = 07:00 UTC
        friday = datetime(2030, 3, 29, 18, tzinfo=ZoneInfo("Europe/Berlin"))
        assert _outbox_wakes(env, queued_at=friday) == ["2030-04-01T07:00:00+00:00"]
    finally:
        gen.close()


def test_weekly_job_keeps_local_time_across_dst(env: Env) -> None:
    sched = Scheduler(env.settings, env.store, poll=timedelta(hours=1))
    sched.start()
    try:
        sched.weekly("digest:olga", count_run, day=0,
                     at=time(8, 0), timezone="Europe/Berlin")
        job = sched._aps.get_job("digest:olga")
        berlin = ZoneInfo("Europe/Berlin")
        winter = job.trigger.get_next_fire_time(None, datetime(2030, 3, 20, tzinfo=berlin))
        summer = job.trigger.get_next_fire_time(None, datetime(2030, 3, 27, tzinfo=berlin))
        assert winter.astimezone(UTC) == datetime(2030, 3, 25, 7, 0, tzinfo=UTC)
        assert summer.astimezone(UTC) == datetime(2030, 4, 1, 6, 0, tzinfo=UTC)
        listed = {j["id"]: j for j in next_jobs(env.store)}
        assert "digest:olga" in listed and listed["digest:olga"]["next_run"]
        assert sched.remove("digest:olga") and not sched.remove("digest:olga")
    finally:
        sched.shutdown()


def test_next_jobs_without_a_job_table_is_empty(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert next_jobs(store) == []
    finally:
        store.dispose()


def test_status_lists_the_next_jobs(env: Env) -> None:
    from service import app

    _queue(env, not_before=datetime.now(UTC) + timedelta(hours=2))
    sched = Scheduler(env.settings, env.store, poll=timedelta(minutes=5))
    sched.start()
    sched.shutdown()
    jobs = app.status_report(env.settings, env.store)["next_jobs"]
    assert {j["name"] for j in jobs} == {"outbox poll", "outbox wake-up"}
    assert all(j["next_run"] for j in jobs)

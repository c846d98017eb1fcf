"""Schedules that survive restarts: APScheduler 3.x with its job store in our database.

The outbox table is the truth about what is due; the scheduler only decides
*when to look*. After each outbox pass a one-shot "wake" job is stored for
the next due time (a 09:00 opening sends at 09:00, not at the next poll), and
a slow poll catches anything queued in between. Other workflows add their
own persistent jobs (feedback requests, the weekly digest) with :meth:`at`,
:meth:`weekly` and :meth:`every`.

Missed runs (the service was down) run once when it is back, within
``misfire_grace``; several missed runs of one job are coalesced into one.
Job functions must be importable (``module:function``) and take plain,
picklable arguments; they reach settings and store through :func:`runtime`.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ..config import Settings
from ..store.db import Store
from . import outbox

log = logging.getLogger(__name__)

__all__ = ["JOB_TABLE", "Scheduler", "next_jobs", "run_outbox", "runtime"]

JOB_TABLE = "apscheduler_jobs"
POLL_JOB = "outbox:poll"
WAKE_PREFIX = "outbox:wake:"
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_runtime: tuple[Settings, Store, outbox.SendPolicy | None] | None = None
_current: Scheduler | None = None
_outbox_lock = threading.Lock()


def runtime() -> tuple[Settings, Store]:
    """Settings and store of the running scheduler, for job functions."""
    if _runtime is None:
        raise RuntimeError("no scheduler is running in this process")
    return _runtime[0], _runtime[1]


def run_outbox() -> None:
    """Job: one outbox pass, then a wake-up for whatever is due next.

    One pass at a time per process: a wake that fires during a poll pass
    skips, since the running pass sends everything due anyway.
    """
    if _runtime is None:
        return
    settings, store, policy_ = _runtime
    if not _outbox_lock.acquire(blocking=False):
        return
    try:
        outbox.send_due(settings, store, policy_=policy_)
    finally:
        _outbox_lock.release()
    if _current is not None:
        _current.wake_outbox(outbox.next_due(store))


def _jobstore(store: Store) -> SQLAlchemyJobStore:
    return SQLAlchemyJobStore(engine=store.engine, tablename=JOB_TABLE)


class Scheduler:
    """One APScheduler (background thread) over the service's database."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        poll: timedelta = timedelta(minutes=1),
        misfire_grace: timedelta = timedelta(hours=12),
        send_policy: outbox.SendPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.poll = poll
        self.send_policy = send_policy
        self._aps = BackgroundScheduler(
            jobstores={"default": _jobstore(store)},
            executors={"default": {"type": "threadpool", "max_workers": 2}},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(misfire_grace.total_seconds()),
            },
            timezone=UTC,
        )

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Recover interrupted sends, start, and plan the next outbox pass."""
        global _runtime, _current
        _runtime = (self.settings, self.store, self.send_policy)
        _current = self
        outbox.recover_interrupted(self.settings, self.store)
        self._aps.start()
        self._aps.add_job(
            run_outbox,
            IntervalTrigger(seconds=max(1, int(self.poll.total_seconds())), timezone=UTC),
            id=POLL_JOB,
            name="outbox poll",
            replace_existing=True,
        )
        self.wake_outbox(outbox.next_due(self.store))
        log.info("event=scheduler_started poll=%ss", int(self.poll.total_seconds()))

    def shutdown(self, wait: bool = True) -> None:
        global _runtime, _current
        if self._aps.running:
            self._aps.shutdown(wait=wait)
        if _current is self:
            _runtime, _current = None, None

    @property
    def running(self) -> bool:
        return bool(self._aps.running)

    # -- jobs ----------------------------------------------------------------------

    def wake_outbox(self, when: datetime | None) -> None:
        """A one-shot outbox pass at `when` (now if past); one job per distinct time."""
        if when is None or not self._aps.running:
            return
        when = max(when, datetime.now(UTC))
        job_id = f"{WAKE_PREFIX}{int(when.timestamp())}"
        self._aps.add_job(run_outbox, DateTrigger(run_date=when, timezone=UTC), id=job_id,
                          name="outbox wake-up", replace_existing=True)

    def at(self, job_id: str, func: Callable[..., Any] | str, when: datetime,
           **kwargs: Any) -> None:
        """Run `func(**kwargs)` once at `when` (aware); replaces a job with the same id."""
        if when.tzinfo is None:
            raise ValueError("schedule with an aware datetime")
        self._aps.add_job(func, DateTrigger(run_date=when.astimezone(UTC), timezone=UTC),
                          id=job_id, kwargs=kwargs, replace_existing=True)

    def weekly(self, job_id: str, func: Callable[..., Any] | str, *, day: int, at: time,
               timezone: str, **kwargs: Any) -> None:
        """Every week on `day` (Monday 0) at local wall time `at` in `timezone`, DST-aware."""
        trigger = CronTrigger(day_of_week=_DAY_NAMES[day], hour=at.hour, minute=at.minute,
                              timezone=timezone)
        self._aps.add_job(func, trigger, id=job_id, kwargs=kwargs, replace_existing=True)

    def every(self, job_id: str, func: Callable[..., Any] | str, interval: timedelta,
              **kwargs: Any) -> None:
        trigger = IntervalTrigger(seconds=max(0.1, interval.total_seconds()), timezone=UTC)
        self._aps.add_job(func, trigger, id=job_id, kwargs=kwargs, replace_existing=True)

    def remove(self, job_id: str) -> bool:
        try:
            self._aps.remove_job(job_id)
        except JobLookupError:
            return False
        return True

    def jobs(self) -> list[dict[str, Any]]:
        return [_job_json(job) for job in self._aps.get_jobs()]


def _job_json(job: Any) -> dict[str, Any]:
    when = getattr(job, "next_run_time", None)
    return {
        "id": job.id,
        "name": job.name,
        "next_run": when.astimezone(UTC).isoformat() if when else None,
        "trigger": str(job.trigger),
    }


def next_jobs(store: Store, limit: int = 10) -> list[dict[str, Any]]:
    """Stored jobs by next run time, read without starting a scheduler (for `status`).

    Reads the table itself: APScheduler's own loader deletes jobs whose
    function it cannot import, which a read-only listing must never do.
    """
    table = _jobstore(store).jobs_t
    query = select(table.c.id, table.c.next_run_time, table.c.job_state).order_by(
        table.c.next_run_time
    )
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(query.limit(limit)).all()
    except SQLAlchemyError as exc:  # no table yet: the scheduler never ran
        log.debug("event=next_jobs_unavailable error=%s", exc)
        return []
    jobs = []
    for job_id, next_run, state in rows:
        try:
            info = pickle.loads(state)
        except Exception:
            info = {}
        jobs.append(
            {
                "id": job_id,
                "name": info.get("name", job_id),
                "next_run": (
                    datetime.fromtimestamp(next_run, UTC).isoformat() if next_run else None
                ),
                "trigger": str(info.get("trigger", "")),
            }
        )
    return jobs

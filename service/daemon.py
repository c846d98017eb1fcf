"""`saygoodbye run`: the daemon's lifecycle, and nothing else.

One process, one event loop, one `AsyncExitStack` (as pymap does): the store,
the metrics endpoint and the supervisor of the background *parts* are
entered into it in order and closed in reverse. Then ``READY=1`` goes to
systemd and the loop waits for a signal:

* SIGTERM / SIGINT: ``STOPPING=1``; parts are asked to stop taking work and
  to finish what is in flight (the watcher its batch, the scheduler its
  outbox pass); whatever still runs after the stop grace is cut off (its
  transaction never commits; an interrupted send is settled at the next
  start, never repeated blindly), and the process exits 0 within the unit's
  TimeoutStopSec.
* SIGHUP: the config file is read and validated again, secrets included.
  A bad file is rejected with one clear log line and the running settings
  stay in force; a good one replaces them, parts whose table appeared or
  disappeared start or stop, and parts holding connections restart.
* ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` from the loop itself, so a
  wedged loop stops the pings and systemd restarts the service.

The parts are listed in `PARTS`; adding a service is one `Part(...)` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import metrics
from .config import Settings, load_settings
from .errors import ConfigError
from .logs import setup_logging
from .store.db import Store
from .store.models import Event, iso
from .supervisor import Notifier, Part, PartContext, Supervisor

log = logging.getLogger("saygoodbye.daemon")

# TimeoutStopSec in systemd/saygoodbye.service is 30 s: leave room to close.
STOP_GRACE = 20.0
# then this long for blocking calls to return before the process exits regardless
EXECUTOR_GRACE = 5.0
STATE_FILE = "daemon.json"
STATE_EVERY = 15.0
RETENTION_FIRST = 30.0
RETENTION_EVERY = 6 * 3600.0
#: A failed refresh of every client is tried again this soon (else every HEALTH_MAX_AGE).
FULL_REFRESH_RETRY = 60.0


# -- runtime state shared with parts ----------------------------------------------


@dataclass
class Runtime:
    """What parts read: replaced settings after a reload, the one store, their reports."""

    settings: Settings
    store: Any = None
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    # set by the scheduler part: run an outbox pass now (e.g. alerts just queued)
    wake_outbox: Callable[[], None] | None = None


def check_secrets(settings: Settings) -> None:
    """Read every configured secret once, so a missing credential fails at start or reload."""
    for section in (settings.mailbox, settings.smtp):
        if section is None:
            continue
        if section.auth == "oauth2":
            section.oauth2_client_secret()
            section.oauth2_refresh_token()
        else:
            section.password()
    approvals = settings.approvals
    if approvals.secret_env or approvals.secret_file:
        approvals.secret()
    if settings.service.metrics:
        metrics.parse_endpoint(settings.service.metrics)


def load_checked(path: str | os.PathLike[str] | None) -> Settings:
    settings = load_settings(path)
    check_secrets(settings)
    return settings


# -- parts ----------------------------------------------------------------------


def _report(ctx: PartContext, **fields: Any) -> None:
    ctx.runtime.reports.setdefault(ctx.name, {}).update(fields)


async def watch_mailbox(ctx: PartContext) -> None:
    """IDLE/poll the mailbox in the watcher's thread; after new mail, the live pass's steps.

    Owners' reply commands are acted on before their batch is committed (in
    the watcher's thread). The rest runs here, off that thread, so the watcher
    is back in IDLE at once: health is re-assessed (alerts queued; the scoring in
    a process of its own, see healthproc),
    offboardings see the new mail, and the outbox is woken so alerts go out
    now rather than at the next poll. Mail arriving meanwhile is batched into
    the next round; a failing round is logged and retried with the next mail.
    """
    from .app import HEALTH_MAX_AGE, clients_of
    from .directory import Directory
    from .healthproc import HealthRefresher
    from .ingest import Ingestor, warm_up_analysis
    from .mail.imap import MailboxWatcher
    from .pipeline import _offboarding_hook, reply_hook

    settings = ctx.settings
    store = ctx.store
    loop = asyncio.get_running_loop()
    ingestor = Ingestor(store, Directory.from_settings(settings), workers=1,
                        before_store=reply_hook(settings, store))
    after_new_mail = _offboarding_hook()
    new_mail = asyncio.Event()
    stored_ids: list[str] = []
    lock = threading.Lock()

    def on_sync(result: Any) -> None:  # the watcher's thread: keep it short
        metrics.messages_ingested(result.stored)
        metrics.sync_finished(result.seconds)
        if result.stored:
            with lock:
                stored_ids.extend(result.stored_ids)
            loop.call_soon_threadsafe(new_mail.set)

    next_full = [0.0]  # monotonic time the next refresh of every client is due
    refresher = HealthRefresher(settings, store)
    full_every = HEALTH_MAX_AGE.total_seconds()  # as `saygoodbye sync` does

    def after_sync() -> None:
        with lock:
            ids = list(stored_ids)
            stored_ids.clear()
        if time.monotonic() >= next_full[0]:
            next_full[0] = time.monotonic() + FULL_REFRESH_RETRY  # if this one fails
            refresher.refresh()
            next_full[0] = time.monotonic() + full_every
        elif ids:
            # Only the clients the new mail is about: a full refresh reads every
            # client's history (seconds on a 100k mailbox) for one new message.
            refresher.refresh(clients_of(store, ids))
        if after_new_mail is not None and ids:
            after_new_mail(settings, store, ids)

    # The detector rules (hundreds of patterns) and the hostility model load before the
    # first mail arrives, not while it waits for its row.
    await asyncio.to_thread(warm_up_analysis)
    watcher = MailboxWatcher(settings, ingestor, on_sync=on_sync)
    thread = watcher.start()
    try:
        while not ctx.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(new_mail.wait(), timeout=1.0)
            _report(ctx, mode=watcher.mode, syncs=watcher.syncs,
                    last_sync=iso(watcher.last_sync), last_error=watcher.last_error)
            if not thread.is_alive():
                raise RuntimeError("the IMAP watcher thread ended on its own")
            stale = time.monotonic() >= next_full[0]
            if (new_mail.is_set() or stale) and not ctx.stopping.is_set():
                # Time alone changes health (a client going quiet), so every client is
                # re-assessed at least every HEALTH_MAX_AGE even without mail.
                new_mail.clear()
                try:
                    await asyncio.to_thread(after_sync)
                except Exception as exc:  # the mail is stored; the next round retries
                    log.error("event=after_sync_failed error=%s", exc, exc_info=exc)
                    _report(ctx, last_error=f"after sync: {type(exc).__name__}: {exc}")
                wake = ctx.runtime.wake_outbox
                if wake is not None:
                    wake()
    finally:
        await asyncio.to_thread(watcher.stop, 10.0)
        ingestor.close()
        await asyncio.to_thread(refresher.close)


# Workflows that add their own persistent jobs: "module:function(scheduler, settings)".
SCHEDULES = (
    "service.workflows.digest:schedule_digests",
    "service.workflows.offboarding:schedule_offboarding",
)


def _register_jobs(scheduler: Any, settings: Settings) -> None:
    """Each workflow's jobs; one that fails is logged and the others still run."""
    import importlib

    for spec in SCHEDULES:
        module, _, name = spec.partition(":")
        try:
            register = getattr(importlib.import_module(module), name)
            jobs = register(scheduler, settings)
        except Exception as exc:
            log.error("event=jobs_not_registered source=%s error=%s", spec, exc, exc_info=exc)
            continue
        log.info("event=jobs_registered source=%s jobs=%s", spec, ",".join(jobs or []))


async def run_scheduler(ctx: PartContext) -> None:
    """APScheduler (its own thread): outbox passes, wake-ups, digests, follow-ups.

    Stopping waits for a running job, i.e. an outbox pass finishes what it
    claimed; if that outlives the stop grace the process exits anyway, and a
    row left in `sending` is settled at the next start (before DATA: retried;
    in DATA: uncertain, looked up in the Sent folder), never sent twice.
    """
    from .workflows.scheduler import Scheduler

    scheduler = Scheduler(ctx.settings, ctx.store)
    await asyncio.to_thread(scheduler.start)
    await asyncio.to_thread(_register_jobs, scheduler, ctx.settings)
    ctx.runtime.wake_outbox = lambda: scheduler.wake_outbox(datetime.now(UTC))
    try:
        while not await ctx.sleep(2.0):
            if not scheduler.running:
                raise RuntimeError("the scheduler stopped on its own")
    finally:
        ctx.runtime.wake_outbox = None
        await asyncio.to_thread(scheduler.shutdown, True)


async def enforce_retention(ctx: PartContext) -> None:
    """Delete bodies past `keep_bodies_days` soon after start, then every few hours."""
    from .privacy import purge_bodies

    if await ctx.sleep(RETENTION_FIRST):
        return
    while True:
        keep = ctx.settings.service.keep_bodies_days
        result = await asyncio.to_thread(purge_bodies, ctx.store, keep)
        _report(ctx, last_run=iso(datetime.now(UTC)), purged=result.messages)
        if await ctx.sleep(RETENTION_EVERY):
            return


def _needs(table: str) -> Callable[[Settings], str | None]:
    def skip(settings: Settings) -> str | None:
        return None if getattr(settings, table) is not None else f"no [{table}] table"
    return skip


PARTS: list[Part] = [
    Part("mailbox", watch_mailbox, skip=_needs("mailbox"), restart_on_reload=True),
    Part("scheduler", run_scheduler, restart_on_reload=True),
    Part("retention", enforce_retention),
]


# -- the lifecycle --------------------------------------------------------------


def _changed(old: Settings, new: Settings) -> list[str]:
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


class Daemon:
    """Owns the loop's lifetime: start parts, talk to systemd, handle signals, stop."""

    def __init__(
        self,
        config_path: str | os.PathLike[str] | None,
        settings: Settings,
        parts: Sequence[Part] = (),
        *,
        notifier: Notifier | None = None,
        stop_grace: float = STOP_GRACE,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
    ) -> None:
        self.config_path = config_path
        self.runtime = Runtime(settings)
        self.parts = list(parts)
        self.notifier = notifier or Notifier.from_environment()
        self.stop_grace = stop_grace
        self.backoff = (backoff_base, backoff_cap)
        self.started_at = datetime.now(UTC)
        self.metrics_server: metrics.MetricsServer | None = None
        self.supervisor: Supervisor | None = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.forced: list[str] = []

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    # -- signals --
    def request_stop(self, why: str) -> None:
        if self._stop.is_set():
            log.info("event=stop_pending signal=%s", why)
            return
        log.info("event=stop_requested signal=%s", why)
        self._stop.set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload()))

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)

    # -- reload --
    async def reload(self) -> bool:
        """Re-read the config; keep the old settings if the new ones are invalid."""
        async with self._reload_lock:
            if self._stop.is_set():
                return False
            self.notifier.reloading()
            old = self.settings
            try:
                new = await asyncio.to_thread(load_checked, self.config_path)
                if new.database_url != old.database_url:
                    raise ConfigError("the database cannot change while running; "
                                      "restart the service to switch", key="service.database")
            except ConfigError as exc:
                log.error("event=reload_rejected error=%s note=%s", exc,
                          "the running configuration stays in force")
                self.notifier.ready(status=f"reload rejected: {exc}")
                return False
            changed = _changed(old, new)
            self.runtime.settings = new
            setup_logging(new.service.log_level, new.service.log_format)
            if new.service.metrics != old.service.metrics:
                self._swap_metrics(new.service.metrics)
            await self._reconcile(new, changed)
            log.info("event=reloaded config=%s changed=%s", new.source_path,
                     ",".join(changed) or "nothing")
            for warning in new.warnings():
                log.warning("event=config_warning config=%s note=%s", new.source_path, warning)
            self.notifier.ready(status=self._status_line())
            return True

    def _swap_metrics(self, value: str | None) -> None:
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        try:
            self.metrics_server = metrics.serve(value, self.runtime.store)
        except OSError as exc:
            log.error("event=metrics_failed endpoint=%s error=%s", value, exc)

    async def _reconcile(self, settings: Settings, changed: list[str]) -> None:
        supervisor = self.supervisor
        if supervisor is None:  # still starting: the parts start with the new settings
            return
        running = set(supervisor.names())
        for part in self.parts:
            reason = part.skip(settings)
            if reason and part.name in running:
                log.info("event=part_skipped part=%s reason=%s", part.name, reason)
                await supervisor.remove(part.name, self.stop_grace)
            elif not reason and part.name not in running:
                supervisor.start(part)
            elif not reason and part.restart_on_reload and changed:
                supervisor.restart(part.name)

    # -- status --
    def _status_line(self) -> str:
        """What `systemctl status` shows: the parts, and the watcher's state once known."""
        names = self.supervisor.names() if self.supervisor else []
        shown = []
        for name in names:
            report = self.runtime.reports.get(name, {})
            if report.get("last_error"):
                shown.append(f"{name} (retrying: {str(report['last_error'])[:80]})")
            elif report.get("mode"):
                synced = str(report.get("last_sync") or "never")[:19].replace("T", " ")
                shown.append(f"{name} ({report['mode']}, synced {synced} UTC)")
            else:
                shown.append(name)
        return f"running: {', '.join(shown) or 'no parts'}"

    def state(self) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        if self.supervisor is not None:
            for name, entry in self.supervisor.running.items():
                parts[name] = {
                    "restarts": entry.restarts,
                    "crashes": entry.crashes,
                    "last_error": entry.last_error,
                    **self.runtime.reports.get(name, {}),
                }
        return {
            "pid": os.getpid(),
            "started_at": iso(self.started_at),
            "updated_at": iso(datetime.now(UTC)),
            "stopping": self._stop.is_set(),
            "parts": parts,
        }

    def _write_state(self, state: dict[str, Any] | None = None) -> None:
        write_state(self.settings.state_dir, state or self.state())

    async def _state_loop(self) -> None:
        shown = self._status_line()
        while True:
            try:
                await asyncio.to_thread(self._write_state)
            except OSError as exc:
                log.warning("event=state_write_failed error=%s", exc)
            line = self._status_line()
            if line != shown and not self._stop.is_set():
                self.notifier.status(line)
                shown = line
            await asyncio.sleep(STATE_EVERY)

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    def _record_crash(self, part: str, exc: BaseException) -> None:
        store = self.runtime.store
        if store is None:
            return
        text = f"{type(exc).__name__}: {exc}"[:2000]

        def write() -> None:
            try:
                with store.session() as session:
                    session.add(Event(level="error", component=f"daemon.{part}", message=text))
            except Exception as error:  # the database may be what failed
                log.warning("event=event_write_failed error=%s", error)

        asyncio.get_running_loop().run_in_executor(None, write)

    # -- the whole life --
    async def serve(self) -> int:
        self._install_signals()
        interval = self.notifier.watchdog_interval
        if interval:
            # before anything slow (migrations): the watchdog runs from the start
            self._spawn(self._watchdog_loop(interval))
        try:
            async with AsyncExitStack() as stack:
                stack.callback(self.notifier.close)
                self.notifier.status("opening the database")
                store = await asyncio.to_thread(Store, self.settings.database_url)
                stack.callback(store.dispose)
                self.runtime.store = store

                self.metrics_server = metrics.serve(self.settings.service.metrics, store)
                stack.callback(lambda: self.metrics_server and self.metrics_server.close())

                supervisor = Supervisor(
                    self.runtime,
                    backoff_base=self.backoff[0],
                    backoff_cap=self.backoff[1],
                    on_crash=self._record_crash,
                    on_restart=metrics.part_restarted,
                )
                self.supervisor = supervisor
                stack.push_async_callback(self._stop_parts)
                for part in self.parts:
                    reason = part.skip(self.settings)
                    if reason:
                        log.info("event=part_skipped part=%s reason=%s", part.name, reason)
                    else:
                        supervisor.start(part)
                self._spawn(self._state_loop())

                self.notifier.ready(status=self._status_line())
                log.info("event=ready pid=%d parts=%s config=%s", os.getpid(),
                         ",".join(supervisor.names()) or "none", self.settings.source_path)
                await self._stop.wait()
                self.notifier.stopping(status="stopping: finishing in-flight work")
                log.info("event=stopping grace_s=%.0f", self.stop_grace)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=2.0)
            self._remove_signals()
        log.info("event=stopped forced=%s", ",".join(self.forced) or "none")
        return 0

    async def _stop_parts(self) -> None:
        assert self.supervisor is not None
        self.forced = await self.supervisor.stop(self.stop_grace)
        state = self.state()
        state["stopped_at"] = iso(datetime.now(UTC))
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self._write_state, state)


# -- the state file `status` reads -------------------------------------------------


def write_state(state_dir: Path, state: dict[str, Any]) -> None:
    """Atomically replace <state_dir>/daemon.json, readable by the service user only."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = state_dir / STATE_FILE
    temp = target.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle, default=str)
    os.replace(temp, target)


def read_state(settings: Settings) -> dict[str, Any] | None:
    """The daemon's last written state, or None when it never ran here."""
    try:
        data = json.loads((settings.state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def daemon_status(settings: Settings, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The daemon as `status` shows it: running or not, its parts, its last mailbox sync.

    `running` needs a fresh state file (written every STATE_EVERY seconds) from
    a live process that has not recorded its stop; a state file left by a
    killed daemon reads as not running.
    """
    state = read_state(settings)
    if state is None:
        return None
    now = now or datetime.now(UTC)
    try:
        updated = datetime.fromisoformat(str(state.get("updated_at")))
        fresh = (now - updated).total_seconds() < 3 * STATE_EVERY
    except ValueError:
        fresh = False
    alive = False
    pid = state.get("pid")
    if isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
            alive = True
        except PermissionError:  # another user's process (DynamicUser): it exists
            alive = True
        except OSError:
            alive = False
    parts = state.get("parts") or {}
    mailbox = parts.get("mailbox") or {}
    return {
        "running": bool(alive and fresh and not state.get("stopped_at")),
        "pid": pid,
        "started_at": state.get("started_at"),
        "updated_at": state.get("updated_at"),
        "stopped_at": state.get("stopped_at"),
        "parts": parts,
        "last_mailbox_sync": mailbox.get("last_sync"),
    }


# -- entry point ------------------------------------------------------------------


def main(
    config_path: str | os.PathLike[str] | None,
    *,
    parts: Sequence[Part] | None = None,
    verbose: bool = False,
    **options: Any,
) -> int:
    """Run until SIGTERM; ConfigError (exit 2) is raised before anything starts."""
    settings = load_checked(config_path)
    setup_logging("debug" if verbose else settings.service.log_level,
                  settings.service.log_format)
    os.umask(0o077)  # state files, SQLite side files: the service user only
    for warning in settings.warnings():
        log.warning("event=config_warning config=%s note=%s", settings.source_path, warning)
    daemon = Daemon(config_path, settings, PARTS if parts is None else parts, **options)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    # Our own executor: asyncio's shutdown_default_executor() joins its threads
    # without a timeout, and one stuck network call would outlive TimeoutStopSec.
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="saygoodbye")
    loop.set_default_executor(executor)
    try:
        code = loop.run_until_complete(daemon.serve())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + EXECUTOR_GRACE
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    busy = [t.name for t in threading.enumerate()
            if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if busy:
        # A blocking call (a network timeout) outlived the grace: exit now rather
        # than overrun TimeoutStopSec; whatever it did was never committed.
        log.warning("event=stop_forced threads=%s", ",".join(busy))
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(code)
    return code

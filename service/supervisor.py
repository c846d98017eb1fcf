"""Supervised background parts and the systemd notification client.

A *part* is an async callable that runs until its context says stop (the IMAP
watcher, the outbox sender, retention …). The supervisor runs each part in
its own task; a crash is logged with its cause, recorded for
`saygoodbye status`, and the part restarts after an exponential, jittered,
capped delay, so one broken part neither kills the daemon nor spins. A part
that ran for a while before failing starts again from the shortest delay.

`Notifier` speaks the sd_notify datagram protocol (READY=1, WATCHDOG=1,
STOPPING=1, STATUS=…) over ``$NOTIFY_SOCKET``; it is a no-op when the
variable is unset, so the same code runs under systemd and in a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .mail.backoff import Backoff

log = logging.getLogger("saygoodbye.daemon")

# -- sd_notify ---------------------------------------------------------------


class Notifier:
    """Datagrams to systemd's notification socket (`man sd_notify`).

    Reads and removes ``NOTIFY_SOCKET``/``WATCHDOG_USEC``/``WATCHDOG_PID`` from
    the environment (as sd_notify's *unset_environment*), so forked workers do
    not talk to systemd on the service's behalf.
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        address = env.pop("NOTIFY_SOCKET", None) or None
        usec_text = env.pop("WATCHDOG_USEC", None)
        pid_text = env.pop("WATCHDOG_PID", None)
        usec: int | None = None
        if usec_text:
            try:
                usec = int(usec_text)
            except ValueError:
                log.warning("event=watchdog_ignored reason=%s", "WATCHDOG_USEC is not a number")
            # The watchdog is meant for another process (e.g. a wrapper's child).
            if pid_text and pid_text.strip() != str(os.getpid()):
                usec = None
            if usec is not None and usec <= 0:
                usec = None
        if address and not (address.startswith("/") or address.startswith("@")):
            log.warning("event=notify_unsupported address=%s", address)
            address = None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings: half the watchdog timeout, as systemd advises."""
        if not self.watchdog_usec:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            assert self.address is not None
            target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            sock.connect(target)
            self._sock = sock
        return self._sock

    def notify(self, **fields: Any) -> bool:
        """Send ``KEY=value`` lines in one datagram; False when not under systemd."""
        if not self.address:
            return False
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            self._socket().sendall(payload.encode("utf-8", "replace"))
        except OSError as exc:
            # systemd may be restarting; the service must not fail because of it
            log.warning("event=notify_failed error=%s", exc)
            self.close()
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify(ready=1, **({"status": status} if status else {}))

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(reloading=1, monotonic_usec=usec)

    def stopping(self, status: str | None = None) -> bool:
        return self.notify(stopping=1, **({"status": status} if status else {}))

    def status(self, text: str) -> bool:
        return self.notify(status=text.replace("\n", " "))

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# -- parts --------------------------------------------------------------------


class PartContext:
    """What a running part sees: the current settings, the store, its stop signal."""

    def __init__(self, name: str, runtime: Runtime) -> None:
        self.name = name
        self.runtime = runtime
        self.stopping = asyncio.Event()

    @property
    def settings(self) -> Any:
        """The settings in force now (a reload replaces them between passes)."""
        return self.runtime.settings

    @property
    def store(self) -> Any:
        return self.runtime.store

    async def sleep(self, seconds: float) -> bool:
        """Wait up to `seconds`; True as soon as the part is asked to stop."""
        if self.stopping.is_set():
            return True
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            return False
        return True


class Runtime(Protocol):
    """The daemon state parts read; settings change on a successful reload."""

    settings: Any
    store: Any


PartFn = Callable[[PartContext], Awaitable[None]]


@dataclass(frozen=True)
class Part:
    """One supervised service.

    `skip(settings)` returns why the part cannot run with these settings
    (e.g. no [mailbox] table), or None. `restart_on_reload` parts hold state
    built from the settings (a connection) and are restarted after a reload;
    the others read `ctx.settings` on every pass.
    """

    name: str
    run: PartFn
    skip: Callable[[Any], str | None] = lambda settings: None
    restart_on_reload: bool = False


@dataclass
class _Running:
    part: Part
    task: asyncio.Task[None]
    context: PartContext | None = None
    restarts: int = 0
    crashes: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    # set when the part must not run again (daemon stopping, part removed)
    halt: asyncio.Event = field(default_factory=asyncio.Event)


OnCrash = Callable[[str, BaseException], None]


class Supervisor:
    """Runs parts as tasks, restarts them after crashes, stops them on request."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 300.0,
        healthy_after: float = 60.0,
        on_crash: OnCrash | None = None,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.healthy_after = healthy_after
        self.on_crash = on_crash
        self.on_restart = on_restart
        self.closing = False
        self.running: dict[str, _Running] = {}

    # -- control --
    def start(self, part: Part) -> None:
        if part.name in self.running:
            raise ValueError(f"part {part.name!r} is already running")
        entry = _Running(part, task=None)  # type: ignore[arg-type]
        entry.task = asyncio.create_task(self._supervise(entry), name=f"part:{part.name}")
        self.running[part.name] = entry
        log.info("event=part_started part=%s", part.name)

    def restart(self, name: str) -> None:
        """Ask a part to finish its current pass; the supervisor starts it again at once."""
        entry = self.running.get(name)
        if entry and entry.context is not None:
            entry.context.stopping.set()

    async def remove(self, name: str, timeout: float) -> None:
        """Stop one part for good (e.g. its config table was removed by a reload)."""
        entry = self.running.pop(name, None)
        if entry is None:
            return
        self._halt(entry)
        await self._finish([entry], timeout)
        log.info("event=part_removed part=%s", name)

    def names(self) -> list[str]:
        return list(self.running)

    # -- the loop per part --
    async def _supervise(self, entry: _Running) -> None:
        part = entry.part
        backoff = Backoff(base=self.backoff_base, cap=self.backoff_cap)
        while not entry.halt.is_set():
            ctx = PartContext(part.name, self.runtime)
            entry.context = ctx
            began = time.monotonic()
            entry.started_at = began
            try:
                await part.run(ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                entry.crashes += 1
                error = f"{type(exc).__name__}: {exc}"
                # the traceback once per distinct error, not once per restart
                log.error("event=part_crashed part=%s crashes=%d error=%s", part.name,
                          entry.crashes, error,
                          exc_info=exc if error != entry.last_error else None)
                entry.last_error = error
                if self.on_crash is not None:
                    try:
                        self.on_crash(part.name, exc)
                    except Exception:  # recording must never take the supervisor down
                        log.exception("event=crash_record_failed part=%s", part.name)
            else:
                if entry.halt.is_set():
                    return
                if ctx.stopping.is_set():  # restart asked for (reload): go again now
                    log.info("event=part_restarted part=%s reason=reload", part.name)
                    continue
                entry.last_error = "returned without being asked to stop"
                log.warning("event=part_exited part=%s", part.name)
            if entry.halt.is_set():
                return
            if time.monotonic() - began >= self.healthy_after:
                backoff.reset()
            delay = backoff.next_delay()
            entry.restarts += 1
            log.warning("event=part_restart part=%s attempt=%d delay_s=%.1f",
                        part.name, backoff.attempt, delay)
            if self.on_restart is not None:
                self.on_restart(part.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.halt.wait(), timeout=delay)

    # -- shutdown --
    async def stop(self, timeout: float) -> list[str]:
        """Ask every part to stop; cancel what is still running after `timeout`.

        Returns the names of parts that had to be cancelled.
        """
        self.closing = True
        entries = list(self.running.values())
        for entry in entries:
            self._halt(entry)
        return await self._finish(entries, timeout)

    @staticmethod
    def _halt(entry: _Running) -> None:
        entry.halt.set()
        if entry.context is not None:
            entry.context.stopping.set()

    async def _finish(self, entries: list[_Running], timeout: float) -> list[str]:
        tasks = [e.task for e in entries]
        if not tasks:
            return []
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        forced = [e.part.name for e in entries if e.task in pending]
        for task in pending:
            task.cancel()
        if pending:
            log.warning("event=parts_cancelled parts=%s timeout_s=%.1f", ",".join(forced), timeout)
            await asyncio.wait(pending, timeout=2.0)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("event=part_failed_on_stop error=%s", task.exception())
        return forced

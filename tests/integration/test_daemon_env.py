"""Helpers for the daemon tests: the real process and a notification socket it talks to."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class NotifyListener:
    """systemd's side of sd_notify: a datagram socket collecting KEY=value messages."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address or f"@saygoodbye-test-{os.getpid()}-{secrets.token_hex(4)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        self.sock.bind(target)
        self.sock.settimeout(0.1)
        self.messages: list[dict[str, str]] = []

    def _drain(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            fields["_at"] = str(time.monotonic())
            self.messages.append(fields)

    def wait_for(self, key: str, value: str = "1", timeout: float = 45.0,
                 after: int = 0) -> dict[str, str]:
        """The first message (from index `after`) with key=value; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages[after:]:
                if message.get(key) == value:
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no {key}={value} within {timeout}s; got {self.messages}")
            self._drain()

    def count(self, key: str) -> int:
        self._drain()
        return sum(1 for m in self.messages if key in m)

    def close(self) -> None:
        self.sock.close()


class Daemon:
    """The daemon as a child process; stderr lines collected by a reader thread."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            list(argv), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_log(self, needle: str | Callable[[str], bool], timeout: float = 45.0) -> str:
        match = needle if callable(needle) else (lambda line: needle in line)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match(line):
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"log line {needle!r} not seen; log:\n" + "\n".join(self.lines))

    def logs(self, needle: str) -> list[str]:
        return [line for line in list(self.lines) if needle in line]

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 45.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(2)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def daemon_env(notify: NotifyListener, *, watchdog_usec: int | None = None,
               **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYGOODBYE")}
    env["NOTIFY_SOCKET"] = notify.address
    env["PYTHONUNBUFFERED"] = "1"
    if watchdog_usec:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    env.update(extra)
    return env


def cli_argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "service.cli", "--config", str(config), *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

"""Shared machinery for the fault suite: sizes, CLI subprocesses, config files, stored sets.

The suite runs twice over: a short form inside ``make test`` and the full form
(``SAYGOODBYE_FAULTS=full``, ``make faults``) with many more kill points.
Random choices come from one seed, printed, so a failing run can be replayed
with ``SAYGOODBYE_FAULTS_SEED``.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from email.parser import BytesHeaderParser
from pathlib import Path

from sqlalchemy import select

from service.store.db import Store
from service.store.models import Message
from tests.rig.dovecot import Dovecot
from tests.rig.smtp import Accepted, SmtpServer

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("SAYGOODBYE_FAULTS", "").lower() == "full"
PASSWORD_ENV = "SG_FAULTS_IMAP_PASSWORD"

# Runs the CLI, then reports the peak RSS of this process and its children
# (the ingest worker processes), so memory is measured where it is spent.
# Own peak from VmHWM, not RUSAGE_SELF: Linux carries the pre-exec peak into ru_maxrss,
# so a CLI started from a big pytest process would report pytest's size, not its own.
RSS_WRAPPER = """
import atexit, resource, runpy, sys
def report():
    with open("/proc/self/status") as fh:
        own = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stderr.write(f"fault_suite_maxrss_kb={max(own, kids)}\\n")
atexit.register(report)
sys.argv = ["saygoodbye", *sys.argv[1:]]
runpy.run_module("service.cli", run_name="__main__", alter_sys=True)
"""


def scale(short: int, full: int) -> int:
    """The short-form count inside `make test`, the full one under `make faults`."""
    return full if FULL else short


def rng(name: str) -> tuple[random.Random, int]:
    """A seeded generator for one test; the seed is printed for replays."""
    seed = int(os.environ.get("SAYGOODBYE_FAULTS_SEED", "0")) or random.SystemRandom().randrange(
        1, 2**31
    )
    print(f"[faults] {name}: seed={seed} (replay with SAYGOODBYE_FAULTS_SEED={seed})")
    return random.Random(seed), seed


def write_config(path: Path, dovecot: Dovecot, user: str, database: str,
                 extra: str = "") -> Path:
    """A config for the CLI: the shared mailbox on the rig Dovecot plus two clients."""
    path.write_text(
        f'[service]\ndatabase = "{database}"\nstate_dir = "{path.parent / "state"}"\n'
        'own_domains = ["northwind.test"]\n\n'
        f'[mailbox]\nhost = "{dovecot.host}"\nport = {dovecot.imap_port}\nsecurity = "none"\n'
        f'username = "{user}"\npassword_env = "{PASSWORD_ENV}"\ntimeout = 5\n\n'
        f"{extra}\n"
        '[[clients]]\nname = "Acme"\ndomains = ["acme.test"]\nowner = "olga@northwind.test"\n\n'
        '[[clients]]\nname = "Globex"\ndomains = ["globex.test"]\nowner = "paul@northwind.test"\n',
        encoding="utf-8",
    )
    return path


def cli_env(dovecot: Dovecot, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYGOODBYE")}
    env[PASSWORD_ENV] = dovecot.password(user)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_cli(config: Path, env: dict[str, str], *args: str, measure_rss: bool = False,
              log: Path | None = None) -> subprocess.Popen[str]:
    """The real `saygoodbye` command in its own session (so a kill takes its workers too).

    With `log`, output goes to that file (a process about to be killed never
    drains a pipe); else it is piped for `communicate`.
    """
    argv = [sys.executable, "-c", RSS_WRAPPER] if measure_rss else [
        sys.executable, "-m", "service.cli"]
    sink = log.open("a") if log is not None else subprocess.PIPE
    try:
        return subprocess.Popen(
            [*argv, "--config", str(config), *args], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, text=True,
            start_new_session=True,
        )
    finally:
        if log is not None:
            sink.close()  # type: ignore[union-attr]


def run_cli(config: Path, env: dict[str, str], *args: str, timeout: float = 120,
            measure_rss: bool = False) -> tuple[int, str, str]:
    proc = start_cli(config, env, *args, measure_rss=measure_rss)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise
    return proc.returncode, out, err


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process and everything it started (its session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def maxrss_mb(stderr: str) -> float:
    for line in reversed(stderr.splitlines()):
        if line.startswith("fault_suite_maxrss_kb="):
            return int(line.split("=", 1)[1]) / 1024
    raise AssertionError("peak RSS not reported:\n" + stderr[-2000:])


def header_ids(raws: list[bytes]) -> list[str]:
    parser = BytesHeaderParser()
    return [str(parser.parsebytes(raw)["Message-ID"]).strip() for raw in raws]


def stored_ids(url: str) -> list[str]:
    store = Store(url, migrate_schema=False)
    try:
        with store.session() as session:
            return list(session.scalars(select(Message.message_id)))
    except Exception:
        return []
    finally:
        store.dispose()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.1) -> None:
    """Poll a condition that a separate process brings about; fail with what was awaited."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def delivered_per_id(raws: list[bytes]) -> Counter[str]:
    """Message-ID -> copies in a real mailbox (the recipient's view of exactly-once)."""
    return Counter(header_ids(raws))


class FilingSmtpServer(SmtpServer):
    """A relay that also files each accepted message in the sender's Sent folder.

    Gmail and Exchange do this on their own; it is what lets an `uncertain`
    send (crash after DATA) be settled through the Sent check.
    """

    def __init__(self, dovecot: Dovecot, sender: str, **kwargs: object) -> None:
        super().__init__(dovecot, **kwargs)  # type: ignore[arg-type]
        self.sender = sender

    def _deliver(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> Accepted:
        accepted = super()._deliver(mail_from, rcpt_tos, raw)
        self.dovecot.append(self.sender, raw, folder="Sent", flags=(b"\\Seen",))
        return accepted

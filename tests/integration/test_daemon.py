"""The real daemon process under a fake systemd: READY, WATCHDOG, reload, stop, crashes."""

from __future__ import annotations

import itertools
import json
import signal
import stat
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service import cli
from service.app import open_store, status_report
from service.config import load_settings
from tests.integration.test_daemon_env import (
    Daemon,
    NotifyListener,
    cli_argv,
    daemon_env,
    free_port,
)

pytestmark = pytest.mark.integration

BASE = """\
[service]
database = "sqlite:///{state}/saygoodbye.db"
state_dir = "{state}"
log_level = "info"
"""
CLIENT = """
[[clients]]
name = "Acme"
domains = ["acme.com"]
owner = "maria@northwind.studio"
"""


@pytest.fixture
def notify() -> Iterator[NotifyListener]:
    listener = NotifyListener()
    yield listener
    listener.close()


def _write(path: Path, text: str) -> None:
    # replace atomically, as an editor or config management would
    temp = path.with_suffix(".new")
    temp.write_text(text, encoding="utf-8")
    temp.replace(path)


def _status(config: Path) -> dict[str, Any]:
    settings = load_settings(config)
    store = open_store(settings)
    try:
        return status_report(settings, store)
    finally:
        store.dispose()


def test_ready_watchdog_reload_and_clean_stop(tmp_path: Path, notify: NotifyListener) -> None:
    state = tmp_path / "state"
    config = tmp_path / "config.toml"
    base = BASE.format(state=state)
    _write(config, base)
    daemon = Daemon(cli_argv(config, "run"), daemon_env(notify, watchdog_usec=300_000))
    try:
        ready = notify.wait_for("READY")
        assert ready["STATUS"] == "running: scheduler, retention"
        daemon.wait_log("event=part_skipped part=mailbox reason=no [mailbox] table")
        daemon.wait_log("event=scheduler_started")
        daemon.wait_log("event=jobs_registered source=service.workflows.digest:schedule_digests")
        daemon.wait_log("event=jobs_registered source=service.workflows.offboarding")
        # WATCHDOG=1 every half WATCHDOG_USEC (0.15 s): several within a second
        time.sleep(1.0)
        assert notify.count("WATCHDOG") >= 4
        # the state file `status` reads, owner-only like the database
        state_file = state / "daemon.json"
        assert json.loads(state_file.read_text())["pid"] == daemon.proc.pid
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((state / "saygoodbye.db").stat().st_mode) == 0o600
        status = _status(config)
        assert status["daemon"]["running"] is True
        assert status["daemon"]["pid"] == daemon.proc.pid
        assert set(status["daemon"]["parts"]) == {"scheduler", "retention"}
        assert status["last_sync"] is None and status["mailbox_lag_seconds"] is None

        # SIGHUP with a good config: applied, logged, READY again
        _write(config, base.replace('"info"', '"debug"') + CLIENT)
        mark = len(notify.messages)
        daemon.signal(signal.SIGHUP)
        notify.wait_for("RELOADING", after=mark)
        line = daemon.wait_log("event=reloaded")
        assert "changed=clients,service" in line
        notify.wait_for("READY", after=mark)

        # SIGHUP with a bad config: rejected with the key named, old settings kept
        _write(config, base + "[service.extra]\n" + CLIENT.replace("owner", "ownr"))
        daemon.signal(signal.SIGHUP)
        line = daemon.wait_log("event=reload_rejected")
        assert "clients[0].owner (client 'Acme')" in line
        assert "running configuration stays in force" in line
        # a missing credential is as bad as a typo
        _write(config, base + '[mailbox]\nhost = "127.0.0.1"\nusername = "sg@northwind.studio"\n'
               f'password_file = "{tmp_path}/absent"\n')
        daemon.signal(signal.SIGHUP)
        daemon.wait_log(lambda s: "reload_rejected" in s and "cannot read secret file" in s)
        assert daemon.proc.poll() is None
        assert not daemon.logs("part_started part=mailbox")
        watchdogs = notify.count("WATCHDOG")
        time.sleep(0.5)
        assert notify.count("WATCHDOG") > watchdogs  # still alive and pinging

        # SIGTERM: STOPPING=1, exit 0, quickly
        mark = len(notify.messages)
        began = time.monotonic()
        assert daemon.stop(timeout=10) == 0
        stopped_in = time.monotonic() - began
        print(f"SIGTERM to exit 0: {stopped_in:.2f} s")
        assert stopped_in < 5
        notify.wait_for("STOPPING", after=mark, timeout=1)
        daemon.wait_log("event=stopped forced=none")
        assert json.loads(state_file.read_text())["stopped_at"]
        assert _status(config)["daemon"]["running"] is False
        assert not daemon.logs("Traceback")
    finally:
        daemon.kill()


def test_reload_starts_the_mailbox_watcher_and_stop_ends_it(
    tmp_path: Path, notify: NotifyListener
) -> None:
    """A [mailbox] added by reload starts its part; an unreachable server is retried, and
    SIGTERM still stops the watcher thread and exits 0."""
    state = tmp_path / "state"
    config = tmp_path / "config.toml"
    base = BASE.format(state=state)
    _write(config, base)
    env = daemon_env(notify, SG_TEST_IMAP_PASSWORD="secret")
    daemon = Daemon(cli_argv(config, "run"), env)
    try:
        notify.wait_for("READY")
        _write(config, base + f'[mailbox]\nhost = "127.0.0.1"\nport = {free_port()}\n'
               'security = "none"\nusername = "sg@northwind.studio"\n'
               'password_env = "SG_TEST_IMAP_PASSWORD"\n')
        daemon.signal(signal.SIGHUP)
        daemon.wait_log("event=part_started part=mailbox")
        daemon.wait_log("event=imap_reconnect")
        assert not daemon.logs("secret\n")
        began = time.monotonic()
        assert daemon.stop(timeout=15) == 0
        assert time.monotonic() - began < 8
        daemon.wait_log("event=stopped forced=none")
        # secrets never reach the log
        assert not any("secret" in line.split("event=")[-1] for line in daemon.lines
                       if "SG_TEST" not in line)
    finally:
        daemon.kill()


LAUNCHER = """
import asyncio, sys, time
from pathlib import Path
from service import daemon
from service.supervisor import Part

attempts = Path(sys.argv[2])

async def flaky(ctx):
    with attempts.open("a") as f:
        f.write(f"{time.monotonic()}\\n")
    await ctx.sleep(0.05)
    raise RuntimeError("boom: the part fell over")

async def steady(ctx):
    while not await ctx.sleep(0.1):
        pass

async def stubborn(ctx):
    await asyncio.to_thread(time.sleep, 60)  # ignores the stop request

parts = [Part("flaky", flaky), Part("steady", steady)]
if "--stubborn" in sys.argv:
    parts = [Part("stubborn", stubborn), Part("steady", steady)]
sys.exit(daemon.main(sys.argv[1], parts=parts, backoff_base=0.1, backoff_cap=0.4,
                     stop_grace=1.0))
"""


def test_a_crashing_part_restarts_with_capped_backoff(tmp_path: Path,
                                                      notify: NotifyListener) -> None:
    state = tmp_path / "state"
    config = tmp_path / "config.toml"
    port = free_port()
    _write(config, BASE.format(state=state) + f'metrics = "127.0.0.1:{port}"\n')
    attempts = tmp_path / "attempts"
    argv = [sys.executable, "-c", textwrap.dedent(LAUNCHER), str(config), str(attempts)]
    daemon = Daemon(argv, daemon_env(notify))
    try:
        notify.wait_for("READY")
        time.sleep(3.0)
        assert daemon.proc.poll() is None
        crash = daemon.wait_log("event=part_crashed part=flaky")
        assert "error=RuntimeError: boom: the part fell over" in crash
        assert "Traceback" in crash  # the first crash carries its traceback
        assert sum("Traceback" in line for line in daemon.logs("part_crashed")) == 1
        times = [float(x) for x in attempts.read_text().split()]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # restarted, but neither spinning nor waiting beyond the cap
        print(f"crashing part: {len(times)} runs in ~3 s, gaps {min(gaps):.2f}-{max(gaps):.2f} s")
        assert 5 <= len(times) <= 30, times
        assert all(gap >= 0.05 + 0.05 * 0.9 for gap in gaps)
        assert max(gaps) < 0.4 + 0.05 + 0.5
        delays = [float(line.split("delay_s=")[1].split()[0].strip("\""))
                  for line in daemon.logs("event=part_restart part=flaky")]
        assert max(delays) <= 0.4 and delays[0] <= 0.1
        assert not daemon.logs("part=steady attempt")  # the healthy part was left alone

        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        restarts = [line for line in body.decode().splitlines()
                    if line.startswith('saygoodbye_part_restarts_total{part="flaky"}')]
        assert restarts and float(restarts[0].split()[-1]) >= 4
        assert "saygoodbye_messages_stored 0.0" in body.decode()  # read from the store

        assert daemon.stop(timeout=10) == 0
        # the crashes are in `status` as recent errors
        errors = _status(config)["errors"]
        assert any(e["component"] == "daemon.flaky" and "boom" in e["message"] for e in errors)
    finally:
        daemon.kill()


def test_a_part_that_ignores_stop_is_cut_off_within_the_grace(
    tmp_path: Path, notify: NotifyListener
) -> None:
    state = tmp_path / "state"
    config = tmp_path / "config.toml"
    _write(config, BASE.format(state=state))
    argv = [sys.executable, "-c", textwrap.dedent(LAUNCHER), str(config),
            str(tmp_path / "attempts"), "--stubborn"]
    daemon = Daemon(argv, daemon_env(notify))
    try:
        notify.wait_for("READY")
        began = time.monotonic()
        assert daemon.stop(timeout=15) == 0
        assert time.monotonic() - began < 10  # grace 1 s + executor wait 5 s, not 60 s
        daemon.wait_log("event=parts_cancelled parts=stubborn")
        daemon.wait_log("event=stop_forced")
    finally:
        daemon.kill()


def test_a_bad_config_at_start_exits_2_before_anything_starts(
    tmp_path: Path, notify: NotifyListener, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.toml"
    _write(config, BASE.format(state=tmp_path / "state") + "keep_bodies_days = 0\n")
    monkeypatch.setenv("NOTIFY_SOCKET", notify.address)
    assert cli.main(["--config", str(config), "run"]) == 2
    assert "service.keep_bodies_days" in capsys.readouterr().err
    assert notify.count("READY") == 0
    assert not (tmp_path / "state").exists()

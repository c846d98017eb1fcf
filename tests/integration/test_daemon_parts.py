"""The daemon's building blocks in-process: sd_notify client, supervisor, metrics, state."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import tempfile
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import generate_latest

from service import metrics
from service.config import settings_from_mapping
from service.daemon import check_secrets, daemon_status, write_state
from service.errors import ConfigError
from service.store.db import Store
from service.store.models import CommandLog, OutboxMessage
from service.supervisor import Notifier, Part, PartContext, Supervisor
from tests.integration.test_daemon_env import free_port

# -- Notifier -------------------------------------------------------------------


@pytest.fixture
def socket_path() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="sgn")  # short: AF_UNIX paths stop at 108 bytes
    path = os.path.join(folder, "notify")
    yield path
    if os.path.exists(path):
        os.unlink(path)
    os.rmdir(folder)


def test_notifier_sends_datagrams_and_unsets_the_environment(socket_path: str) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(socket_path)
    server.settimeout(2)
    env = {"NOTIFY_SOCKET": socket_path, "WATCHDOG_USEC": "30000000",
           "WATCHDOG_PID": str(os.getpid()), "OTHER": "x"}
    notifier = Notifier.from_environment(env)
    assert env == {"OTHER": "x"}  # children must not notify on our behalf
    assert notifier.watchdog_interval == 15.0
    assert notifier.ready(status="running: scheduler")
    assert server.recv(4096) == b"READY=1\nSTATUS=running: scheduler"
    assert notifier.status("two\nlines")
    assert server.recv(4096) == b"STATUS=two lines"
    assert notifier.reloading()
    message = server.recv(4096).decode()
    assert message.startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert notifier.watchdog() and server.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping() and server.recv(4096) == b"STOPPING=1"
    server.close()
    os.unlink(socket_path)
    # systemd went away: reported, never raised
    assert notifier.watchdog() is False
    notifier.close()


def test_notifier_without_systemd_or_for_another_pid() -> None:
    quiet = Notifier.from_environment({})
    assert not quiet.enabled and quiet.ready() is False and quiet.watchdog_interval is None
    other = Notifier.from_environment({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000",
                                       "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None  # the watchdog is meant for pid 1, not us
    assert Notifier.from_environment({"NOTIFY_SOCKET": "vsock:2:9999"}).enabled is False
    assert Notifier.from_environment({"NOTIFY_SOCKET": "@x",
                                      "WATCHDOG_USEC": "soon"}).watchdog_interval is None


# -- Supervisor --------------------------------------------------------------------


def _runtime() -> Any:
    return SimpleNamespace(settings=settings_from_mapping({}), store=None)


def test_supervisor_restarts_crashes_with_capped_backoff_and_records_them() -> None:
    crashes: list[str] = []
    runs: list[float] = []

    async def flaky(ctx: PartContext) -> None:
        runs.append(asyncio.get_running_loop().time())
        raise ValueError(f"bad {len(runs)}")

    async def scenario() -> Supervisor:
        supervisor = Supervisor(_runtime(), backoff_base=0.02, backoff_cap=0.08,
                                on_crash=lambda name, exc: crashes.append(f"{name}:{exc}"))
        supervisor.start(Part("flaky", flaky))
        await asyncio.sleep(0.6)
        assert await supervisor.stop(1.0) == []
        return supervisor

    supervisor = asyncio.run(scenario())
    entry = supervisor.running["flaky"]
    assert 5 <= len(runs) <= 40
    assert crashes[:2] == ["flaky:bad 1", "flaky:bad 2"]
    assert entry.crashes == len(runs) and entry.last_error == f"ValueError: bad {len(runs)}"
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert min(gaps) >= 0.01 * 0.9 and max(gaps) < 0.08 + 0.1


def test_a_part_that_ran_long_enough_starts_over_from_the_shortest_delay() -> None:
    delays: list[int] = []

    async def slow_then_fail(ctx: PartContext) -> None:
        await ctx.sleep(0.06)
        raise RuntimeError("late failure")

    async def scenario() -> None:
        supervisor = Supervisor(_runtime(), backoff_base=0.01, backoff_cap=10.0,
                                healthy_after=0.05)
        supervisor.on_restart = lambda name: delays.append(
            supervisor.running[name].restarts)
        supervisor.start(Part("p", slow_then_fail))
        await asyncio.sleep(0.5)
        await supervisor.stop(1.0)

    asyncio.run(scenario())
    # without the reset, 0.01·2^n would have grown past the test's length
    assert len(delays) >= 4


def test_restart_on_request_remove_and_forced_stop() -> None:
    starts: dict[str, int] = {"steady": 0, "stubborn": 0, "quitter": 0}

    async def steady(ctx: PartContext) -> None:
        starts["steady"] += 1
        await ctx.stopping.wait()

    async def stubborn(ctx: PartContext) -> None:
        starts["stubborn"] += 1
        await asyncio.sleep(30)  # ignores ctx.stopping

    async def quitter(ctx: PartContext) -> None:
        starts["quitter"] += 1  # returns without being asked

    async def scenario() -> None:
        supervisor = Supervisor(_runtime(), backoff_base=0.01, backoff_cap=0.02)
        for fn in (steady, stubborn, quitter):
            supervisor.start(Part(fn.__name__, fn))
        with pytest.raises(ValueError):
            supervisor.start(Part("steady", steady))
        await asyncio.sleep(0.1)
        supervisor.restart("steady")  # a reload: stop this pass, start again at once
        await asyncio.sleep(0.05)
        assert starts["steady"] == 2
        assert supervisor.running["steady"].crashes == 0
        assert starts["quitter"] >= 2
        assert supervisor.running["quitter"].last_error == "returned without being asked to stop"
        await supervisor.remove("quitter", 1.0)
        count = starts["quitter"]
        await asyncio.sleep(0.1)
        assert starts["quitter"] == count and "quitter" not in supervisor.names()
        assert await supervisor.stop(0.2) == ["stubborn"]

    asyncio.run(scenario())


def test_part_context_sleep_wakes_on_stop() -> None:
    async def scenario() -> None:
        ctx = PartContext("p", _runtime())
        assert await ctx.sleep(0.01) is False
        asyncio.get_running_loop().call_later(0.02, ctx.stopping.set)
        began = asyncio.get_running_loop().time()
        assert await ctx.sleep(30) is True
        assert asyncio.get_running_loop().time() - began < 1
        assert ctx.settings.service.keep_bodies_days == 365

    asyncio.run(scenario())


# -- metrics -------------------------------------------------------------------------


@pytest.mark.parametrize("text,host,port,loopback", [
    ("127.0.0.1:9464", "127.0.0.1", 9464, True),
    ("[::1]:9464", "::1", 9464, True),
    (":9464", "127.0.0.1", 9464, True),
    ("localhost:1", "localhost", 1, True),
    ("0.0.0.0:9464", "0.0.0.0", 9464, False),
])
def test_metrics_endpoint_parsing(text: str, host: str, port: int, loopback: bool) -> None:
    endpoint = metrics.parse_endpoint(text)
    assert (endpoint.host, endpoint.port, endpoint.loopback) == (host, port, loopback)


@pytest.mark.parametrize("text", ["9464", "127.0.0.1:", "127.0.0.1:99999", "host:port"])
def test_metrics_endpoint_errors_name_the_key(text: str) -> None:
    with pytest.raises(ConfigError, match=r"service\.metrics"):
        metrics.parse_endpoint(text)


def test_metrics_served_with_figures_from_the_store(sqlite_url: str) -> None:
    metrics.reset()
    store = Store(sqlite_url)
    with store.session() as s:
        for n, (kind, state) in enumerate([("alert", "sent"), ("alert", "sent"),
                                            ("farewell", "failed")]):
            s.add(OutboxMessage(kind=kind, state=state, from_addr="a@b", to_addrs=["c@d"],
                                message_id=f"<o{n}@x>", raw=b"x"))
        s.add_all([CommandLog(message_id="<r1@x>", accepted=False, reason="not the owner"),
                   CommandLog(message_id="<r2@x>", accepted=True)])
    metrics.messages_ingested(7)
    metrics.sync_finished(0.3)
    metrics.sync_finished(0.0)  # unmeasured: no observation
    metrics.command_rejected("Token expired: at 2026-01-01")
    metrics.send_report(SimpleNamespace(sent=[1, 2], failed=[3], retried=[]))
    port = free_port()
    server = metrics.serve(f"127.0.0.1:{port}", store)
    assert server is not None
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    finally:
        server.close()
        store.dispose()
    text = body.decode()
    assert 'saygoodbye_outbox_messages{kind="alert",state="sent"} 2.0' in text
    assert 'saygoodbye_outbox_messages{kind="farewell",state="failed"} 1.0' in text
    assert 'saygoodbye_owner_replies_total{accepted="false"} 1.0' in text
    assert "saygoodbye_messages_stored 0.0" in text
    assert "saygoodbye_messages_ingested_total 7.0" in text
    assert "saygoodbye_sync_seconds_count 1.0" in text
    assert 'saygoodbye_command_rejections_total{reason="token_expired"} 1.0' in text
    assert 'saygoodbye_sends_total{outcome="sent"} 2.0' in text
    # closed: the store collector is gone from the registry
    assert b"saygoodbye_outbox_messages" not in generate_latest(metrics.registry())
    assert metrics.serve(None) is None


# -- the state file status reads -------------------------------------------------------


def test_daemon_status_from_the_state_file(tmp_path: Path) -> None:
    settings = settings_from_mapping({"service": {"state_dir": str(tmp_path / "st")}})
    assert daemon_status(settings) is None
    now = datetime.now(UTC)
    state = {"pid": os.getpid(), "started_at": now.isoformat(), "updated_at": now.isoformat(),
             "parts": {"mailbox": {"last_sync": now.isoformat(), "restarts": 0}}}
    write_state(settings.state_dir, state)
    assert (settings.state_dir / "daemon.json").stat().st_mode & 0o077 == 0
    status = daemon_status(settings)
    assert status is not None and status["running"] is True
    assert status["last_mailbox_sync"] == now.isoformat()
    # a killed daemon leaves a stale file: not running
    stale = (now - timedelta(minutes=5)).isoformat()
    write_state(settings.state_dir, {**state, "updated_at": stale})
    assert daemon_status(settings)["running"] is False  # type: ignore[index]
    write_state(settings.state_dir, {**state, "pid": 2**22 + 12345})
    assert daemon_status(settings)["running"] is False  # type: ignore[index]
    write_state(settings.state_dir, {**state, "stopped_at": now.isoformat()})
    assert daemon_status(settings)["running"] is False  # type: ignore[index]


# -- secrets are checked at start and on reload -----------------------------------------


def test_check_secrets_follows_the_login_method(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    mailbox = {"host": "imap.example.com", "username": "team@example.com"}
    oauth = {**mailbox, "auth": "oauth2", "oauth2_provider": "microsoft",
             "oauth2_client_id": "abc",
             "oauth2_refresh_token_file": str(tmp_path / "refresh-token")}
    with pytest.raises(ConfigError, match="refresh-token"):
        check_secrets(settings_from_mapping({"mailbox": oauth}))
    (tmp_path / "refresh-token").write_text("rt")
    check_secrets(settings_from_mapping({"mailbox": oauth}))  # no password needed
    with pytest.raises(ConfigError, match="no secret configured"):
        check_secrets(settings_from_mapping({"mailbox": mailbox}))
    monkeypatch.setenv("SG_PW", "x")
    check_secrets(settings_from_mapping({"mailbox": {**mailbox, "password_env": "SG_PW"}}))
    with pytest.raises(ConfigError, match="SG_SECRET"):
        check_secrets(settings_from_mapping({"approvals": {"secret_env": "SG_SECRET"}}))
    with pytest.raises(ConfigError, match=r"service\.metrics"):
        check_secrets(settings_from_mapping({"service": {"metrics": "nowhere"}}))

"""The daemon against a real Dovecot: mail delivered while it runs is stored via IDLE,
a server restart is survived, and a restart of the daemon stores nothing twice."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.store.db import Store
from service.store.models import Message
from tests.integration.test_daemon_env import Daemon, NotifyListener, cli_argv, daemon_env
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration


def _mail(n: int) -> bytes:
    return (
        f"From: Bob <bob@acme.test>\r\nTo: team@northwind.test\r\nSubject: Status {n}\r\n"
        f"Message-ID: <daemon-{n}@acme.test>\r\nDate: {format_datetime(datetime.now(UTC))}\r\n"
        f"\r\nThanks for the update on item {n}, that works for us.\r\n"
    ).encode()


@pytest.fixture
def notify() -> Iterator[NotifyListener]:
    listener = NotifyListener()
    yield listener
    listener.close()


def _count(url: str) -> int:
    store = Store(url, migrate_schema=False)
    try:
        with store.session() as s:
            return s.scalar(select(func.count()).select_from(Message)) or 0
    finally:
        store.dispose()


def _wait_count(url: str, expected: int, timeout: float = 30.0) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if _count(url) >= expected:
            return time.monotonic() - began
        time.sleep(0.1)
    raise AssertionError(f"{_count(url)} messages stored, expected {expected}")


def _config(tmp_path: Path, dovecot: Dovecot, shared_mailbox: str) -> tuple[Path, str]:
    """A daemon config on the rig's mailbox with one client; returns it and the DB URL."""
    state = tmp_path / "state"
    url = f"sqlite:///{state}/saygoodbye.db"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[service]\ndatabase = "{url}"\nstate_dir = "{state}"\n\n'
        f'[mailbox]\nhost = "{dovecot.host}"\nport = {dovecot.imap_port}\nsecurity = "none"\n'
        f'username = "{shared_mailbox}"\npassword_env = "SG_IMAP_PASSWORD"\n\n'
        '[[clients]]\nname = "Acme"\ndomains = ["acme.test"]\nowner = "maria@northwind.test"\n',
        encoding="utf-8",
    )
    return config, url


def test_daemon_stores_mail_as_it_arrives_and_survives_restarts(
    tmp_path: Path, dovecot: Dovecot, shared_mailbox: str, notify: NotifyListener,
    record_property: pytest.RecordProperty,
) -> None:
    config, url = _config(tmp_path, dovecot, shared_mailbox)
    dovecot.deliver(shared_mailbox, _mail(1))  # waiting before the daemon starts
    env = daemon_env(notify, SG_IMAP_PASSWORD=dovecot.password(shared_mailbox),
                     PYTHONFAULTHANDLER="1")
    daemon = Daemon(cli_argv(config, "run"), env)
    try:
        notify.wait_for("READY", timeout=30)
        daemon.wait_log("event=imap_watch mode=idle")
        _wait_count(url, 1)
        dovecot.deliver(shared_mailbox, _mail(2))
        try:
            latency = _wait_count(url, 2)
        except AssertionError:  # show where every thread is (faulthandler), then fail
            daemon.signal(signal.SIGABRT)
            time.sleep(1)
            print("\n".join(daemon.lines))
            raise
        record_property("idle_store_latency_s", round(latency, 2))
        print(f"delivered-to-stored latency under IDLE: {latency:.2f} s")
        assert latency < 10

        dovecot.restart()  # the server goes away under IDLE and comes back
        dovecot.deliver(shared_mailbox, _mail(3))
        _wait_count(url, 3, timeout=60)
        daemon.wait_log("event=imap_reconnect")
        assert daemon.stop(timeout=20) == 0
        daemon.wait_log("event=stopped forced=none")
    finally:
        daemon.kill()

    # started again: the checkpoint holds, nothing is stored twice, new mail still comes in
    dovecot.deliver(shared_mailbox, _mail(4))
    again = Daemon(cli_argv(config, "run"), env)
    try:
        notify.wait_for("READY", after=len(notify.messages), timeout=30)
        _wait_count(url, 4)
        time.sleep(1.0)
        assert _count(url) == 4
        assert again.stop(timeout=20) == 0
    finally:
        again.kill()


def test_health_is_scored_in_a_child_process_that_ends_with_the_daemon(
    tmp_path: Path, dovecot: Dovecot, shared_mailbox: str, notify: NotifyListener,
) -> None:
    import psutil

    from service.store.models import ClientState

    config, url = _config(tmp_path, dovecot, shared_mailbox)
    env = daemon_env(notify, SG_IMAP_PASSWORD=dovecot.password(shared_mailbox))
    daemon = Daemon(cli_argv(config, "run"), env)
    try:
        notify.wait_for("READY", timeout=30)
        daemon.wait_log("event=imap_watch mode=idle")
        dovecot.deliver(shared_mailbox, _mail(1))
        _wait_count(url, 1)
        deadline = time.monotonic() + 30
        computed = None
        while time.monotonic() < deadline and computed is None:
            store = Store(url, migrate_schema=False)
            with store.session() as s:
                row = s.get(ClientState, "Acme")
                computed = row.computed_at if row is not None and row.state else None
            store.dispose()
            time.sleep(0.1)
        assert computed is not None, "Acme was never assessed"
        children = psutil.Process(daemon.proc.pid).children(recursive=True)
        assert children, "scoring runs in a child process of the daemon"
        assert daemon.stop(timeout=20) == 0
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left behind: {alive}"
    finally:
        daemon.kill()

"""Pytest fixtures for the real-server rig (load with ``pytest_plugins``).

One Dovecot runs for the whole session; each test gets it reset (no users,
fresh mailboxes) so tests never see each other's mail. Tests that restart,
kill or reconfigure a server use ``dovecot_factory`` for a private instance.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.rig.dovecot import Dovecot
from tests.rig.smtp import SmtpServer

SHARED_MAILBOX = "team@northwind.test"


def _require_dovecot() -> None:
    if shutil.which("dovecot") is None and not os.path.exists("/usr/sbin/dovecot"):
        pytest.skip("dovecot not installed: run tools/install_test_deps.sh")


@pytest.fixture(scope="session")
def dovecot_session() -> Iterator[Dovecot]:
    """The Dovecot shared by the whole run; prefer the per-test ``dovecot``."""
    _require_dovecot()
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def dovecot(dovecot_session: Dovecot) -> Iterator[Dovecot]:
    """A running Dovecot with no users and empty mailboxes for this test."""
    if not dovecot_session.running:  # a previous test stopped it
        dovecot_session.start()
    dovecot_session.reset()
    yield dovecot_session
    if not dovecot_session.running:
        dovecot_session.start()


@pytest.fixture
def dovecot_factory() -> Iterator[Callable[..., Dovecot]]:
    """Start private Dovecot instances (e.g. ``idle=False``); all stopped at teardown."""
    _require_dovecot()
    started: list[Dovecot] = []

    def make(**kwargs: Any) -> Dovecot:
        server = Dovecot(**kwargs)
        started.append(server)
        server.start()
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def shared_mailbox(dovecot: Dovecot) -> str:
    """The agency's shared mailbox user, created in the per-test Dovecot."""
    return dovecot.add_user(SHARED_MAILBOX)


@pytest.fixture
def smtp_server(dovecot: Dovecot) -> Iterator[SmtpServer]:
    """An authenticating SMTP server that delivers into ``dovecot``."""
    server = SmtpServer(dovecot)
    server.start()
    try:
        yield server
    finally:
        server.stop()

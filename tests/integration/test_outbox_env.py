"""Settings and helpers shared by the outbox, approvals and scheduler tests (real servers).

No tests here: each test module wraps :func:`open_env` in its own fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings, settings_from_mapping
from service.store.db import Store
from tests.rig.dovecot import Dovecot
from tests.rig.smtp import SmtpServer

SERVICE = "team@northwind.test"
OWNER = "olga@northwind.test"
OTHER_OWNER = "piet@northwind.test"
CLIENT = "ana@acme.test"
AUTHSERV = "mx.northwind.test"
SMTP_PASSWORD_ENV = "SG_TEST_SMTP_PASSWORD"
IMAP_PASSWORD_ENV = "SG_TEST_IMAP_PASSWORD"


def make_settings(
    dovecot: Dovecot,
    smtp: SmtpServer,
    database_url: str,
    *,
    send_mode: str = "live",
    save_to_sent: str = "always",
    window: str = "00:00-24:00",
    days: str = "mon-sun",
    client_tz: str = "Europe/Berlin",
    require_authenticated: bool = True,
    **smtp_extra: Any,
) -> Settings:
    return settings_from_mapping(
        {
            "service": {
                "database": database_url,
                "send_mode": send_mode,
                "own_domains": ["northwind.test"],
                "timezone": "Europe/Berlin",
            },
            "mailbox": {
                "host": dovecot.host,
                "port": dovecot.imap_port,
                "security": "none",
                "username": SERVICE,
                "password_env": IMAP_PASSWORD_ENV,
                "timeout": 5,
            },
            "smtp": {
                "host": smtp.host,
                "port": smtp.port,
                "security": "none",
                "username": smtp.username,
                "password_env": SMTP_PASSWORD_ENV,
                "from_address": SERVICE,
                "save_to_sent": save_to_sent,
                "timeout": 3,
                **smtp_extra,
            },
            "approvals": {
                "require_authenticated": require_authenticated,
                "authserv_id": AUTHSERV,
                "expiry_hours": 24,
            },
            "schedule": {"send_window": window, "send_days": days},
            "clients": [
                {"name": "Acme", "domains": ["acme.test"], "owner": OWNER, "timezone": client_tz},
                {"name": "Globex", "domains": ["globex.test"], "owner": OTHER_OWNER},
            ],
            "owners": [{"email": OWNER, "name": "Olga"}, {"email": OTHER_OWNER, "name": "Piet"}],
        }
    )


@dataclass
class Env:
    dovecot: Dovecot
    smtp: SmtpServer
    settings: Settings
    store: Store

    def inbox(self, address: str) -> list[EmailMessage]:
        return [parse(raw) for raw in self.dovecot.messages(address)]

    def raw_inbox(self, address: str) -> list[bytes]:
        return self.dovecot.messages(address)

    def sent(self) -> list[EmailMessage]:
        return [parse(raw) for raw in self.dovecot.messages(SERVICE, "Sent")]


def parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def open_env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             **settings_kwargs: Any) -> Iterator[Env]:
    """Service mailbox, two owners and a client mailbox; an SMTP relay stamping our A-R."""
    for address in (SERVICE, OWNER, OTHER_OWNER, CLIENT):
        dovecot.add_user(address)
    smtp = SmtpServer(dovecot, authserv_id=AUTHSERV)
    smtp.start()
    monkeypatch.setenv(SMTP_PASSWORD_ENV, smtp.password)
    monkeypatch.setenv(IMAP_PASSWORD_ENV, dovecot.password(SERVICE))
    url = f"sqlite:///{tmp_path / 'state' / 'sg.db'}"
    settings = make_settings(dovecot, smtp, url, **settings_kwargs)
    store = Store(url)
    try:
        yield Env(dovecot, smtp, settings, store)
    finally:
        store.dispose()
        smtp.stop()

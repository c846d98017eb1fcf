"""Settings and helpers shared by the outbox, approvals and scheduler tests (real servers).

No tests here: each test module wraps :func:`open_env` in its own fixture.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.config import Settings, settings_from_mapping
from service.mail.compose import compose
from service.store.db import Store
from service.store.models import Event
from service.workflows import approvals, outbox
from service.workflows.approvals import CommandContext, CommandResult
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


_TEMPLATES: list[Path] = []


def _fresh_sqlite(target: Path) -> str:
    """A migrated SQLite database, copied from one migrated once per run (saves ~0.5 s/test)."""
    if not _TEMPLATES or not _TEMPLATES[0].exists():
        folder = Path(tempfile.mkdtemp(prefix="sg-outbox-template-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "template.db"
        Store(f"sqlite:///{template}").dispose()  # closing the last connection ends the WAL
        _TEMPLATES[:] = [template]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATES[0], target)
    return f"sqlite:///{target}"


def open_env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             database_url: str | None = None, **settings_kwargs: Any) -> Iterator[Env]:
    """Service mailbox, two owners and a client mailbox; an SMTP relay stamping our A-R."""
    for address in (SERVICE, OWNER, OTHER_OWNER, CLIENT):
        dovecot.add_user(address)
    smtp = SmtpServer(dovecot, authserv_id=AUTHSERV)
    smtp.start()
    monkeypatch.setenv(SMTP_PASSWORD_ENV, smtp.password)
    monkeypatch.setenv(IMAP_PASSWORD_ENV, dovecot.password(SERVICE))
    url = database_url or _fresh_sqlite(tmp_path / "state" / "sg.db")
    settings = make_settings(dovecot, smtp, url, **settings_kwargs)
    store = Store(url)
    try:
        yield Env(dovecot, smtp, settings, store)
    finally:
        store.dispose()
        smtp.stop()


# -- a test command for approvals: its state lives in the database and the
# environment, so it works whichever copy of this module registered it --------

PURPOSE = "testdraft"


def _approve(ctx: CommandContext) -> CommandResult:
    refusal = os.environ.pop("SG_TEST_REFUSE", None)
    if refusal:
        return CommandResult(False, refusal)
    ctx.session.add(Event(level="info", component="test-command",
                          message=f"{ctx.command} {ctx.subject_id} {ctx.owner}"))
    return CommandResult(True, f"draft {ctx.subject_id} approved")


def _current_version(session: Session, subject_id: str) -> int | None:
    value = os.environ.get(f"SG_TEST_VERSION_{subject_id}")
    return int(value) if value else None


approvals.register_command("APPROVE", _approve, purposes=(PURPOSE,))
approvals.register_command("CANCEL", _approve, purposes=(PURPOSE,))
approvals.register_version_check(PURPOSE, _current_version)


def acted(env: Env) -> list[tuple[str, ...]]:
    """(command, subject id, owner) of every command the test handler carried out."""
    with env.store.session() as session:
        rows = session.scalars(
            select(Event.message).where(Event.component == "test-command").order_by(Event.id)
        )
        return [tuple(m.split(" ")) for m in rows]


FAST = outbox.SendPolicy(backoff_base=timedelta(0), backoff_cap=timedelta(0))


def request(env: Env, *, owner: str = OWNER, subject_id: str = "7", version: int = 1,
            now: datetime | None = None) -> EmailMessage:
    """Queue and send an approval request; return it as the owner received it."""
    with env.store.session() as session:
        token = approvals.issue_token(session, env.settings, owner=owner, purpose=PURPOSE,
                                      subject_id=subject_id, version=version, now=now)
        headers = approvals.reply_headers(env.settings, token,
                                          parent_message_id="<client-1@acme.test>")
        msg = compose(from_addr=SERVICE, to=[owner], subject=f"Approve farewell {subject_id}?",
                      text="Reply APPROVE or CANCEL.\n", **headers)  # type: ignore[arg-type]
        outbox.queue(session, env.settings, msg, kind="approval_request", owner=owner, now=now)
    outbox.send_due(env.settings, env.store, policy_=FAST)
    received = [m for m in env.inbox(owner) if m["Subject"] == f"Approve farewell {subject_id}?"]
    assert received, "the request did not arrive"
    return received[-1]


def reply_to(received: EmailMessage, *, sender: str = OWNER, text: str = "APPROVE",
             extra: dict[str, str] | None = None, to: str | None = None,
             smtp: SmtpServer) -> bytes:
    """Reply as a mail client does, through the real SMTP server; return what it relayed."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = to or received["Reply-To"]
    reply["Subject"] = "Re: " + received["Subject"]
    reply["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    reply["In-Reply-To"] = received["Message-ID"]
    reply["References"] = f"{received['References']} {received['Message-ID']}"
    for name, value in (extra or {}).items():
        reply[name] = value
    body = received.get_body(("plain",))
    assert body is not None
    quoted = "\n".join("> " + line for line in body.get_content().splitlines())
    reply.set_content(f"{text}\n\nOn Wed, Northwind <{SERVICE}> wrote:\n{quoted}\n")
    asyncio.run(aiosmtplib.send(reply, hostname=smtp.host, port=smtp.port,
                                username=smtp.username, password=smtp.password,
                                use_tls=False, start_tls=False))
    relayed = [a for a in smtp.accepted if a.message_id == reply["Message-ID"]]
    assert len(relayed) == 1
    return relayed[0].raw



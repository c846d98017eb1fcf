"""A real SMTP submission server (aiosmtpd) that delivers into the test Dovecot.

Whatever the service sends can be read back from a real mailbox over IMAP.
Faults are injected per message (error codes at MAIL/RCPT/DATA, dropped
connections before or after delivery, delays) to test retry and exactly-once
logic against the same protocol machine a real relay uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.rig.dovecot import Dovecot, free_port

Stage = Literal["mail", "rcpt", "data"]
DropPoint = Literal["rcpt", "data", "after_delivery"]

DEFAULT_USERNAME = "service@northwind.test"
DEFAULT_PASSWORD = "smtp-secret"


@dataclass
class Accepted:
    """One message the server accepted (answered 250 to, or meant to)."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message_id: str | None
    delivered_to: list[str] = field(default_factory=list)  # Dovecot users
    captured_for: list[str] = field(default_factory=list)  # unknown (external) addresses


@dataclass
class _Fault:
    stage: str
    count: int
    code: int = 0
    text: str = ""
    delay: float = 0.0
    drop: bool = False


def _header_message_id(raw: bytes) -> str | None:
    headers = BytesHeaderParser().parsebytes(raw)
    value = headers.get("Message-ID")
    return str(value).strip() if value else None


def _from_domain(raw: bytes, mail_from: str) -> str:
    headers = BytesHeaderParser().parsebytes(raw)
    addresses = getaddresses([str(v) for v in headers.get_all("From", [])])
    for _name, addr in addresses:
        if "@" in addr:
            return addr.rsplit("@", 1)[1].lower()
    return mail_from.rsplit("@", 1)[1].lower() if "@" in mail_from else "localhost"


class _Handler:
    def __init__(self, rig: SmtpServer) -> None:
        self.rig = rig

    async def _apply(self, server: SMTP, stage: str) -> str | None:
        fault = self.rig._take_fault(stage)
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            assert server.transport is not None
            server.transport.abort()
            return "421 connection dropped"  # never reaches the client
        if fault.code:
            return f"{fault.code} {fault.text or 'injected failure'}"
        return None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        failure = await self._apply(server, "mail")
        if failure:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        failure = await self._apply(server, "rcpt")
        if failure:
            return failure
        if not self.rig.accept_unknown and not self.rig.dovecot.has_user(address):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = await self._apply(server, "data")
        if failure:
            return failure
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        try:
            accepted = await asyncio.to_thread(
                self.rig._deliver, str(envelope.mail_from), list(envelope.rcpt_tos), raw
            )
        except (OSError, smtplib.SMTPException) as exc:
            return f"451 4.3.0 relay to Dovecot failed: {exc}"
        failure = await self._apply(server, "after_delivery")
        if failure:
            return failure
        with self.rig._lock:
            self.rig.accepted.append(accepted)
        return "250 2.0.0 OK queued"


class _Controller(Controller):
    def factory(self) -> SMTP:
        # plain-text AUTH is deliberate on a loopback test server
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


class SmtpServer:
    """aiosmtpd on a free loopback port relaying into a Dovecot (via LMTP).

    AUTH PLAIN/LOGIN over plain text with ``username``/``password``.
    Recipients that are Dovecot users get the message in their INBOX; others
    are rejected with 550, or kept in ``accepted`` only when ``accept_unknown``.
    With ``authserv_id`` set, each message gets
    ``Authentication-Results: <authserv_id>; dkim=<dkim> header.d=<From domain>``
    as a receiving MTA would add.
    """

    def __init__(
        self,
        dovecot: Dovecot,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        auth_required: bool = True,
        accept_unknown: bool = True,
        authserv_id: str | None = None,
        dkim: str = "pass",
    ) -> None:
        self.dovecot = dovecot
        self.username = username
        self.password = password
        self.auth_required = auth_required
        self.accept_unknown = accept_unknown
        self.authserv_id = authserv_id
        self.dkim = dkim
        self.host = "127.0.0.1"
        self.port = free_port()
        self.accepted: list[Accepted] = []
        self.auth_failures = 0
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._controller = _Controller(
            _Handler(self),
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            auth_required=self.auth_required,
            auth_require_tls=False,
            ready_timeout=10,
        )
        self._controller.start()

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode(errors="replace")
            password = auth_data.password.decode(errors="replace")
            if login == self.username and password == self.password:
                return AuthResult(success=True)
        with self._lock:
            self.auth_failures += 1
        return AuthResult(success=False, handled=False)

    # -- fault injection ---------------------------------------------------

    def fail_next(self, stage: Stage, code: int, count: int = 1, text: str = "") -> None:
        """Answer `code` at MAIL, RCPT or DATA for the next `count` messages."""
        self._add(_Fault(stage=stage, count=count, code=code, text=text))

    def drop_next(self, point: DropPoint, count: int = 1) -> None:
        """Close the connection without a reply for the next `count` messages.

        ``rcpt``: before DATA (nothing delivered); ``data``: after the client
        sent the message but before delivery (nothing delivered, client cannot
        tell); ``after_delivery``: the message was delivered, the 250 is lost.
        """
        self._add(_Fault(stage=point, count=count, drop=True))

    def delay_next(
        self, stage: Stage | Literal["after_delivery"], seconds: float, count: int = 1
    ) -> None:
        """Wait before answering at a stage for the next `count` messages."""
        self._add(_Fault(stage=stage, count=count, delay=seconds))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, stage: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.stage == stage and fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- delivery ------------------------------------------------------------

    def _deliver(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> Accepted:
        message_id = _header_message_id(raw)
        if self.authserv_id:
            domain = _from_domain(raw, mail_from)
            header = (
                f"Authentication-Results: {self.authserv_id}; "
                f"dkim={self.dkim} header.d={domain}\r\n"
            ).encode()
            raw = header + raw
        accepted = Accepted(mail_from, rcpt_tos, raw, message_id)
        local = [r for r in rcpt_tos if self.dovecot.has_user(r)]
        if local:
            with self.dovecot.lmtp() as lmtp:
                # one transaction per recipient: smtplib reads a single reply
                for rcpt in local:
                    lmtp.sendmail(mail_from or "<>", [rcpt], _crlf(raw))
                    accepted.delivered_to.append(rcpt)
        accepted.captured_for = [r for r in rcpt_tos if r not in local]
        return accepted

    # -- inspection ----------------------------------------------------------

    def delivered_count(self, message_id: str) -> int:
        """How many times a message with this Message-ID was accepted."""
        return self.counts()[message_id]

    def counts(self) -> Counter[str]:
        """Message-ID -> number of accepted transactions carrying it."""
        with self._lock:
            return Counter(a.message_id for a in self.accepted if a.message_id)

    def messages_for(self, address: str) -> list[Accepted]:
        with self._lock:
            return [a for a in self.accepted if address in a.rcpt_tos]


_BARE_LF = re.compile(rb"(?<!\r)\n")


def _crlf(raw: bytes) -> bytes:
    return _BARE_LF.sub(b"\r\n", raw)


@contextlib.contextmanager
def running(dovecot: Dovecot, **kwargs: Any) -> Any:
    """Context manager: an SmtpServer started for the duration of the block."""
    server = SmtpServer(dovecot, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()

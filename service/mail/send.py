"""Handing frozen messages to the SMTP server, and the copy in the Sent folder.

Delivery reports *where* it failed, because that decides what is safe: a
failure before DATA (or a 4xx reply) means the server did not take the
message, so a retry is safe; a 5xx is final; a lost connection or timeout
during DATA means nobody knows (``Uncertain``), and the caller must not resend
blindly. The password is read at connect time and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import aiosmtplib
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from ..config import MailboxSettings, SmtpSettings
from ..errors import DeliveryError, MailboxError
from .auth import smtp_login
from .quirks import search_with_fallback

log = logging.getLogger(__name__)

__all__ = ["Outcome", "SentFolder", "SmtpTransport"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one message.

    ``status``: ``sent``; ``retry`` (not taken, safe to try again: before
    DATA, or 4xx); ``failed`` (5xx or a refused recipient: final);
    ``uncertain`` (the connection broke or timed out during DATA).
    """

    status: Literal["sent", "retry", "failed", "uncertain"]
    detail: str = ""
    smtp_code: int | None = None


def _reply_text(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


class SmtpTransport:
    """One SMTP session (fresh per batch): connect, STARTTLS or TLS, login, send, quit."""

    def __init__(self, settings: SmtpSettings, *, tls_context: ssl.SSLContext | None = None):
        self.settings = settings
        self.tls_context = tls_context
        self._smtp: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> SmtpTransport:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Raises DeliveryError(transient=True) for anything that stops the session."""
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            use_tls=s.security == "ssl",
            start_tls=s.security == "starttls",
            tls_context=self.tls_context,
        )
        try:
            await smtp.connect()
            if s.username:
                await smtp_login(smtp, s)  # password, or OAuth2 XOAUTH2 (mail.auth)
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise DeliveryError(
                f"SMTP login as {s.username} refused: {_reply_text(exc)}",
                transient=True, smtp_code=exc.code,
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            raise DeliveryError(
                f"SMTP server {s.host}:{s.port} refused the session: {_reply_text(exc)}",
                transient=True, smtp_code=exc.code,
            ) from None
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise DeliveryError(
                f"cannot connect to SMTP server {s.host}:{s.port}: {exc}", transient=True
            ) from None
        self._smtp = smtp

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        with contextlib.suppress(Exception):
            if smtp.is_connected:
                await asyncio.wait_for(smtp.quit(), timeout=self.settings.timeout)
        smtp.close()

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    async def send(
        self,
        raw: bytes,
        mail_from: str,
        recipients: Sequence[str],
        *,
        before_data: Callable[[], None] | None = None,
    ) -> Outcome:
        """One transaction; never raises for protocol outcomes, returns an Outcome.

        `before_data` runs once every recipient is accepted, just before DATA:
        the caller records there that from now on a crash leaves the outcome
        unknown.
        """
        smtp = self._smtp
        if smtp is None or not smtp.is_connected:
            return Outcome("retry", "not connected to the SMTP server")
        phase = "MAIL FROM"
        try:
            await smtp.mail(mail_from)
            phase = "RCPT TO"
            for rcpt in recipients:
                try:
                    await smtp.rcpt(rcpt)
                except aiosmtplib.SMTPResponseException as exc:
                    with contextlib.suppress(Exception):
                        await smtp.rset()
                    status = "retry" if 400 <= exc.code < 500 else "failed"
                    return Outcome(
                        status, f"recipient {rcpt} refused: {_reply_text(exc)}", exc.code
                    )
            if before_data is not None:
                before_data()
            phase = "DATA"
            response = await smtp.data(raw)
        except aiosmtplib.SMTPResponseException as exc:
            if phase != "DATA":
                with contextlib.suppress(Exception):
                    await smtp.rset()
            status = "retry" if 400 <= exc.code < 500 else "failed"
            return Outcome(status, f"{phase}: {_reply_text(exc)}", exc.code)
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            if phase == "DATA":
                return Outcome(
                    "uncertain", f"connection lost or timed out during DATA: {exc}"
                )
            return Outcome("retry", f"connection lost before DATA ({phase}): {exc}")
        return Outcome("sent", f"{response.code} {response.message}".strip(), response.code)


# -- the Sent folder (IMAP) ---------------------------------------------------


class SentFolder:
    """The shared mailbox's Sent folder: find a Message-ID, APPEND a copy.

    Used after a send (save a copy unless the provider already filed one) and
    to settle uncertain sends: if our Message-ID is there, the message went.
    """

    def __init__(self, settings: MailboxSettings):
        self.settings = settings
        self._client: IMAPClient | None = None
        self.folder: str | None = None

    def __enter__(self) -> SentFolder:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Raises MailboxError (from ``imap.connect``) when the mailbox cannot be reached."""
        from .imap import connect, sent_folder

        client = connect(self.settings)
        self._client = client
        try:
            # config, else the \Sent special-use flag, else a well-known name in
            # one of many languages (mail.folders)
            self.folder = sent_folder(client, self.settings)
        except (IMAPClientError, OSError) as exc:
            self.close()
            raise MailboxError(f"cannot find the Sent folder: {exc}") from None
        if self.folder is None:
            self.close()
            raise MailboxError("no Sent folder found; set [mailbox] sent_folder", transient=False)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.logout()

    def contains(self, message_id: str) -> bool:
        """Whether a message with this Message-ID is in the Sent folder (UID SEARCH HEADER)."""
        assert self._client is not None and self.folder is not None
        try:
            self._client.select_folder(self.folder, readonly=True)
            # Exchange refuses SEARCH CHARSET UTF-8 ([BADCHARSET]): retried in US-ASCII
            uids = search_with_fallback(self._client, ["HEADER", "Message-ID", message_id])
        except (IMAPClientError, OSError) as exc:
            raise MailboxError(f"cannot search {self.folder}: {exc}") from None
        return bool(uids)

    def append(self, raw: bytes) -> None:
        assert self._client is not None and self.folder is not None
        try:
            self._client.append(self.folder, raw, flags=(b"\\Seen",))
        except (IMAPClientError, OSError) as exc:
            raise MailboxError(f"cannot APPEND to {self.folder}: {exc}") from None

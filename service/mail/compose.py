"""Build outgoing emails and freeze them to the exact bytes the outbox will send.

A message is frozen once, when queued: its Message-ID (made with our own
domain, so the Sent-folder search and replies can find it) and its bytes
never change afterwards, so a retry sends the same message, not a new one.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid

__all__ = [
    "Attachment",
    "compose",
    "domain_of",
    "freeze",
    "plus_address",
    "thread_headers",
    "token_reference",
]

# References grow with every reply; clients (and RFC 5322 line limits) cope
# badly with hundreds of ids. Keep the root and the most recent ones.
MAX_REFERENCES = 20

_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    content_type: str | None = None  # guessed from the filename when None


def domain_of(address: str) -> str:
    """The domain of an address ('Team <team@x.com>' -> 'x.com')."""
    addr = getaddresses([address])[0][1] or address
    if "@" not in addr:
        raise ValueError(f"not an email address: {address!r}")
    return addr.rsplit("@", 1)[1].strip().lower()


def plus_address(address: str, tag: str) -> str:
    """'team@x.com' + tag -> 'team+tag@x.com' (sub-addressing, RFC 5233)."""
    addr = getaddresses([address])[0][1] or address
    local, _, domain = addr.rpartition("@")
    if not local or not domain:
        raise ValueError(f"not an email address: {address!r}")
    local = local.split("+", 1)[0]
    return f"{local}+{tag}@{domain}"


def token_reference(token: str, domain: str) -> str:
    """A msg-id carrying a reply token, for servers that drop the plus-address."""
    return f"<{token}@token.{domain.lower()}>"


def _ids(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        for found in _ID.findall(value or ""):
            if found not in out:
                out.append(found)
    return out


def thread_headers(
    parent_message_id: str | None, parent_references: Sequence[str] = ()
) -> tuple[str | None, list[str]]:
    """In-Reply-To and References continuing a thread (RFC 5322 §3.6.4)."""
    parent = _ids([parent_message_id or ""])
    refs = _ids([*parent_references, *parent])
    if len(refs) > MAX_REFERENCES:
        refs = [refs[0], *refs[-(MAX_REFERENCES - 1) :]]
    return (parent[0] if parent else None), refs


def compose(
    *,
    from_addr: str,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    cc: Sequence[str] = (),
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    message_id: str | None = None,
    domain: str | None = None,
    date: datetime | None = None,
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """A complete message: text (and HTML as multipart/alternative), threading, attachments.

    `domain` names the Message-ID's right-hand side (default: the From domain).
    `references` are appended after `in_reply_to`'s thread, e.g. a token reference.
    """
    if not to:
        raise ValueError("a message needs at least one recipient")
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = from_addr
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime((date or datetime.now(UTC)).astimezone(UTC))
    msg["Message-ID"] = message_id or make_msgid(domain=domain or domain_of(from_addr))
    refs = _ids(references)
    if in_reply_to:
        msg["In-Reply-To"] = _ids([in_reply_to])[0] if _ids([in_reply_to]) else in_reply_to
    if refs:
        msg["References"] = " ".join(refs)
    msg["MIME-Version"] = "1.0"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(_normalise_text(text), subtype="plain", charset="utf-8", cte=_cte(text))
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte=_cte(html))
    for item in attachments:
        ctype = item.content_type or mimetypes.guess_type(item.filename)[0]
        maintype, _, subtype = (ctype or "application/octet-stream").partition("/")
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)
    return msg


def _normalise_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


def _cte(text: str) -> str:
    """Plain ASCII with short lines stays readable (7bit); anything else is QP."""
    if text.isascii() and all(len(line) <= 900 for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def freeze(msg: EmailMessage) -> bytes:
    """The exact bytes to send and store: CRLF line endings, folded headers, no Bcc."""
    if msg.get("Bcc") is not None:
        msg = _clone(msg)
        del msg["Bcc"]
    return msg.as_bytes(policy=policy.SMTP)


def _clone(msg: EmailMessage) -> EmailMessage:
    from email import message_from_bytes

    clone = message_from_bytes(msg.as_bytes(policy=policy.SMTP), policy=policy.SMTP)
    assert isinstance(clone, EmailMessage)
    return clone

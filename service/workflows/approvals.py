"""The email command channel: tokens out, owner replies in, one transaction per reply.

A decision request carries a fresh token (160 random bits, stored only as a
keyed hash) bound to what it decides — purpose, subject id and version. A
reply is checked by ``commands.decide``; when accepted, the token is consumed,
the handler acts and the confirmation is queued in the same transaction, so a
crash never leaves a used token with nothing done, or an action twice.

Other workflows add commands with :func:`register_command` (alerts: SNOOZE,
OK, OFFBOARD; offboarding: APPROVE, REJECT, EDIT, CANCEL). Handlers run inside
the transaction and must return a rejection *before* changing anything when
they refuse: a refusal rolls back the whole unit of work and leaves the token
usable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import importlib.util
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import Settings
from ..mail.compose import plus_address, thread_headers, token_reference
from ..store.db import Store
from ..store.models import CommandLog, CommandToken
from .commands import Decision, ReplyFacts, TokenRecord, decide, reply_facts

log = logging.getLogger(__name__)

__all__ = [
    "CommandContext",
    "CommandResult",
    "ReplyOutcome",
    "command_address",
    "commands_for",
    "is_command_reply",
    "issue_token",
    "process_replies",
    "process_reply",
    "register_command",
    "register_version_check",
    "reply_headers",
]

TOKEN_BYTES = 20  # 160 bits


@dataclass(frozen=True)
class CommandContext:
    """What a handler gets: the command, what its token decides, and the open session."""

    settings: Settings
    session: Session
    command: str
    args: str
    body: str
    owner: str
    purpose: str
    subject_id: str
    version: int
    reply_message_id: str
    now: datetime


@dataclass(frozen=True)
class CommandResult:
    ok: bool
    message: str  # one or two sentences for the owner's confirmation or rejection email


Handler = Callable[[CommandContext], CommandResult]
VersionCheck = Callable[[Session, str], int | None]

_HANDLERS: dict[tuple[str, str | None], Handler] = {}
_VERSION_CHECKS: dict[str, VersionCheck] = {}


def register_command(name: str, handler: Handler, *, purposes: Iterable[str] | None = None) -> None:
    """Make `name` (e.g. "SNOOZE") a command for tokens of these purposes (None: all)."""
    word = name.strip().upper()
    for purpose in list(purposes) if purposes is not None else [None]:
        _HANDLERS[(word, purpose)] = handler


def register_version_check(purpose: str, check: VersionCheck) -> None:
    """For versioned subjects (drafts): the current version, so stale tokens are refused."""
    _VERSION_CHECKS[purpose] = check


def commands_for(purpose: str) -> set[str]:
    _load_builtin_commands()
    return {name for name, p in _HANDLERS if p is None or p == purpose}


def _handler(name: str, purpose: str) -> Handler | None:
    return _HANDLERS.get((name, purpose)) or _HANDLERS.get((name, None))


def _load_builtin_commands() -> None:
    """Import the workflows that register commands, so replies always find their handler."""
    from . import alerts, outbox  # noqa: F401  (SNOOZE, OK; RESEND, DROP)

    if importlib.util.find_spec(f"{__package__}.offboarding") is not None:
        importlib.import_module(f"{__package__}.offboarding")  # OFFBOARD, APPROVE, EDIT, ...


# -- tokens -------------------------------------------------------------------


def new_token() -> str:
    """160 random bits as 32 lowercase base32 characters (case-proof in addresses)."""
    return base64.b32encode(secrets.token_bytes(TOKEN_BYTES)).decode("ascii").rstrip("=").lower()


def hash_token(settings: Settings, token: str) -> str:
    """Keyed with [approvals] secret when configured, so a copied database grants nothing."""
    data = token.strip().lower().encode("ascii", "replace")
    approvals = settings.approvals
    if approvals.secret_env or approvals.secret_file:
        key = approvals.secret().encode()
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def issue_token(
    session: Session,
    settings: Settings,
    *,
    owner: str,
    purpose: str,
    subject_id: str,
    version: int = 1,
    now: datetime | None = None,
    expires_in: timedelta | None = None,
) -> str:
    """A new single-use token for `owner`; only its hash is stored. Returns the token."""
    now = now or datetime.now(UTC)
    token = new_token()
    session.add(
        CommandToken(
            token_hash=hash_token(settings, token),
            owner=owner.strip().lower(),
            purpose=purpose,
            subject_id=str(subject_id),
            version=version,
            created_at=now,
            expires_at=now + (expires_in or timedelta(hours=settings.approvals.expiry_hours)),
        )
    )
    session.flush()
    return token


def command_address(settings: Settings) -> str:
    """The address replies go to: the mailbox the service reads, else its From address."""
    if settings.mailbox and "@" in settings.mailbox.username:
        return settings.mailbox.username.lower()
    if settings.smtp:
        return settings.smtp.from_address.lower()
    raise ValueError("neither [mailbox] username nor [smtp] from_address is an address")


def reply_headers(
    settings: Settings,
    token: str,
    *,
    parent_message_id: str | None = None,
    parent_references: Iterable[str] = (),
) -> dict[str, object]:
    """Keyword arguments for ``compose``: Reply-To plus-address and the token reference.

    The token reference goes last in References so the thread's root stays first.
    """
    address = command_address(settings)
    domain = address.rsplit("@", 1)[1]
    in_reply_to, refs = thread_headers(parent_message_id, list(parent_references))
    return {
        "reply_to": plus_address(address, token),
        "in_reply_to": in_reply_to,
        "references": [*refs, token_reference(token, domain)],
    }


def _own_addresses(settings: Settings) -> set[str]:
    own = {command_address(settings)}
    if settings.smtp:
        own.add(settings.smtp.from_address.lower())
    return own


def is_command_reply(settings: Settings, raw: bytes) -> bool:
    """Whether a message answers one of our requests (plus-address or token reference).

    Our own mail (a request in the Sent folder carries its token too) never is.
    """
    facts = reply_facts(raw, command_address(settings))
    return facts.token is not None and facts.sender not in _own_addresses(settings)


# -- replies ------------------------------------------------------------------


@dataclass(frozen=True)
class ReplyOutcome:
    message_id: str
    accepted: bool
    command: str | None
    reason: str
    notified: str | None  # the owner who was emailed (confirmation or rejection)
    duplicate: bool = False


class _Refused(Exception):
    def __init__(self, reason: str, owner: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.owner = owner


def _known_owners(settings: Settings) -> set[str]:
    owners = {o.email.lower() for o in settings.owners}
    owners.update(c.owner.lower() for c in settings.clients)
    return owners


def _record(row: CommandToken) -> TokenRecord:
    return TokenRecord(
        owner=row.owner,
        purpose=row.purpose,
        subject_id=row.subject_id,
        version=row.version,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


def process_reply(
    settings: Settings, store: Store, raw: bytes, *, now: datetime | None = None
) -> ReplyOutcome:
    """Verify one owner reply and act on it, or refuse it and say why.

    Idempotent per Message-ID: a reply seen again (resync, second process) is
    reported as a duplicate and nothing happens twice.
    """
    _load_builtin_commands()
    now = now or datetime.now(UTC)
    facts = reply_facts(raw, command_address(settings))
    if facts.sender in _own_addresses(settings):
        return ReplyOutcome(facts.message_id, False, facts.command, "our own message", None)
    try:
        with store.session() as session:
            if _already_logged(session, facts.message_id):
                return ReplyOutcome(facts.message_id, False, facts.command, "already processed",
                                    None, duplicate=True)
            return _accept(settings, session, facts, now)
    except _Refused as refused:
        return _refuse(settings, store, facts, refused.reason, refused.owner, now)
    except IntegrityError:  # another process logged this reply first
        return ReplyOutcome(facts.message_id, False, facts.command, "already processed",
                            None, duplicate=True)
    except Exception as exc:
        log.exception("event=command_failed message_id=%s", facts.message_id)
        row_owner = _token_owner(settings, store, facts)
        return _refuse(settings, store, facts, f"internal error ({type(exc).__name__})",
                       row_owner, now)


def process_replies(
    settings: Settings, store: Store, raws: Iterable[bytes], *, now: datetime | None = None
) -> list[ReplyOutcome]:
    """The hook for the mailbox sync: every message addressed to our command address."""
    return [process_reply(settings, store, raw, now=now) for raw in raws]


def _already_logged(session: Session, message_id: str) -> bool:
    found = session.scalar(select(CommandLog.id).where(CommandLog.message_id == message_id))
    return found is not None


def _token_owner(settings: Settings, store: Store, facts: ReplyFacts) -> str | None:
    if facts.token is None:
        return None
    with store.session() as session:
        return session.scalar(
            select(CommandToken.owner).where(
                CommandToken.token_hash == hash_token(settings, facts.token)
            )
        )


def _accept(settings: Settings, session: Session, facts: ReplyFacts, now: datetime) -> ReplyOutcome:
    row = None
    if facts.token is not None:
        row = session.scalars(
            select(CommandToken)
            .where(CommandToken.token_hash == hash_token(settings, facts.token))
            .with_for_update()
        ).first()
    record = _record(row) if row is not None else None
    current = None
    if row is not None and row.purpose in _VERSION_CHECKS:
        current = _VERSION_CHECKS[row.purpose](session, row.subject_id)
    decision: Decision = decide(
        facts,
        record,
        now=now,
        require_authenticated=settings.approvals.require_authenticated,
        authserv_id=settings.approvals.authserv_id,
        known_commands=commands_for(row.purpose) if row is not None else set(),
        current_version=current,
    )
    if not decision.accepted:
        raise _Refused(decision.reason, row.owner if row is not None and decision.tell_owner
                       else None)
    assert row is not None and facts.command is not None
    consumed = session.execute(
        update(CommandToken)
        .where(CommandToken.id == row.id, CommandToken.used_at.is_(None))
        .values(used_at=now)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        raise _Refused("this request was already answered (token used)", row.owner)
    handler = _handler(facts.command, row.purpose)
    assert handler is not None  # decide() checked the command is known
    result = handler(
        CommandContext(
            settings=settings,
            session=session,
            command=facts.command,
            args=facts.args,
            body=facts.body,
            owner=row.owner,
            purpose=row.purpose,
            subject_id=row.subject_id,
            version=row.version,
            reply_message_id=facts.message_id,
            now=now,
        )
    )
    if not result.ok:
        raise _Refused(result.message, row.owner)
    session.add(
        CommandLog(message_id=facts.message_id, from_addr=facts.sender, command=facts.command,
                   accepted=True, reason=result.message, at=now)
    )
    _notify(settings, session, facts, row.owner, accepted=True, text=result.message, now=now)
    log.info("event=command_accepted command=%s purpose=%s subject=%s owner=%s",
             facts.command, row.purpose, row.subject_id, row.owner)
    return ReplyOutcome(facts.message_id, True, facts.command, result.message, row.owner)


def _refuse(
    settings: Settings,
    store: Store,
    facts: ReplyFacts,
    reason: str,
    owner: str | None,
    now: datetime,
) -> ReplyOutcome:
    """Log the refusal; tell the owner unless it was an auto-reply or nobody we know."""
    notify = None
    if not facts.auto_generated:
        if owner:
            notify = owner
        elif facts.sender and facts.sender in _known_owners(settings):
            notify = facts.sender
    if notify and settings.smtp and facts.sender == settings.smtp.from_address.lower():
        notify = None  # our own mail coming back: never answer it
    try:
        with store.session() as session:
            if _already_logged(session, facts.message_id):
                return ReplyOutcome(facts.message_id, False, facts.command, "already processed",
                                    None, duplicate=True)
            session.add(
                CommandLog(message_id=facts.message_id, from_addr=facts.sender,
                           command=facts.command, accepted=False, reason=reason[:2000], at=now)
            )
            if notify and settings.smtp:
                _notify(settings, session, facts, notify, accepted=False, text=reason, now=now)
    except IntegrityError:
        return ReplyOutcome(facts.message_id, False, facts.command, "already processed", None,
                            duplicate=True)
    log.warning("event=command_rejected from=%s reason=%s", facts.sender, reason)
    return ReplyOutcome(facts.message_id, False, facts.command, reason, notify)


def _notify(
    settings: Settings,
    session: Session,
    facts: ReplyFacts,
    owner: str,
    *,
    accepted: bool,
    text: str,
    now: datetime,
) -> None:
    from .outbox import queue_notice

    said = f"{facts.command or '(no command)'} {facts.args}".strip()
    subject = facts.subject or "your reply"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    if accepted:
        body = f"Done: {text}\n\nYour reply: {said}\n"
        kind = "confirmation"
    else:
        body = (
            f"Your reply was not acted on: {text}.\n\n"
            f"Your reply: {said}\n\n"
            "Nothing has changed. To decide, reply to the original request email "
            "from your own address, with the command on the first line.\n"
        )
        kind = "command_rejected"
        subject = f"Not done: {subject}"
    # Without the token reference: a reply to this notice is not an answer to the request.
    domain = command_address(settings).rsplit("@", 1)[1]
    references = [r for r in facts.references if not r.lower().endswith(f"@token.{domain}>")]
    queue_notice(
        session,
        settings,
        owner=owner,
        kind=kind,
        subject=subject,
        text=body,
        in_reply_to=facts.message_id,
        references=references,
        now=now,
    )

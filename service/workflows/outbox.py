"""The one outbox: every email the service sends is queued, frozen and sent here.

States: ``scheduled → sending → sent`` or ``failed`` (with the server's words)
or ``uncertain``; ``cancelled`` by ``outbox cancel`` or the owner's DROP.

Exactly once, as far as SMTP allows (RFC 1047):

* The bytes and Message-ID are frozen when queued, so a retry sends the same
  message, and recipients' clients can de-duplicate it.
* ``sending`` is committed before connecting, and a DATA marker is committed
  after the recipients are accepted and before DATA. After a crash, a row in
  ``sending`` without the marker provably never reached DATA and is simply
  retried; with it, the row becomes ``uncertain``.
* Only failures before DATA and 4xx replies are retried (exponential backoff).
  5xx or a refused recipient is ``failed`` and the owner is told.
* ``uncertain`` is settled by searching the Sent folder for the Message-ID
  (found: ``sent``); otherwise the owner is asked to reply RESEND or DROP.
  Nothing is ever resent without that answer.
* The Sent copy is APPENDed before ``sent`` is committed (so a crash in between
  is settled by the Sent search); an APPEND failure never causes a resend.

When mail may go: mail with any recipient outside the agency (a client) waits
for the send window in that client's time zone; mail only for staff (alerts,
approval requests, confirmations, delivery notices) goes at once, whatever
the hour — owners asked to be told, and a decision request that waits for
office hours delays the decision. ``send_mode = "owner-only"`` delivers
client mail to the client's owner instead, marked in the subject and headers,
on the client's schedule, so the trial shows what would have happened when.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..errors import DeliveryError, MailboxError, UsageError
from ..mail.compose import compose, domain_of, freeze, thread_headers
from ..mail.quirks import smtp_files_sent
from ..mail.send import Outcome, SentFolder, SmtpTransport
from ..sendwindow import SendWindow, window_from_schedule
from ..store.db import Store
from ..store.models import CommandToken, Event, OutboxMessage, iso
from .approvals import CommandContext, CommandResult, issue_token, register_command, reply_headers

log = logging.getLogger(__name__)

__all__ = [
    "SendPolicy",
    "SendReport",
    "cancel",
    "cancel_row",
    "listing",
    "next_due",
    "queue",
    "queue_notice",
    "recover_interrupted",
    "resolve_uncertain",
    "send_due",
]

STATES = ("scheduled", "sending", "sent", "failed", "uncertain", "cancelled")
# Notices about the outbox itself: never answered with another notice (no loops).
_NOTICE_KINDS = frozenset({"delivery_failure", "outbox_uncertain", "command_rejected"})
# Written into `error` (committed) right before DATA: from here on a crash
# leaves the outcome unknown.
DATA_MARKER = "in DATA since "
MODE_HEADER = "X-Saygoodbye-Mode"
_NOBODY = "uncertain, nobody to ask"

Hook = Callable[[str, int], None]


@dataclass(frozen=True)
class SendPolicy:
    """Retry and batching knobs (tests shorten them)."""

    batch_size: int = 20
    backoff_base: timedelta = timedelta(minutes=1)
    backoff_cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8
    # a `sending` row older than this belongs to a dead process
    stale_after: timedelta | None = None


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    uncertain: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)  # outside the send window
    resolved: list[int] = field(default_factory=list)  # uncertain -> sent via Sent folder
    asked: list[int] = field(default_factory=list)  # owner asked RESEND/DROP
    error: str | None = None


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _event(session: Session, level: str, message: str) -> None:
    session.add(Event(level=level, component="outbox", message=message[:4000]))


# -- queueing -------------------------------------------------------------------


def _addresses(msg: EmailMessage, *names: str) -> list[str]:
    values = [str(v) for name in names for v in msg.get_all(name, [])]
    return [addr.lower() for _, addr in getaddresses(values) if addr]


def _staff(settings: Settings, address: str) -> bool:
    domain = address.rsplit("@", 1)[-1].lower()
    if domain in settings.own_domains:
        return True
    owners = {o.email for o in settings.owners} | {c.owner.lower() for c in settings.clients}
    return address.lower() in owners


def _window(settings: Settings) -> SendWindow:
    return window_from_schedule(settings.schedule)


def queue(
    session: Session,
    settings: Settings,
    msg: EmailMessage,
    *,
    kind: str,
    client: str | None = None,
    owner: str | None = None,
    not_before: datetime | None = None,
    draft_id: int | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Freeze `msg` into a new outbox row (in the caller's transaction).

    The earliest send time is `not_before` (default now), moved to the next
    opening of the client's send window when the message goes to anyone
    outside the agency. In owner-only mode such mail is redirected to `owner`
    (default: the client's owner); with no owner to redirect to, it is refused.
    """
    now = _now(now)
    client_settings = settings.client(client) if client else None
    if client_settings is not None:
        client = client_settings.name
        owner = owner or client_settings.owner
    owner = owner.lower() if owner else None
    if msg.get("Message-ID") is None:
        raise ValueError("compose the message with a Message-ID before queueing it")
    recipients = _addresses(msg, "To", "Cc", "Bcc")
    if not recipients:
        raise ValueError("the message has no recipients")
    external = [r for r in recipients if not _staff(settings, r)]
    due = max(not_before or now, now)
    if external:
        due = _window(settings).next_opening(due, settings.client_timezone(client_settings))
        if settings.service.send_mode == "owner-only":
            if not owner:
                raise ValueError("owner-only mode: no owner to deliver client mail to")
            msg = _redirect(msg, owner, recipients)
            recipients = [owner]
    sender = _addresses(msg, "From")
    if not sender:
        raise ValueError("the message has no From address")
    raw = freeze(msg)
    row = OutboxMessage(
        kind=kind,
        client=client,
        owner=owner,
        from_addr=(settings.smtp.from_address if settings.smtp else sender[0]),
        to_addrs=list(dict.fromkeys(recipients)),
        subject=str(msg.get("Subject", "")),
        message_id=str(msg["Message-ID"]).strip(),
        raw=raw,
        state="scheduled",
        not_before=due,
        attempts=0,
        created_at=now,
        draft_id=draft_id,
        saved_to_sent=False,
    )
    session.add(row)
    session.flush()
    log.info("event=outbox_queued id=%d kind=%s not_before=%s", row.id, kind, due.isoformat())
    return row


def _redirect(msg: EmailMessage, owner: str, recipients: Sequence[str]) -> EmailMessage:
    """A copy for the owner: To rewritten (a reply-all cannot reach the client), marked."""
    copy = message_from_bytes(msg.as_bytes(policy=policy.SMTP), policy=policy.SMTP)
    assert isinstance(copy, EmailMessage)
    intended = ", ".join(recipients)
    for name in ("To", "Cc", "Bcc"):
        del copy[name]
    copy["To"] = owner
    subject = str(copy.get("Subject", ""))
    del copy["Subject"]
    copy["Subject"] = f"[Trial: would go to {intended}] {subject}"
    copy[MODE_HEADER] = f"owner-only; intended-for={intended}"
    return copy


def queue_notice(
    session: Session,
    settings: Settings,
    *,
    owner: str,
    kind: str,
    subject: str,
    text: str,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """A short plain-text email to an owner (confirmations, notices), sent at once."""
    if settings.smtp is None:
        raise ValueError("no [smtp] table: cannot email the owner")
    parent, refs = thread_headers(in_reply_to, list(references))
    kwargs: dict[str, Any] = {"in_reply_to": parent, "references": refs}
    kwargs.update(extra or {})
    msg = compose(
        from_addr=settings.smtp.from_address,
        to=[owner],
        subject=subject,
        text=text,
        domain=domain_of(settings.smtp.from_address),
        headers={"Auto-Submitted": "auto-generated"},
        **kwargs,
    )
    return queue(session, settings, msg, kind=kind, owner=owner, now=now)


# -- sending --------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    id: int
    raw: bytes
    mail_from: str
    recipients: tuple[str, ...]
    message_id: str
    attempts: int


def recover_interrupted(
    settings: Settings, store: Store, *, older_than: datetime | None = None
) -> list[int]:
    """Rows a dead process left in `sending`: before DATA back to `scheduled`, else `uncertain`.

    Call at startup (`older_than` None: every row), or with a cutoff for rows
    whose sender must have died long ago.
    """
    changed: list[int] = []
    with store.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.state == "sending")
        if older_than is not None:
            query = query.where(OutboxMessage.sending_at < older_than)
        for row in session.scalars(query.with_for_update()):
            if row.error and row.error.startswith(DATA_MARKER):
                row.state = "uncertain"
                row.error = "interrupted during DATA: delivery unknown"
            else:
                row.state = "scheduled"
                row.error = "interrupted before DATA: nothing was sent, will retry"
                row.next_attempt_at = None
            changed.append(row.id)
            _event(session, "warning", f"message {row.id} was left in sending: now {row.state}")
    return changed


def _backoff(policy_: SendPolicy, attempts: int) -> timedelta:
    delay = policy_.backoff_base * (2 ** max(0, attempts - 1))
    return min(delay, policy_.backoff_cap)


def _claim(
    settings: Settings, store: Store, policy_: SendPolicy, now: datetime, report: SendReport
) -> tuple[list[_Job], int]:
    """Pick due rows and commit them as `sending` (the commit comes before any connect).

    Returns the jobs and how many rows were looked at (deferred ones included).
    """
    jobs: list[_Job] = []
    seen = 0
    with store.session() as session:
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.state == "scheduled",
                OutboxMessage.not_before <= now,
                or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
            )
            .order_by(OutboxMessage.not_before, OutboxMessage.id)
            .limit(policy_.batch_size)
            .with_for_update(skip_locked=True)
        )
        for row in session.scalars(query):
            seen += 1
            if _windowed(settings, row):
                tz = settings.client_timezone(settings.client(row.client) if row.client else None)
                window = _window(settings)
                if not window.is_open(now, tz):  # e.g. a retry that slipped past closing
                    row.not_before = window.next_opening(now, tz)
                    report.deferred.append(row.id)
                    continue
            row.state = "sending"
            row.sending_at = now
            row.attempts += 1
            row.error = None
            jobs.append(_Job(row.id, row.raw, row.from_addr, tuple(row.to_addrs),
                             row.message_id, row.attempts))
    return jobs, seen


def _windowed(settings: Settings, row: OutboxMessage) -> bool:
    """Client mail (also when redirected to its owner in owner-only mode) keeps the window."""
    head = row.raw.split(b"\r\n\r\n", 1)[0].lower()
    if b"\r\n" + MODE_HEADER.lower().encode() + b":" in head:
        return True
    return any(not _staff(settings, r) for r in row.to_addrs)


def send_due(
    settings: Settings,
    store: Store,
    *,
    now: datetime | None = None,
    policy_: SendPolicy | None = None,
    hook: Hook | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> SendReport:
    """One pass: settle stale and uncertain rows, then send everything due, batch by batch.

    `hook(point, outbox_id)` is called at "claimed" (after `sending` is
    committed), "connected", and "accepted" (after the server's 250, before
    anything is recorded): crash tests kill the process there.
    """
    policy_ = policy_ or SendPolicy()
    report = SendReport()
    if settings.smtp is None:
        report.error = "no [smtp] table"
        return report
    now = _now(now)
    stale = policy_.stale_after or timedelta(seconds=settings.smtp.timeout * 6 + 60)
    recover_interrupted(settings, store, older_than=now - stale)
    resolve_uncertain(settings, store, now=now, report=report)
    _send_batches(settings, store, policy_, now, report, hook, tls_context)
    if report.uncertain:
        asked = len(report.asked)
        resolve_uncertain(settings, store, now=now, report=report)
        if len(report.asked) > asked:  # send the questions now, not on the next pass
            _send_batches(settings, store, policy_, now, report, hook, tls_context)
    return report


def _send_batches(
    settings: Settings,
    store: Store,
    policy_: SendPolicy,
    now: datetime,
    report: SendReport,
    hook: Hook | None,
    tls_context: ssl.SSLContext | None,
) -> None:
    while True:
        jobs, seen = _claim(settings, store, policy_, now, report)
        if jobs:
            if hook:
                for job in jobs:
                    hook("claimed", job.id)
            asyncio.run(_deliver(settings, store, jobs, policy_, now, report, hook, tls_context))
        if seen < policy_.batch_size:
            return


async def _deliver(
    settings: Settings,
    store: Store,
    jobs: list[_Job],
    policy_: SendPolicy,
    now: datetime,
    report: SendReport,
    hook: Hook | None,
    tls_context: ssl.SSLContext | None,
) -> None:
    assert settings.smtp is not None
    transport = SmtpTransport(settings.smtp, tls_context=tls_context)
    try:
        await transport.connect()
    except DeliveryError as exc:
        for job in jobs:
            _record(settings, store, job, Outcome("retry", str(exc), exc.smtp_code), policy_,
                    now, report, None)
        with store.session() as session:
            _event(session, "error", str(exc))
        return
    sent_folder: _LazySent | None = _LazySent(settings) if settings.mailbox else None
    pending = list(jobs)
    try:
        while pending:
            job = pending[0]
            if hook:
                hook("connected", job.id)
            pending.pop(0)
            if not transport.connected:  # not tried: the attempt does not count
                outcome = Outcome("retry", "connection closed earlier in the batch")
                _record(settings, store, job, outcome, policy_, now, report, None, tried=False)
                continue
            outcome = await transport.send(
                job.raw, job.mail_from, job.recipients,
                before_data=lambda job=job: _mark_data(store, job.id),
            )
            if outcome.status == "sent" and hook:
                hook("accepted", job.id)
            _record(settings, store, job, outcome, policy_, now, report, sent_folder)
    finally:
        await transport.close()
        if sent_folder is not None:
            sent_folder.close()
        if pending:  # stopped early (shutdown, error): untouched rows go back, untried
            _release(store, [job.id for job in pending])


def _release(store: Store, ids: Sequence[int]) -> None:
    with store.session() as session:
        for row in session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_(list(ids)),
                                        OutboxMessage.state == "sending")
        ):
            if row.error and row.error.startswith(DATA_MARKER):
                continue
            row.state = "scheduled"
            row.attempts = max(0, row.attempts - 1)
            row.error = "stopped before sending; will go on the next pass"


def _mark_data(store: Store, outbox_id: int) -> None:
    with store.session() as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is not None:
            row.error = DATA_MARKER + datetime.now(UTC).isoformat(timespec="seconds")


class _LazySent:
    """One IMAP connection for the batch, opened only when a copy is needed."""

    def __init__(self, settings: Settings) -> None:
        assert settings.mailbox is not None
        self.settings = settings
        self.folder: SentFolder | None = None
        self.broken: str | None = None

    def get(self) -> SentFolder | None:
        if self.broken:
            return None
        if self.folder is None:
            try:
                assert self.settings.mailbox is not None
                folder = SentFolder(self.settings.mailbox)
                folder.open()
            except MailboxError as exc:
                self.broken = str(exc)
                return None
            self.folder = folder
        return self.folder

    def close(self) -> None:
        if self.folder is not None:
            self.folder.close()


def _save_copy(settings: Settings, job: _Job, sent: _LazySent | None) -> tuple[bool, str | None]:
    """APPEND to Sent per `save_to_sent`; returns (saved, problem). Never raises."""
    assert settings.smtp is not None
    mode = settings.smtp.save_to_sent
    if mode == "never":
        return False, None
    if mode == "auto" and smtp_files_sent(settings.smtp.host):
        # Gmail and Microsoft 365 file submitted mail themselves; checking
        # right after sending would race their copy and APPEND a duplicate.
        return False, None
    folder = sent.get() if sent else None
    if folder is None:
        return False, (sent.broken if sent else "no [mailbox] to keep a Sent copy in")
    try:
        if mode == "auto" and folder.contains(job.message_id):
            return True, None  # the provider filed it itself
        folder.append(job.raw)
        return True, None
    except MailboxError as exc:
        return False, str(exc)


def _record(
    settings: Settings,
    store: Store,
    job: _Job,
    outcome: Outcome,
    policy_: SendPolicy,
    now: datetime,
    report: SendReport,
    sent: _LazySent | None,
    *,
    tried: bool = True,
) -> None:
    saved, problem = (False, None)
    if outcome.status == "sent":
        saved, problem = _save_copy(settings, job, sent)
    with store.session() as session:
        row = session.get(OutboxMessage, job.id, with_for_update=True)
        if row is None:
            return
        if not tried:
            row.attempts = max(0, row.attempts - 1)
        if outcome.status == "sent":
            row.state = "sent"
            row.sent_at = datetime.now(UTC)
            row.error = None
            row.saved_to_sent = saved
            report.sent.append(row.id)
            if problem:
                _event(session, "warning", f"message {row.id} sent; no Sent copy: {problem}")
            log.info("event=outbox_sent id=%d message_id=%s", row.id, row.message_id)
        elif outcome.status == "retry" and row.attempts < policy_.max_attempts:
            row.state = "scheduled"
            row.next_attempt_at = now + _backoff(policy_, row.attempts)
            row.error = outcome.detail
            report.retried.append(row.id)
            log.warning("event=outbox_retry id=%d attempt=%d error=%s",
                        row.id, row.attempts, outcome.detail)
        elif outcome.status == "uncertain":
            row.state = "uncertain"
            row.error = outcome.detail
            report.uncertain.append(row.id)
            _event(session, "warning", f"message {row.id} uncertain: {outcome.detail}")
        else:  # failed, or out of retries
            row.state = "failed"
            detail = outcome.detail
            if outcome.status == "retry":
                detail = f"gave up after {row.attempts} attempts: {detail}"
            row.error = detail
            report.failed.append(row.id)
            _event(session, "error", f"message {row.id} failed: {detail}")
            _tell_owner_failed(session, settings, row, now)


def _describe(row: OutboxMessage) -> str:
    return f"\"{row.subject}\" to {', '.join(row.to_addrs)} (Message-ID {row.message_id})"


def _tell_owner_failed(
    session: Session, settings: Settings, row: OutboxMessage, now: datetime
) -> None:
    if row.kind in _NOTICE_KINDS or not row.owner:
        return
    queue_notice(
        session,
        settings,
        owner=row.owner,
        kind="delivery_failure",
        subject=f"Not delivered: {row.subject}",
        text=(
            f"The email {_describe(row)} could not be delivered.\n\n"
            f"The mail server said: {row.error}\n\n"
            "It will not be retried. Check the address, then queue it again if needed.\n"
        ),
        in_reply_to=row.message_id,
        now=now,
    )


# -- uncertain ------------------------------------------------------------------


def resolve_uncertain(
    settings: Settings,
    store: Store,
    *,
    now: datetime | None = None,
    report: SendReport | None = None,
) -> SendReport:
    """Uncertain rows: `sent` if the Sent folder has the Message-ID; else ask the owner once."""
    now = _now(now)
    report = report if report is not None else SendReport()
    with store.session() as session:
        rows = session.execute(
            select(OutboxMessage.id, OutboxMessage.message_id).where(
                OutboxMessage.state == "uncertain"
            )
        ).all()
    if not rows:
        return report
    found: set[int] = set()
    checked = False
    if settings.mailbox is not None:
        try:
            with SentFolder(settings.mailbox) as folder:
                for row_id, message_id in rows:
                    if folder.contains(message_id):
                        found.add(row_id)
            checked = True
        except MailboxError as exc:
            with store.session() as session:
                _event(session, "warning", f"cannot search the Sent folder: {exc}")
    with store.session() as session:
        for row_id, _ in rows:
            row = session.get(OutboxMessage, row_id, with_for_update=True)
            if row is None or row.state != "uncertain":
                continue
            if row_id in found:
                row.state = "sent"
                row.sent_at = row.sent_at or row.sending_at or now
                row.saved_to_sent = True
                row.error = None
                report.resolved.append(row_id)
                log.info("event=outbox_uncertain_resolved id=%d", row_id)
                continue
            asking = checked or settings.mailbox is None
            if asking and _ask_owner(session, settings, row, now):
                report.asked.append(row_id)
    return report


def _ask_owner(session: Session, settings: Settings, row: OutboxMessage, now: datetime) -> bool:
    """Ask once (a token for this row exists = asked already)."""
    asked = session.scalar(
        select(func.count()).select_from(CommandToken).where(
            CommandToken.purpose == "outbox", CommandToken.subject_id == str(row.id)
        )
    )
    if asked:
        return False
    if not row.owner or settings.smtp is None or row.kind in _NOTICE_KINDS:
        if not (row.error or "").startswith(_NOBODY):
            row.error = f"{_NOBODY}: {row.error}"
            _event(session, "error", f"message {row.id} uncertain and nobody to ask")
        return False
    token = issue_token(session, settings, owner=row.owner, purpose="outbox",
                        subject_id=str(row.id), now=now)
    headers = reply_headers(settings, token, parent_message_id=row.message_id)
    queue_notice(
        session,
        settings,
        owner=row.owner,
        kind="outbox_uncertain",
        subject=f"Was it delivered? {row.subject}",
        text=(
            f"We handed over the email {_describe(row)}, but the connection broke "
            f"before the server confirmed it ({row.error}).\n\n"
            "It may or may not have arrived, and it is not in the Sent folder. "
            "We will not send it again on our own.\n\n"
            "Reply with one word on the first line:\n"
            "  RESEND  send it again (the recipient may get it twice)\n"
            "  DROP    leave it; do not send it again\n"
        ),
        in_reply_to=None,
        extra={
            "reply_to": headers["reply_to"],
            "in_reply_to": headers["in_reply_to"],
            "references": headers["references"],
        },
        now=now,
    )
    return True


def _outbox_row(ctx: CommandContext) -> OutboxMessage | None:
    try:
        row_id = int(ctx.subject_id)
    except ValueError:
        return None
    return ctx.session.get(OutboxMessage, row_id, with_for_update=True)


def _cmd_resend(ctx: CommandContext) -> CommandResult:
    row = _outbox_row(ctx)
    if row is None:
        return CommandResult(False, "that email is no longer in the outbox")
    if row.state != "uncertain":
        return CommandResult(False, f"that email is now {row.state}; nothing to resend")
    row.state = "scheduled"
    row.not_before = ctx.now
    row.next_attempt_at = None
    row.error = f"resend requested by {ctx.owner}"
    return CommandResult(True, f"{_describe(row)} will be sent again")


def _cmd_drop(ctx: CommandContext) -> CommandResult:
    row = _outbox_row(ctx)
    if row is None:
        return CommandResult(False, "that email is no longer in the outbox")
    if row.state != "uncertain":
        return CommandResult(False, f"that email is now {row.state}; nothing to drop")
    row.state = "cancelled"
    row.error = f"dropped by {ctx.owner} after an uncertain delivery"
    return CommandResult(True, f"{_describe(row)} will not be sent again")


register_command("RESEND", _cmd_resend, purposes=("outbox",))
register_command("DROP", _cmd_drop, purposes=("outbox",))


# -- listing and cancel ------------------------------------------------------------


def row_json(row: OutboxMessage) -> dict[str, Any]:
    """One row of the `outbox --json` contract."""
    return {
        "id": row.id,
        "kind": row.kind,
        "client": row.client,
        "owner": row.owner,
        "to": list(row.to_addrs),
        "subject": row.subject,
        "message_id": row.message_id,
        "state": row.state,
        "not_before": iso(row.not_before),
        "next_attempt_at": iso(row.next_attempt_at),
        "attempts": row.attempts,
        "sent_at": iso(row.sent_at),
        "saved_to_sent": row.saved_to_sent,
        "error": row.error,
        "created_at": iso(row.created_at),
    }


def listing(
    store: Store, *, states: Iterable[str] | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Newest first; pending rows (scheduled, sending, uncertain) before finished ones."""
    with store.session() as session:
        query = select(OutboxMessage)
        if states:
            query = query.where(OutboxMessage.state.in_(list(states)))
        rows = session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)).all()
        data = [row_json(r) for r in rows]
    pending = {"scheduled": 0, "sending": 0, "uncertain": 0}
    data.sort(key=lambda r: (r["state"] not in pending, -r["id"]))
    return data


def cancel_row(session: Session, outbox_id: int, reason: str) -> OutboxMessage | None:
    """Stop a message that has not gone out (in the caller's transaction).

    Returns the row, or None when it cannot be stopped any more (sending or sent);
    e.g. offboarding holds a farewell when the client writes again.
    """
    row = session.get(OutboxMessage, outbox_id, with_for_update=True)
    if row is None or row.state in ("sending", "sent"):
        return None
    if row.state != "cancelled":
        row.state = "cancelled"
        row.error = reason
    return row


def cancel(store: Store, outbox_id: int) -> dict[str, Any]:
    """`outbox cancel ID`; UsageError when the message is unknown, sending or sent."""
    with store.session() as session:
        row = cancel_row(session, outbox_id, "cancelled from the command line")
        if row is not None:
            return row_json(row)
        existing = session.get(OutboxMessage, outbox_id)
        if existing is None:
            raise UsageError(f"no outbox message with id {outbox_id}")
        raise UsageError(f"message {outbox_id} is {existing.state} and cannot be cancelled")


def next_due(store: Store) -> datetime | None:
    """When the next scheduled message becomes due (for the scheduler's wake-up)."""
    with store.session() as session:
        pairs = session.execute(
            select(OutboxMessage.not_before, OutboxMessage.next_attempt_at).where(
                OutboxMessage.state == "scheduled"
            )
        ).all()
    times = [max(nb, na) if na else nb for nb, na in pairs]
    return min(times) if times else None


def counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return dict(
            session.execute(
                select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
            ).all()
        )


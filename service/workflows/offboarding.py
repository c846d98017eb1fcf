"""Parting with a client, step by step, each email approved by the owner's reply.

States (shared/DESIGN.md)::

    proposed -> conversation_requested -> met -> drafted -> awaiting_approval
             -> approved -> scheduled -> sent -> feedback_requested -> closed
    (any active state -> cancelled; the conversation steps may be skipped)

Each client-facing email (conversation request, farewell, feedback request) is a
versioned ``Draft``: rendered from templates/ with what the store knows about the
client, checked by the guardrails, and sent to the owner as an approval request with a
reply token bound to that version. Replies (through ``approvals``):

* ``draft`` tokens: APPROVE, APPROVE ANYWAY, EDIT + text, REJECT, CANCEL, MET;
* ``scheduled`` tokens (the notice sent once an email is queued): CANCEL until it
  leaves, MET after the conversation;
* ``hold`` tokens (the client wrote again before a queued email left): CONFIRM,
  EDIT + text, CANCEL;
* ``alert`` tokens: OFFBOARD starts here.

Pending work blocks ``approved -> scheduled`` for the farewell unless the owner says
APPROVE ANYWAY, and then the farewell must say how each open item is completed or
handed over (the guardrails check it against the items open *now*). A queued email is
held when the client writes again before it leaves. The feedback request is drafted when
the farewell has gone and queued ``feedback_after_days`` later; client replies after it
(or to the farewell) are kept as ``Feedback``.

The daemon calls :func:`on_new_messages` after each ingest batch and :func:`advance`
periodically (``schedule_offboarding``) to notice emails that have left.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import ClientSettings, Settings
from ..errors import UsageError
from ..ics import Invitation, build_invitation
from ..mail.compose import Attachment, compose, domain_of, thread_headers
from ..sendwindow import SendWindow, window_from_schedule
from ..store.db import Store
from ..store.models import (
    Draft,
    Feedback,
    Message,
    Offboarding,
    OutboxMessage,
    PendingItem,
    iso,
)
from ..templating import RenderedEmail, render
from .approvals import (
    CommandContext,
    CommandResult,
    issue_token,
    register_command,
    register_version_check,
    reply_headers,
)
from .guardrails import GuardrailContext, check_draft
from .outbox import queue, queue_notice
from .pending import clean_subject, open_items

log = logging.getLogger(__name__)

__all__ = [
    "STATES",
    "advance",
    "client_status",
    "drafts_listing",
    "first_name",
    "offboarding_job",
    "offboarding_threads",
    "on_new_messages",
    "propose_slots",
    "schedule_offboarding",
    "start",
    "text_to_html",
    "top_projects",
    "transition",
]

STATES = ("proposed", "conversation_requested", "met", "drafted", "awaiting_approval",
          "approved", "scheduled", "sent", "feedback_requested", "closed", "cancelled")
DONE = ("closed", "cancelled")
_ALLOWED: dict[str, frozenset[str]] = {
    "proposed": frozenset({"conversation_requested", "met", "drafted", "awaiting_approval",
                           "cancelled"}),
    "conversation_requested": frozenset({"proposed", "met", "cancelled"}),
    "met": frozenset({"drafted", "awaiting_approval", "cancelled"}),
    "drafted": frozenset({"awaiting_approval", "cancelled"}),
    "awaiting_approval": frozenset({"approved", "drafted", "awaiting_approval", "cancelled"}),
    "approved": frozenset({"scheduled", "cancelled"}),
    "scheduled": frozenset({"sent", "drafted", "awaiting_approval", "cancelled"}),
    "sent": frozenset({"feedback_requested", "closed"}),
    "feedback_requested": frozenset({"closed"}),
    "closed": frozenset(),
    "cancelled": frozenset(),
}

KINDS = ("conversation_request", "farewell", "feedback_request")
VARIANTS = {"conversation_request": "open", "farewell": "warm", "feedback_request": "questions"}
DRAFT_LIVE = ("awaiting_approval", "approved", "scheduled", "held")

PURPOSE_DRAFT = "draft"
PURPOSE_SCHEDULED = "scheduled"
PURPOSE_HOLD = "hold"
PURPOSE_ALERT = "alert"

MEETING_MINUTES = 30
SLOT_COUNT = 3
#: Preferred meeting times (local), in the order slots are offered across days.
_PREFERRED = (time(10, 0), time(14, 0), time(11, 0), time(15, 0), time(9, 30), time(16, 0))
#: The first slot must leave the client time to read the request and answer.
MIN_LEAD = timedelta(hours=18)
#: A newly stored client message this much older than the draft is history, not news.
_NEWS_SLACK = timedelta(days=1)
#: Replies this long after the feedback request are ordinary mail again.
FEEDBACK_WINDOW = timedelta(days=90)
_PLAN_MAILBOX = "you will have our answer before we close"


class OffboardingError(UsageError):
    """An offboarding step that cannot be taken as asked (the message says why)."""


# -- pure helpers ---------------------------------------------------------------


def transition(state: str, new: str) -> str:
    """The new state, or ValueError when the state machine has no such edge."""
    if new not in _ALLOWED.get(state, frozenset()) and new != state:
        raise ValueError(f"offboarding cannot go from {state} to {new}")
    return new


_GENERIC_NAMES = frozenset({
    "team", "info", "support", "admin", "office", "accounts", "accounting", "billing",
    "sales", "hello", "contact", "mail", "noreply", "no-reply", "service", "marketing",
    "the", "dr", "mr", "mrs", "ms", "prof", "dr.", "mr.", "mrs.", "ms.", "prof.",
})


def first_name(display_name: str | None, *, client_name: str | None = None) -> str | None:
    """The given name to greet: 'Ana López' -> 'Ana', 'López, Ana' -> 'Ana'; None for
    role accounts ('Acme Support') and addresses."""
    if not display_name:
        return None
    name = display_name.strip().strip("\"'").strip()
    if not name or "@" in name:
        return None
    if "," in name:
        last, _, rest = name.partition(",")
        name = rest.strip() or last.strip()
    words = [w for w in re.split(r"\s+", name) if w]
    while words and words[0].lower() in _GENERIC_NAMES:
        words = words[1:]
    if not words:
        return None
    word = words[0].strip(".,;:()[]")
    if not word or any(ch.isdigit() for ch in word) or not word[0].isalpha():
        return None
    if client_name and word.casefold() in {w.casefold() for w in client_name.split()}:
        return None  # 'Acme Support' -> the company, not a person
    if len(words) > 1 and words[1].lower() in _GENERIC_NAMES:
        return None
    if word.islower() or word.isupper():
        word = word[:1].upper() + word[1:].lower()
    return word


_NOT_A_PROJECT = re.compile(
    r"\b(invoice|payment|overdue|complain\w*|urgent|issue|problem|bug|error|broken|refund|"
    r"cancel\w*|contract|reminder|out of office|automatic reply|auto[- ]?reply|"
    r"quick question|question|hello|hi|follow[- ]?up|meeting|call|catch[- ]?up|feedback|"
    r"fix|delay\w*|late|escalat\w*|unacceptable|disappoint\w*|still|again|asap|"
    r"future of our work|thank you|thanks|farewell|next steps)\b",
    re.IGNORECASE,
)


def top_projects(rows: Iterable[tuple[str, str, datetime | None]], *, limit: int = 3
                 ) -> list[str]:
    """What we did together: the busiest threads' subjects, cleaned (pure).

    `rows` are (thread_key, subject, date) of a client's messages. Subjects about money,
    trouble or logistics are not projects and are left out.
    """
    first: dict[str, tuple[datetime, str]] = {}
    counts: Counter[str] = Counter()
    floor = datetime.min.replace(tzinfo=UTC)
    for thread, subject, when in rows:
        counts[thread] += 1
        key = (when or floor, subject)
        if thread not in first or key < first[thread]:
            first[thread] = key
    totals: Counter[str] = Counter()
    label: dict[str, str] = {}
    seen_at: dict[str, datetime] = {}
    for thread, (when, subject) in first.items():
        text = clean_subject(subject).strip(" .:-")
        if not text or len(text) > 60 or _NOT_A_PROJECT.search(text):
            continue
        norm = text.casefold()
        totals[norm] += counts[thread]
        label.setdefault(norm, text)
        seen_at[norm] = min(seen_at.get(norm, when), when)
    ranked = sorted(totals, key=lambda k: (-totals[k], seen_at[k]))
    return [label[k] for k in ranked[:limit]]


def propose_slots(
    after: datetime,
    window: SendWindow,
    client_tz: ZoneInfo,
    *,
    owner_tz: ZoneInfo | None = None,
    count: int = SLOT_COUNT,
    minutes: int = MEETING_MINUTES,
    lead: timedelta = MIN_LEAD,
) -> list[datetime]:
    """`count` meeting slots on the next business days, one a day (pure).

    Each slot lies inside the send window on a send day in the client's zone, starts at
    least `lead` after `after`, and, when the owner works in another zone, inside the
    owner's window too where the two overlap; preferred times rotate over the days so
    the client sees a morning and an afternoon.
    """
    if after.tzinfo is None:
        raise ValueError("propose_slots needs an aware datetime")
    earliest = after + lead
    slots: list[datetime] = []
    day = earliest.astimezone(client_tz).date()
    for _ in range(400):
        if len(slots) >= count:
            break
        if window.is_send_day(day):
            chosen = _slot_on(day, window, client_tz, owner_tz, minutes, earliest, len(slots))
            if chosen is not None:
                slots.append(chosen)
        day += timedelta(days=1)
    return slots


def _slot_on(day: date, window: SendWindow, tz: ZoneInfo, owner_tz: ZoneInfo | None,
             minutes: int, earliest: datetime, index: int) -> datetime | None:
    def fits(start: datetime, zone: ZoneInfo) -> bool:
        end = start + timedelta(minutes=minutes)
        local = start.astimezone(zone)
        if not window.is_open(start, zone):
            return False
        return end.astimezone(zone) <= datetime.combine(local.date(), window.end, zone)

    candidates: list[datetime] = []
    rotated = _PREFERRED[index % len(_PREFERRED):] + _PREFERRED[:index % len(_PREFERRED)]
    for wall in rotated:
        candidates.append(datetime.combine(day, wall, tz))
    step = datetime.combine(day, window.start, tz)
    while step.time() < window.end:
        candidates.append(step)
        step += timedelta(minutes=30)
        if step.date() != day:
            break
    ok = [c for c in candidates if c >= earliest and fits(c, tz)]
    if owner_tz is not None and owner_tz != tz:
        both = [c for c in ok if fits(c, owner_tz)]
        ok = both or ok
    return ok[0].astimezone(UTC) if ok else None


def text_to_html(text: str) -> str:
    """A plain HTML part for an owner's edited text (paragraphs and line breaks kept)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "\n".join(
        '<p style="margin:0 0 16px 0;">'
        + "<br>".join(html_lib.escape(line) for line in p.splitlines()) + "</p>"
        for p in paragraphs
    )
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>"
            "<body style=\"font-family:Arial,Helvetica,sans-serif;font-size:15px;"
            "line-height:1.5;color:#222222;\">\n<!--content-->\n" + body
            + "\n<!--/content-->\n</body></html>\n")


_SUBJECT_LINE = re.compile(r"^\s*subject\s*:\s*(.+)$", re.IGNORECASE)


def edited_text(args: str, body: str, *, signature: str) -> tuple[str | None, str]:
    """(new subject or None, new text) from an EDIT reply.

    The reply's signature block is removed by reply parsing, so when the text does not end
    with the owner's signature, the configured one is added back.
    """
    text = "\n".join(part for part in (args.strip(), body.strip()) if part).strip()
    subject = None
    lines = text.splitlines()
    if lines and _SUBJECT_LINE.match(lines[0]):
        subject = _SUBJECT_LINE.match(lines[0]).group(1).strip()  # type: ignore[union-attr]
        text = "\n".join(lines[1:]).strip()
    if text and signature.strip():
        tail = "\n".join(text.splitlines()[-6:]).casefold()
        first_line = signature.strip().splitlines()[0].strip().casefold()
        if first_line not in tail:
            text = text.rstrip() + "\n" + signature.strip()
    return subject, (text + "\n" if text else "")


# -- reading the store ------------------------------------------------------------


@dataclass(frozen=True)
class Personal:
    """What the templates need to know about the client relationship."""

    contact_address: str
    contact_display: str | None
    contact_first_name: str | None
    worked_since: datetime | None
    projects: list[str]
    latest_message_id: str | None
    latest_references: list[str]


def _personal(session: Session, client: ClientSettings) -> Personal:
    senders = session.execute(
        select(Message.from_addr, func.count(), func.max(Message.from_name))
        .where(Message.client == client.name, Message.role == "client",
               Message.auto_generated.is_(False), Message.from_addr.is_not(None))
        .group_by(Message.from_addr)
        .order_by(func.count().desc(), Message.from_addr)
    ).all()
    if senders:
        address, _, display = senders[0]
    elif client.addresses:
        address, display = client.addresses[0], None
    else:
        raise OffboardingError(
            f"no address is known for {client.name}: no stored mail from them and no "
            "`addresses` in its [[clients]] entry")
    since = session.scalar(select(func.min(Message.date)).where(Message.client == client.name))
    rows = session.execute(
        select(Message.thread_key, Message.subject, Message.date)
        .where(Message.client == client.name, Message.auto_generated.is_(False))
    ).all()
    latest = session.execute(
        select(Message.message_id, Message.references)
        .where(Message.client == client.name, Message.role == "client",
               Message.auto_generated.is_(False))
        .order_by(Message.date.desc(), Message.id.desc()).limit(1)
    ).first()
    return Personal(
        contact_address=str(address).lower(),
        contact_display=display,
        contact_first_name=first_name(display, client_name=client.name),
        worked_since=since,
        projects=top_projects([tuple(r) for r in rows]),  # type: ignore[misc]
        latest_message_id=latest[0] if latest else None,
        latest_references=list(latest[1] or []) if latest else [],
    )


def _client(settings: Settings, name: str) -> ClientSettings:
    client = settings.client(name)
    if client is None:
        known = ", ".join(c.name for c in settings.clients) or "none configured"
        raise OffboardingError(f"no client named {name!r} (known: {known})")
    return client


def _owner_zone(settings: Settings, owner: str) -> ZoneInfo:
    person = settings.owner(owner)
    return ZoneInfo(person.timezone or settings.service.timezone)


def _window(settings: Settings) -> SendWindow:
    return window_from_schedule(settings.schedule)


def _active(session: Session, client: str) -> Offboarding | None:
    return session.scalars(
        select(Offboarding).where(Offboarding.client == client, Offboarding.state.not_in(DONE))
        .order_by(Offboarding.id.desc()).limit(1)
    ).first()


def _drafts(session: Session, off: Offboarding, states: Sequence[str] | None = None
            ) -> list[Draft]:
    query = select(Draft).where(Draft.offboarding_id == off.id)
    if states is not None:
        query = query.where(Draft.state.in_(list(states)))
    return list(session.scalars(query.order_by(Draft.id)))


def _meta(draft: Draft) -> dict[str, Any]:
    return dict(draft.meta or {})


def _set_meta(draft: Draft, **values: Any) -> None:
    draft.meta = {**_meta(draft), **values}


def offboarding_threads(session: Session, client: str) -> set[str]:
    """Thread keys of our offboarding emails and the replies to them: not 'open work'."""
    ids = [m for (m,) in session.execute(
        select(OutboxMessage.message_id).where(
            OutboxMessage.client == client, OutboxMessage.kind.in_(KINDS)))]
    if not ids:
        return set()
    keys = set(ids)
    keys.update(k for (k,) in session.execute(
        select(Message.thread_key).where(Message.client == client,
                                         Message.in_reply_to.in_(ids))))
    return keys


def _open(session: Session, client: str, now: datetime) -> list[PendingItem]:
    return open_items(session, client, now=now,
                      exclude_threads=offboarding_threads(session, client))


def _move(off: Offboarding, new: str, now: datetime) -> None:
    off.state = transition(off.state, new)
    off.updated_at = now


# -- drafts -----------------------------------------------------------------------


def _guardrail_context(settings: Settings, client: ClientSettings, owner: str,
                       contact: str | None, pending: Sequence[str]) -> GuardrailContext:
    person = settings.owner(owner)
    return GuardrailContext(
        client_name=client.name, contact_name=contact, owner_name=person.name,
        owner_signature=person.signature,
        other_clients=tuple(c.name for c in settings.clients if c.name != client.name),
        pending_items=tuple(pending))


def _check(settings: Settings, client: ClientSettings, owner: str, kind: str, text: str,
           contact: str | None, pending: Sequence[str]) -> list[dict[str, Any]]:
    results = check_draft(text, kind=kind,
                          context=_guardrail_context(settings, client, owner, contact, pending))
    return [{"rule": r.rule, "passed": r.passed, "detail": r.detail, "sentence": r.sentence}
            for r in results]


def _failed(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if not r.get("passed")]


def _pending_context(items: Sequence[PendingItem]) -> list[dict[str, Any]]:
    return [{"id": i.id, "text": i.text, "plan": _PLAN_MAILBOX if i.source == "mailbox" else None}
            for i in items]


def _render_context(settings: Settings, client: ClientSettings, off: Offboarding,
                    personal: Personal, now: datetime) -> dict[str, Any]:
    person = settings.owner(off.owner)
    return {
        "contact_first_name": personal.contact_first_name,
        "client_name": client.name,
        "owner_name": person.name or person.email,
        "owner_signature": person.signature,
        "today": now.astimezone(settings.client_timezone(client)).date(),
        "worked_since": personal.worked_since.date() if personal.worked_since else None,
        "projects": personal.projects,
        "timezone": str(settings.client_timezone(client)),
        "meeting_minutes": MEETING_MINUTES,
    }


def _create_draft(session: Session, settings: Settings, off: Offboarding, kind: str,
                  now: datetime, *, send_after: datetime | None = None) -> Draft:
    """Render, check and store version 1 of a draft, then ask the owner to approve it."""
    client = _client(settings, off.client)
    personal = _personal(session, client)
    context = _render_context(settings, client, off, personal, now)
    tz = settings.client_timezone(client)
    meta: dict[str, Any] = {"to": personal.contact_address, "to_name": personal.contact_display,
                            "contact_first_name": personal.contact_first_name}
    pending: list[PendingItem] = []
    if kind == "conversation_request":
        slots = propose_slots(now, _window(settings), tz, owner_tz=_owner_zone(settings,
                                                                             off.owner))
        context["slots"] = slots
        meta["slots"] = [s.isoformat() for s in slots]
    elif kind == "farewell":
        pending = _open(session, client.name, now)
        context["pending"] = _pending_context(pending)
        context["agreed"] = off.agreed
        context["met_on"] = off.met_at.astimezone(tz).date() if off.met_at else None
        meta["pending_ids"] = [p.id for p in pending]
        if off.continue_thread and personal.latest_message_id:
            meta["in_reply_to"] = personal.latest_message_id
            meta["references"] = personal.latest_references
    elif kind == "feedback_request" and send_after is not None:
        meta["send_after"] = send_after.isoformat()
    email = render(kind, VARIANTS[kind], context, templates_dir=settings.service.templates_dir)
    results = _check(settings, client, off.owner, kind, email.text,
                     personal.contact_first_name, [p.text for p in pending])
    latest = session.scalar(select(func.max(Draft.version)).where(
        Draft.offboarding_id == off.id, Draft.kind == kind)) or 0
    draft = Draft(offboarding_id=off.id, kind=kind, version=latest + 1, subject=email.subject,
                  text=email.text, html=email.html, guardrails=results, state="draft",
                  created_at=now, meta=meta)
    session.add(draft)
    session.flush()
    if kind == "farewell":
        _move(off, "drafted", now)
    _request_approval(session, settings, off, draft, now)
    return draft


def _proposed_send(settings: Settings, off: Offboarding, draft: Draft, now: datetime
                   ) -> datetime:
    client = _client(settings, off.client)
    tz = settings.client_timezone(client)
    after = now
    send_after = _meta(draft).get("send_after")
    if send_after:
        after = max(now, datetime.fromisoformat(send_after))
    return _window(settings).next_opening(after, tz)


def _request_approval(session: Session, settings: Settings, off: Offboarding, draft: Draft,
                      now: datetime) -> OutboxMessage | None:
    """The approval request: the draft inline, checks, open work, proposed send time."""
    draft.state = "awaiting_approval"
    if draft.kind == "farewell":
        _move(off, "awaiting_approval", now)
    if settings.smtp is None:
        log.warning("event=approval_not_sent offboarding=%d reason=no_smtp", off.id)
        return None
    client = _client(settings, off.client)
    person = settings.owner(off.owner)
    items = _open(session, client.name, now)
    token = issue_token(session, settings, owner=off.owner, purpose=PURPOSE_DRAFT,
                        subject_id=str(draft.id), version=draft.version, now=now)
    expires = now + timedelta(hours=settings.approvals.expiry_hours)
    context = {
        "owner_name": person.name or person.email,
        "client_name": client.name,
        "draft_kind": draft.kind,
        "draft_version": draft.version,
        "draft": RenderedEmail(draft.subject, draft.text, draft.html or text_to_html(draft.text)),
        "guardrails": draft.guardrails,
        "pending": [{"id": i.id, "text": i.text} for i in items],
        "send_at": _proposed_send(settings, off, draft, now),
        "timezone": str(settings.client_timezone(client)),
        "expires_at": expires,
    }
    email = render("approval_request", "default", context,
                   templates_dir=settings.service.templates_dir)
    text = email.text
    if draft.kind == "conversation_request":
        text += ("\nAlready talked to them? Reply MET followed by what you agreed, and the "
                 "farewell is drafted next.\n")
    msg = compose(from_addr=settings.smtp.from_address, to=[off.owner], subject=email.subject,
                  text=text, html=email.html, domain=domain_of(settings.smtp.from_address),
                  headers={"Auto-Submitted": "auto-generated"},
                  **reply_headers(settings, token))  # type: ignore[arg-type]
    return queue(session, settings, msg, kind="approval_request", client=client.name,
                 owner=off.owner, draft_id=draft.id, now=now)


def _client_message(session: Session, settings: Settings, off: Offboarding, draft: Draft,
                    now: datetime, not_before: datetime) -> OutboxMessage:
    """Compose and queue the approved email for the client (frozen bytes, new Message-ID)."""
    assert settings.smtp is not None
    client = _client(settings, off.client)
    person = settings.owner(off.owner)
    meta = _meta(draft)
    sender = settings.smtp.from_address
    if person.name:
        sender = f"{person.name} <{settings.smtp.from_address}>"
    in_reply_to, references = None, []
    if draft.kind == "farewell" and meta.get("in_reply_to"):
        in_reply_to, references = thread_headers(meta["in_reply_to"], meta.get("references", []))
    attachments = []
    if draft.kind == "conversation_request" and meta.get("slots"):
        first = datetime.fromisoformat(meta["slots"][0])
        domain = domain_of(settings.smtp.from_address)
        data = build_invitation(Invitation(
            uid=f"saygoodbye-offboarding-{off.id}-{draft.kind}@{domain}",
            start=first, minutes=MEETING_MINUTES,
            timezone=str(settings.client_timezone(client)),
            summary=f"{client.name} and {person.name or off.owner}: a conversation",
            description=draft.subject, organizer_email=off.owner,
            organizer_name=person.name, attendee_email=meta["to"],
            attendee_name=meta.get("to_name"), stamp=now, sequence=draft.version - 1))
        attachments.append(Attachment("invitation.ics", data, "text/calendar"))
    to = meta["to"]
    if meta.get("to_name"):
        to = f"{meta['to_name']} <{to}>"
    msg = compose(from_addr=sender, to=[to], subject=draft.subject, text=draft.text,
                  html=draft.html or text_to_html(draft.text), in_reply_to=in_reply_to,
                  references=references, domain=domain_of(settings.smtp.from_address),
                  attachments=attachments)
    row = queue(session, settings, msg, kind=draft.kind, client=client.name, owner=off.owner,
                not_before=not_before, draft_id=draft.id, now=now)
    _set_meta(draft, outbox_id=row.id)
    draft.scheduled_for = row.not_before
    draft.state = "scheduled"
    return row


def _when(settings: Settings, off: Offboarding, at: datetime) -> str:
    client = _client(settings, off.client)
    tz = settings.client_timezone(client)
    owner_tz = _owner_zone(settings, off.owner)
    local = at.astimezone(tz)
    text = f"{local:%A} {local.day} {local:%B %Y}, {local:%H:%M} ({tz})"
    if owner_tz != tz:
        mine = at.astimezone(owner_tz)
        text += f", {mine:%H:%M} your time"
    return text


def _label(kind: str) -> str:
    return kind.replace("_", " ")


def _scheduled_notice(session: Session, settings: Settings, off: Offboarding, draft: Draft,
                      row: OutboxMessage, now: datetime) -> None:
    """Tell the owner when it goes, with a token to CANCEL until then (and MET later)."""
    if settings.smtp is None:
        return
    lifetime = timedelta(hours=settings.approvals.expiry_hours)
    if draft.kind == "conversation_request":
        lifetime = max(lifetime, timedelta(days=30))
    else:
        lifetime = max(lifetime, row.not_before - now + timedelta(days=1))
    token = issue_token(session, settings, owner=off.owner, purpose=PURPOSE_SCHEDULED,
                        subject_id=str(draft.id), version=draft.version, now=now,
                        expires_in=lifetime)
    lines = [
        f"The {_label(draft.kind)} to {off.client} ({', '.join(row.to_addrs)}) is scheduled "
        f"for {_when(settings, off, row.not_before)}.",
        "",
        f"Subject: {draft.subject}",
        "",
        "Reply to this email with one word on the first line:",
        "  CANCEL   stop it before it leaves (and the offboarding with it)",
    ]
    if draft.kind == "conversation_request":
        lines.append("  MET      after the conversation, followed by what you agreed; "
                     "the farewell is drafted next")
    if draft.kind == "farewell":
        lines += ["", "If the client writes again before it leaves, it is held and you are "
                      "asked first."]
    headers = reply_headers(settings, token, parent_message_id=row.message_id)
    queue_notice(session, settings, owner=off.owner, kind="confirmation",
                 subject=f"Scheduled: {draft.subject} ({off.client})", text="\n".join(lines) + "\n",
                 extra={"reply_to": headers["reply_to"], "in_reply_to": None,
                        "references": headers["references"]}, now=now)


# -- use cases ----------------------------------------------------------------------


def _begin(session: Session, settings: Settings, client: ClientSettings, *, owner: str,
           skip_conversation: bool, met: bool, agreed: str | None, fresh_thread: bool,
           now: datetime) -> Offboarding:
    off = Offboarding(client=client.name, owner=owner.lower(), state="proposed",
                      skip_conversation=skip_conversation or met,
                      continue_thread=not fresh_thread, started_at=now, updated_at=now)
    session.add(off)
    session.flush()
    if met:
        _record_met(session, settings, off, agreed, now)
    elif skip_conversation:
        _create_draft(session, settings, off, "farewell", now)
    else:
        _create_draft(session, settings, off, "conversation_request", now)
    log.info("event=offboarding_started client=%s id=%d state=%s", client.name, off.id,
             off.state)
    return off


def _cancel_scheduled(session: Session, draft: Draft, reason: str) -> bool:
    """Withdraw a draft's queued email if it has not started leaving; True if withdrawn."""
    outbox_id = _meta(draft).get("outbox_id")
    row = session.get(OutboxMessage, outbox_id, with_for_update=True) if outbox_id else None
    if row is None or row.state in ("cancelled", "failed"):
        return True
    if row.state != "scheduled":
        return False
    row.state = "cancelled"
    row.error = reason
    return True


def _record_met(session: Session, settings: Settings, off: Offboarding, agreed: str | None,
                now: datetime) -> Draft:
    for draft in _drafts(session, off, DRAFT_LIVE):
        if draft.kind == "conversation_request":
            _cancel_scheduled(session, draft, "not needed: the meeting was held")
            draft.state = "cancelled"
    off.met_at = now
    off.agreed = " ".join(agreed.split()) if agreed and agreed.strip() else off.agreed
    off.held_reason = None
    _move(off, "met", now)
    return _create_draft(session, settings, off, "farewell", now)


def start(settings: Settings, store: Store, name: str, *, skip_conversation: bool = False,
          met: bool = False, agreed: str | None = None, fresh_thread: bool = False,
          now: datetime | None = None) -> dict[str, Any]:
    """`saygoodbye offboard NAME`: start, record the meeting, or take the next step.

    On an offboarding already under way it records the meeting (``--met``), skips the
    conversation (``--skip-conversation``), or drafts the next email when none is
    waiting (after a REJECT or a withdrawn email); otherwise it says where things stand.
    """
    now = now or datetime.now(UTC)
    client = _client(settings, name)
    with store.session() as session:
        off = _active(session, client.name)
        if off is None:
            off = _begin(session, settings, client, owner=client.owner,
                         skip_conversation=skip_conversation, met=met, agreed=agreed,
                         fresh_thread=fresh_thread, now=now)
            return _summary(session, off, "started")
        if fresh_thread:
            off.continue_thread = False
        live = _drafts(session, off, DRAFT_LIVE)
        if met and off.met_at is None and off.state in ("proposed", "conversation_requested"):
            _record_met(session, settings, off, agreed, now)
            return _summary(session, off, "meeting recorded; farewell drafted")
        if skip_conversation and off.state == "proposed":
            for draft in live:
                _cancel_scheduled(session, draft, "conversation skipped")
                draft.state = "cancelled"
            off.skip_conversation = True
            _create_draft(session, settings, off, "farewell", now)
            return _summary(session, off, "conversation skipped; farewell drafted")
        if not live:
            kind = {"proposed": "conversation_request", "met": "farewell",
                    "drafted": "farewell", "sent": "feedback_request"}.get(off.state)
            if kind is not None:
                send_after = None
                if kind == "feedback_request" and off.farewell_sent_at:
                    send_after = off.farewell_sent_at + timedelta(
                        days=settings.schedule.feedback_after_days)
                _create_draft(session, settings, off, kind, now, send_after=send_after)
                return _summary(session, off, f"new {_label(kind)} drafted")
        raise OffboardingError(
            f"{client.name} is already being offboarded (state: {off.state.replace('_', ' ')});"
            " see `saygoodbye drafts`" + ("; after the meeting: offboard --met"
                                         if off.state == "conversation_requested" else ""))


def _summary(session: Session, off: Offboarding, action: str) -> dict[str, Any]:
    return {"client": off.client, "offboarding_id": off.id, "state": off.state,
            "action": action, "owner": off.owner,
            "drafts": [_draft_json(d, off, []) for d in _latest_drafts(session, off)]}


# -- reply commands -------------------------------------------------------------------


def _draft_for(ctx: CommandContext) -> tuple[Draft, Offboarding] | CommandResult:
    try:
        draft = ctx.session.get(Draft, int(ctx.subject_id), with_for_update=True)
    except ValueError:
        draft = None
    if draft is None:
        return CommandResult(False, "that draft no longer exists")
    off = ctx.session.get(Offboarding, draft.offboarding_id, with_for_update=True)
    if off is None:
        return CommandResult(False, "that offboarding no longer exists")
    if off.state in DONE:
        return CommandResult(False, f"the offboarding of {off.client} is {off.state}")
    return draft, off


def _refusal_list(results: Sequence[dict[str, Any]]) -> str:
    return "; ".join(f"{r['rule'].replace('_', ' ')}: {r['detail']}"
                     + (f" (\"{r['sentence']}\")" if r.get("sentence") else "")
                     for r in results)


def _pending_gate(ctx: CommandContext, off: Offboarding, draft: Draft,
                  anyway: bool) -> CommandResult | None:
    """None when the farewell may be scheduled; else the refusal, before anything changes."""
    client = _client(ctx.settings, off.client)
    items = _open(ctx.session, client.name, ctx.now)
    if draft.kind != "farewell" or not items:
        return None
    results = _check(ctx.settings, client, off.owner, draft.kind, draft.text,
                     _meta(draft).get("contact_first_name"), [i.text for i in items])
    uncovered = [r for r in _failed(results) if r["rule"] == "pending_items"]
    listed = "; ".join(f"#{i.id} {i.text}" for i in items)
    if not anyway:
        return CommandResult(
            False, f"work with {client.name} is still open ({listed}). Finish it and mark it "
            "done (saygoodbye pending done ID; answered threads close by themselves), then "
            "reply APPROVE again; or reply APPROVE ANYWAY to send the farewell, which says "
            "how each item will be completed or handed over")
    if uncovered:
        return CommandResult(
            False, "APPROVE ANYWAY needs a farewell that says how each open item will be "
            f"completed or handed over: {_refusal_list(uncovered)}. Reply EDIT with a text "
            "that covers them")
    return None


def _cmd_approve(ctx: CommandContext) -> CommandResult:
    found = _draft_for(ctx)
    if isinstance(found, CommandResult):
        return found
    draft, off = found
    if draft.state != "awaiting_approval":
        return CommandResult(False, f"this {_label(draft.kind)} is {draft.state}, not awaiting "
                                    "approval")
    failing = _failed(draft.guardrails or [])
    if failing:
        return CommandResult(False, f"this draft fails its checks and cannot be approved "
                                    f"({_refusal_list(failing)}). Reply EDIT with a corrected "
                                    "text")
    anyway = ctx.args.strip().upper().startswith("ANYWAY")
    refusal = _pending_gate(ctx, off, draft, anyway)
    if refusal is not None:
        return refusal
    not_before = _proposed_send(ctx.settings, off, draft, ctx.now)
    if draft.kind == "conversation_request":
        slots = _meta(draft).get("slots") or []
        if slots and datetime.fromisoformat(slots[0]) < not_before + MIN_LEAD:
            return CommandResult(False, "the meeting slots this draft proposes are too close "
                                        "or past by now. Reply REJECT, then run `saygoodbye "
                                        f"offboard {off.client}` for fresh slots")
    if ctx.settings.smtp is None:
        return CommandResult(False, "no [smtp] table: nothing can be sent")
    draft.approved_at = ctx.now
    draft.override_pending = anyway
    draft.state = "approved"
    if draft.kind == "farewell":
        _move(off, "approved", ctx.now)
    row = _client_message(ctx.session, ctx.settings, off, draft, ctx.now, not_before)
    if draft.kind == "farewell":
        _move(off, "scheduled", ctx.now)
    elif draft.kind == "conversation_request":
        _move(off, "conversation_requested", ctx.now)
    off.held_reason = None
    _scheduled_notice(ctx.session, ctx.settings, off, draft, row, ctx.now)
    return CommandResult(True, f"the {_label(draft.kind)} to {off.client} is scheduled for "
                               f"{_when(ctx.settings, off, row.not_before)}. You can still "
                               "CANCEL it until it leaves (see the separate email)")


def _cmd_reject(ctx: CommandContext) -> CommandResult:
    found = _draft_for(ctx)
    if isinstance(found, CommandResult):
        return found
    draft, off = found
    if draft.state != "awaiting_approval":
        return CommandResult(False, f"this {_label(draft.kind)} is {draft.state}; "
                                    "nothing to reject")
    draft.state = "rejected"
    if draft.kind == "farewell":
        _move(off, "drafted", ctx.now)
    return CommandResult(True, f"the {_label(draft.kind)} for {off.client} is discarded; the "
                               f"offboarding stays open. `saygoodbye offboard {off.client}` "
                               "drafts a new one")


def _cancel_offboarding(ctx: CommandContext, off: Offboarding) -> CommandResult:
    gone = []
    for draft in _drafts(ctx.session, off, DRAFT_LIVE):
        if not _cancel_scheduled(ctx.session, draft, f"cancelled by {ctx.owner}"):
            gone.append(draft)
            continue
        draft.state = "cancelled"
    if gone:
        names = ", ".join(_label(d.kind) for d in gone)
        return CommandResult(False, f"the {names} to {off.client} is being sent right now and "
                                    "can no longer be stopped")
    if off.farewell_sent_at is not None:
        _move(off, "closed", ctx.now)
        return CommandResult(True, f"no feedback request will go to {off.client}; the "
                                   "offboarding is closed")
    _move(off, "cancelled", ctx.now)
    off.held_reason = None
    return CommandResult(True, f"the offboarding of {off.client} is cancelled; nothing more "
                               "will be sent")


def _cmd_cancel(ctx: CommandContext) -> CommandResult:
    found = _draft_for(ctx)
    if isinstance(found, CommandResult):
        return found
    draft, off = found
    if ctx.purpose == PURPOSE_SCHEDULED and draft.state == "sent" and draft.kind != \
            "conversation_request":
        return CommandResult(False, f"the {_label(draft.kind)} has already left")
    return _cancel_offboarding(ctx, off)


def _cmd_edit(ctx: CommandContext) -> CommandResult:
    found = _draft_for(ctx)
    if isinstance(found, CommandResult):
        return found
    draft, off = found
    if draft.state not in ("awaiting_approval", "held"):
        return CommandResult(False, f"this {_label(draft.kind)} is {draft.state} and can no "
                                    "longer be edited")
    person = ctx.settings.owner(off.owner)
    subject, text = edited_text(ctx.args, ctx.body,
                                signature=person.signature or person.name or "")
    if not text.strip():
        return CommandResult(False, "EDIT needs the full new text on the lines after it")
    client = _client(ctx.settings, off.client)
    items = _open(ctx.session, client.name, ctx.now) if draft.kind == "farewell" else []
    results = _check(ctx.settings, client, off.owner, draft.kind, text,
                     _meta(draft).get("contact_first_name"), [i.text for i in items])
    failing = _failed(results)
    if failing:
        return CommandResult(False, f"the edited text fails its checks, so it was not kept: "
                                    f"{_refusal_list(failing)}. Reply EDIT again with a "
                                    "corrected text")
    if draft.state == "held":
        _cancel_scheduled(ctx.session, draft, "replaced by an edit")
    draft.state = "superseded"
    new = Draft(offboarding_id=off.id, kind=draft.kind, version=draft.version + 1,
                subject=subject or draft.subject, text=text, html=text_to_html(text),
                guardrails=results, state="draft", created_at=ctx.now,
                meta={k: v for k, v in _meta(draft).items()
                      if k not in ("outbox_id", "hold")} | {
                    "pending_ids": [i.id for i in items], "edited_by": ctx.owner})
    ctx.session.add(new)
    ctx.session.flush()
    off.held_reason = None
    if draft.kind == "farewell" and off.state == "scheduled":
        _move(off, "awaiting_approval", ctx.now)
    _request_approval(ctx.session, ctx.settings, off, new, ctx.now)
    return CommandResult(True, f"version {new.version} of the {_label(new.kind)} for "
                               f"{off.client} passes its checks and is on its way to you for "
                               "approval")


def _cmd_met(ctx: CommandContext) -> CommandResult:
    found = _draft_for(ctx)
    if isinstance(found, CommandResult):
        return found
    draft, off = found
    if draft.kind != "conversation_request" or off.state not in ("proposed",
                                                                  "conversation_requested"):
        return CommandResult(False, f"MET answers a conversation request; the offboarding of "
                                    f"{off.client} is {off.state.replace('_', ' ')}")
    agreed = "\n".join(p for p in (ctx.args.strip(), ctx.body.strip()) if p)
    _record_met(ctx.session, ctx.settings, off, agreed or None, ctx.now)
    return CommandResult(True, f"meeting with {off.client} recorded; the farewell draft is on "
                               "its way to you for approval")


def _cmd_confirm(ctx: CommandContext) -> CommandResult:
    found = _draft_for(ctx)
    if isinstance(found, CommandResult):
        return found
    draft, off = found
    if draft.state != "held":
        return CommandResult(False, f"this {_label(draft.kind)} is {draft.state}, not held")
    anyway = ctx.args.strip().upper().startswith("ANYWAY") or draft.override_pending
    refusal = _pending_gate(ctx, off, draft, anyway)
    if refusal is not None:
        return refusal
    not_before = _proposed_send(ctx.settings, off, draft, ctx.now)
    row = _client_message(ctx.session, ctx.settings, off, draft, ctx.now, not_before)
    off.held_reason = None
    off.updated_at = ctx.now
    _scheduled_notice(ctx.session, ctx.settings, off, draft, row, ctx.now)
    return CommandResult(True, f"the {_label(draft.kind)} to {off.client} is scheduled again "
                               f"for {_when(ctx.settings, off, row.not_before)}")


_SKIP_WORDS = re.compile(r"\b(skip|no conversation|no meeting|direct(ly)?|farewell)\b", re.I)


def _cmd_offboard(ctx: CommandContext) -> CommandResult:
    client = ctx.settings.client(ctx.subject_id)
    if client is None:
        return CommandResult(False, f"no client named {ctx.subject_id!r} is configured")
    existing = _active(ctx.session, client.name)
    if existing is not None:
        return CommandResult(False, f"{client.name} is already being offboarded (state: "
                                    f"{existing.state.replace('_', ' ')})")
    skip = bool(_SKIP_WORDS.search(ctx.args))
    try:
        off = _begin(ctx.session, ctx.settings, client, owner=ctx.owner,
                     skip_conversation=skip, met=False, agreed=None, fresh_thread=False,
                     now=ctx.now)
    except OffboardingError as exc:
        return CommandResult(False, str(exc))
    first = "farewell" if skip else "conversation request"
    return CommandResult(True, f"offboarding of {client.name} started (#{off.id}); the "
                               f"{first} draft is on its way to you for approval")


def _current_version(session: Session, subject_id: str) -> int | None:
    try:
        draft = session.get(Draft, int(subject_id))
    except ValueError:
        return None
    if draft is None:
        return None
    return session.scalar(select(func.max(Draft.version)).where(
        Draft.offboarding_id == draft.offboarding_id, Draft.kind == draft.kind))


register_command("OFFBOARD", _cmd_offboard, purposes=[PURPOSE_ALERT])
register_command("APPROVE", _cmd_approve, purposes=[PURPOSE_DRAFT])
register_command("REJECT", _cmd_reject, purposes=[PURPOSE_DRAFT])
register_command("EDIT", _cmd_edit, purposes=[PURPOSE_DRAFT, PURPOSE_HOLD])
register_command("CANCEL", _cmd_cancel, purposes=[PURPOSE_DRAFT, PURPOSE_SCHEDULED,
                                                  PURPOSE_HOLD])
register_command("MET", _cmd_met, purposes=[PURPOSE_DRAFT, PURPOSE_SCHEDULED])
register_command("CONFIRM", _cmd_confirm, purposes=[PURPOSE_HOLD])
for _purpose in (PURPOSE_DRAFT, PURPOSE_SCHEDULED, PURPOSE_HOLD):
    register_version_check(_purpose, _current_version)


# -- progress: emails that left, new client mail ------------------------------------------


def _left_at(row: OutboxMessage, now: datetime) -> datetime:
    """When an email left: its send time, never before it was due (clock skew, tests)."""
    return max(row.sent_at or now, row.not_before)


def _after_sent(session: Session, settings: Settings, off: Offboarding, draft: Draft,
                row: OutboxMessage, now: datetime) -> None:
    draft.state = "sent"
    if draft.kind == "farewell":
        off.farewell_sent_at = _left_at(row, now)
        _move(off, "sent", now)
        send_after = off.farewell_sent_at + timedelta(days=settings.schedule.feedback_after_days)
        _create_draft(session, settings, off, "feedback_request", now, send_after=send_after)
    elif draft.kind == "feedback_request":
        _move(off, "feedback_requested", now)


def _after_withdrawn(off: Offboarding, draft: Draft, row: OutboxMessage, now: datetime) -> None:
    """The queued email was cancelled outside the workflow (`outbox cancel`) or failed."""
    draft.state = "cancelled" if row.state == "cancelled" else "failed"
    if draft.kind == "farewell" and off.state == "scheduled":
        _move(off, "drafted", now)
    elif draft.kind == "conversation_request" and off.state == "conversation_requested":
        _move(off, "proposed", now)


def advance(settings: Settings, store: Store, *, now: datetime | None = None) -> dict[str, int]:
    """Follow queued offboarding emails: sent ones move the state on (and a sent farewell
    brings the feedback request draft); withdrawn or failed ones step back."""
    now = now or datetime.now(UTC)
    moved = {"sent": 0, "withdrawn": 0}
    with store.session() as session:
        pairs = session.execute(
            select(Draft, OutboxMessage)
            .join(OutboxMessage, OutboxMessage.draft_id == Draft.id)
            .where(Draft.state == "scheduled", OutboxMessage.kind.in_(KINDS))
        ).all()
        for draft, row in pairs:
            if _meta(draft).get("outbox_id") != row.id:
                continue
            off = session.get(Offboarding, draft.offboarding_id, with_for_update=True)
            if off is None or off.state in DONE:
                continue
            if row.state == "sent":
                _after_sent(session, settings, off, draft, row, now)
                moved["sent"] += 1
            elif row.state in ("cancelled", "failed"):
                _after_withdrawn(off, draft, row, now)
                moved["withdrawn"] += 1
    return moved


def _quote(text: str | None, limit: int = 1500) -> str:
    body = (text or "").strip()
    if len(body) > limit:
        body = body[: limit - 1].rstrip() + "…"
    return "\n".join("> " + line for line in body.splitlines()) or "> (no text)"


def _describe_message(m: Message, tz: ZoneInfo) -> str:
    when = m.date.astimezone(tz).strftime("%a %d %b %Y %H:%M") if m.date else "(no date)"
    who = f"{m.from_name} <{m.from_addr}>" if m.from_name else (m.from_addr or "someone")
    return f"{who} wrote on {when}, \"{m.subject}\":\n\n{_quote(m.new_text or m.body_text)}"


def _hold(session: Session, settings: Settings, off: Offboarding, draft: Draft,
          message: Message, now: datetime) -> bool:
    if not _cancel_scheduled(session, draft, f"held: {off.client} wrote again "
                                             f"({message.message_id})"):
        return False  # already on its way: nothing to hold
    draft.state = "held"
    _set_meta(draft, hold={"message_id": message.message_id, "at": now.isoformat()})
    off.held_reason = (f"{off.client} wrote again on "
                       f"{(message.date or now):%Y-%m-%d} (\"{message.subject}\") before the "
                       f"{_label(draft.kind)} left")
    off.updated_at = now
    if settings.smtp is None:
        return True
    tz = settings.client_timezone(settings.client(off.client))
    token = issue_token(session, settings, owner=off.owner, purpose=PURPOSE_HOLD,
                        subject_id=str(draft.id), version=draft.version, now=now)
    text = (
        f"The {_label(draft.kind)} to {off.client} (\"{draft.subject}\") was about to go out, "
        f"but {off.client} wrote again, so it is held and will not leave without you.\n\n"
        f"{_describe_message(message, tz)}\n\n"
        "Reply to this email with the command on the first line:\n"
        "  CONFIRM   send it anyway at the next send window"
        + (" (open work must be done, or CONFIRM ANYWAY)" if draft.kind == "farewell" else "")
        + "\n  EDIT      followed by the full new text; it is checked and comes back to you\n"
        "  CANCEL    stop the offboarding\n"
    )
    headers = reply_headers(settings, token, parent_message_id=None)
    queue_notice(session, settings, owner=off.owner, kind="hold",
                 subject=f"Held: {draft.subject} ({off.client} wrote again)", text=text,
                 extra={"reply_to": headers["reply_to"], "in_reply_to": None,
                        "references": headers["references"]}, now=now)
    log.info("event=offboarding_held client=%s draft=%d message=%s", off.client, draft.id,
             message.message_id)
    return True


def _tell_owner(session: Session, settings: Settings, off: Offboarding, subject: str,
                text: str, now: datetime) -> None:
    if settings.smtp is not None:
        queue_notice(session, settings, owner=off.owner, kind="notice", subject=subject,
                     text=text, now=now)


def _thread_ids(row: OutboxMessage | None) -> set[str]:
    return {row.message_id} if row is not None else set()


def _capture_feedback(session: Session, settings: Settings, off: Offboarding,
                      message: Message, now: datetime) -> bool:
    """Keep a client's reply after the feedback request (or to the farewell) as Feedback."""
    sent = {d.kind: d for d in _drafts(session, off, ("sent",))}
    rows = {kind: session.get(OutboxMessage, _meta(d).get("outbox_id"))
            for kind, d in sent.items() if _meta(d).get("outbox_id")}
    when = message.date or now
    request = rows.get("feedback_request")
    farewell = rows.get("farewell")
    asked_at = _left_at(request, now) if request is not None and request.state == "sent" \
        else None
    after_request = (asked_at is not None and asked_at - _NEWS_SLACK <= when
                     and when <= asked_at + FEEDBACK_WINDOW)
    parents = {message.in_reply_to, *(message.references or [])}
    to_farewell = bool(_thread_ids(farewell) & parents)
    if not (after_request or to_farewell):
        return False
    exists = session.scalar(select(Feedback.id).where(Feedback.message_id == message.message_id))
    if exists is None:
        text = (message.new_text or message.body_text or "").strip()
        session.add(Feedback(client=off.client, message_id=message.message_id,
                             received_at=when, text=text or "(no text)"))
    if after_request and off.state == "feedback_requested":
        _move(off, "closed", now)
    tz = settings.client_timezone(settings.client(off.client))
    _tell_owner(session, settings, off, f"Feedback from {off.client}",
                f"{off.client} answered:\n\n{_describe_message(message, tz)}\n\n"
                "It is kept with the client (saygoodbye client "
                f"{off.client}).\n", now)
    return True


def on_new_messages(settings: Settings, store: Store,
                    stored_message_ids: Sequence[str] | Sequence[int],
                    *, now: datetime | None = None) -> dict[str, int]:
    """The ingest hook: hold queued offboarding emails on new client mail, keep feedback.

    Call after each stored batch (the new messages' Message-IDs, or their row ids).
    Auto-replies and
    old mail that only now reached the store (a backfill) change nothing.
    """
    now = now or datetime.now(UTC)
    done = {"held": 0, "feedback": 0, "noted": 0}
    if not stored_message_ids:
        return done
    advance(settings, store, now=now)
    with store.session() as session:
        ids = list(stored_message_ids)
        # The ingest reports Message-IDs; row ids are accepted as well.
        key = Message.id if all(isinstance(i, int) for i in ids) else Message.message_id
        messages = session.scalars(
            select(Message).where(key.in_([str(i) if key is Message.message_id else i
                                           for i in ids]),
                                  Message.role == "client",
                                  Message.auto_generated.is_(False),
                                  Message.client.is_not(None))
            .order_by(Message.date, Message.id)
        ).all()
        by_client: dict[str, list[Message]] = defaultdict(list)
        for m in messages:
            by_client[m.client or ""].append(m)
        for client, batch in by_client.items():
            off = session.scalars(
                select(Offboarding).where(Offboarding.client == client)
                .order_by(Offboarding.id.desc()).limit(1)).first()
            if off is None or off.state == "cancelled":
                continue
            for message in batch:
                if off.state in ("sent", "feedback_requested", "closed") and \
                        _capture_feedback(session, settings, off, message, now):
                    done["feedback"] += 1
                if off.state in DONE:
                    continue
                for draft in _drafts(session, off, ("scheduled", "awaiting_approval")):
                    if message.date is not None and message.date < draft.created_at - _NEWS_SLACK:
                        continue
                    if draft.state == "scheduled" and _hold(session, settings, off, draft,
                                                            message, now):
                        done["held"] += 1
                    elif draft.state == "awaiting_approval" and \
                            _meta(draft).get("noted") != message.message_id:
                        _set_meta(draft, noted=message.message_id)
                        tz = settings.client_timezone(settings.client(off.client))
                        _tell_owner(session, settings, off,
                                    f"{off.client} wrote while the {_label(draft.kind)} awaits "
                                    "your approval",
                                    f"Before you answer the approval request for "
                                    f"\"{draft.subject}\" (version {draft.version}):\n\n"
                                    f"{_describe_message(message, tz)}\n", now)
                        done["noted"] += 1
    return done


# -- listings -----------------------------------------------------------------------


def _latest_drafts(session: Session, off: Offboarding) -> list[Draft]:
    latest: dict[str, Draft] = {}
    for draft in _drafts(session, off):
        if draft.kind not in latest or draft.version >= latest[draft.kind].version:
            latest[draft.kind] = draft
    return sorted(latest.values(), key=lambda d: d.id)


def _draft_json(draft: Draft, off: Offboarding, pending: Sequence[dict[str, Any]]
                ) -> dict[str, Any]:
    return {
        "id": draft.id,
        "client": off.client,
        "offboarding_id": off.id,
        "kind": draft.kind,
        "version": draft.version,
        "state": off.state,
        "draft_state": draft.state,
        "subject": draft.subject,
        "guardrails": [{"rule": g.get("rule"), "passed": bool(g.get("passed")),
                        "detail": g.get("detail")} for g in draft.guardrails or []],
        "passed": not _failed(draft.guardrails or []),
        "pending": list(pending),
        "scheduled_for": draft.scheduled_for.isoformat() if draft.scheduled_for else None,
        "held_reason": off.held_reason,
        "created_at": draft.created_at.isoformat() if draft.created_at else None,
    }


def drafts_listing(settings: Settings, store: Store, *, now: datetime | None = None
                   ) -> list[dict[str, Any]]:
    """`saygoodbye drafts --json`: the latest version of each draft, open work included."""
    now = now or datetime.now(UTC)
    out: list[dict[str, Any]] = []
    with store.session() as session:
        pending_by_client: dict[str, list[dict[str, Any]]] = {}
        for off in session.scalars(select(Offboarding).order_by(Offboarding.id)):
            if off.client not in pending_by_client:
                items = (_open(session, off.client, now) if off.state not in DONE else [])
                pending_by_client[off.client] = [
                    {"id": i.id, "text": i.text, "source": i.source} for i in items]
            pending = pending_by_client[off.client] if off.state not in DONE else []
            out.extend(_draft_json(d, off, pending) for d in _latest_drafts(session, off))
    return out


def client_status(session: Session, client: str) -> dict[str, Any] | None:
    """The `offboarding` part of `saygoodbye client NAME` (latest offboarding, feedback)."""
    off = session.scalars(select(Offboarding).where(Offboarding.client == client)
                          .order_by(Offboarding.id.desc()).limit(1)).first()
    feedback = [{"received_at": f.received_at.isoformat(), "text": f.text,
                 "message_id": f.message_id}
                for f in session.scalars(select(Feedback).where(Feedback.client == client)
                                         .order_by(Feedback.received_at))]
    if off is None and not feedback:
        return None

    return {
        "id": off.id if off else None,
        "state": off.state if off else None,
        "owner": off.owner if off else None,
        "started_at": iso(off.started_at) if off else None,
        "updated_at": iso(off.updated_at) if off else None,
        "met_at": iso(off.met_at) if off else None,
        "agreed": off.agreed if off else None,
        "farewell_sent_at": iso(off.farewell_sent_at) if off else None,
        "held_reason": off.held_reason if off else None,
        "drafts": [{"id": d.id, "kind": d.kind, "version": d.version, "state": d.state,
                    "scheduled_for": iso(d.scheduled_for)}
                   for d in (_latest_drafts(session, off) if off else [])],
        "feedback": feedback,
    }


# -- scheduler -------------------------------------------------------------------------

JOB_ID = "offboarding:advance"
JOB_EVERY = timedelta(minutes=2)


def offboarding_job() -> None:
    """Scheduler job: follow queued offboarding emails (see :func:`advance`)."""
    from . import scheduler

    settings, store = scheduler.runtime()
    moved = advance(settings, store)
    if moved["sent"]:
        scheduler.run_outbox()  # a feedback approval request was just queued


def schedule_offboarding(sched: Any, settings: Settings) -> list[str]:
    """Register the periodic :func:`offboarding_job` with the service's scheduler."""
    sched.every(JOB_ID, "service.workflows.offboarding:offboarding_job", JOB_EVERY)
    return [JOB_ID]

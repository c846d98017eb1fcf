"""Open work with a client: what must be finished or handed over before a farewell.

Two sources, one list (``pending_items``):

* items the owner records (``saygoodbye pending add CLIENT "text"``), open until
  ``pending done ID``;
* threads of the mailbox where the client's last message still awaits our answer,
  derived from stored mail (:func:`awaiting_answer`, pure) and kept as rows with
  ``source = "mailbox"`` so they have ids too. Such a row closes by itself when a
  colleague answers in the thread, and opens again when the client writes again after
  it was closed.

A client message awaits an answer when it asks for something (a question, a request, a
deadline); a bare "thanks, looks great" does not. Very old threads are not open work.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import Settings
from ..errors import UsageError
from ..store.db import Store
from ..store.models import Message, PendingItem

__all__ = [
    "MAX_AGE",
    "OpenThread",
    "ThreadMessage",
    "add_item",
    "asks_for_something",
    "awaiting_answer",
    "clean_subject",
    "done_item",
    "item_json",
    "list_items",
    "open_items",
    "refresh_mailbox_items",
]

#: A client question older than this is history, not open work.
MAX_AGE = timedelta(days=90)

_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|tr|rif|r|antw|odp|enc|res|ynt)\s*(?:\[\d+\])?\s*[:：]\s*"
    r"|\[[^\]]{1,40}\]\s*)+",
    re.IGNORECASE,
)
# What makes a message ask for an answer: a question or a request, a deadline, a wait.
_ASKS = re.compile(
    r"\?|\b(?:please|pls|could you|can you|would you|will you|could we|can we|let me know|"
    r"let us know|need(?:s|ed)?|waiting|still (?:no|not|haven't|have not)|asap|urgent(?:ly)?|"
    r"when (?:will|can|do|are)|by (?:monday|tuesday|wednesday|thursday|friday|tomorrow|"
    r"end of|eod|eow|the end)|deadline|send (?:me|us|over)|get back to|follow(?:ing)? up|"
    r"reminder|any update|an update|confirm|request(?:ing)?|bitte|pourriez|podr[ií]as?)\b",
    re.IGNORECASE,
)


def clean_subject(subject: str | None) -> str:
    """'Re: Fwd: [Acme] Website relaunch' -> 'Website relaunch'."""
    text = " ".join((subject or "").split())
    return _SUBJECT_PREFIX.sub("", text).strip()


def asks_for_something(text: str | None) -> bool:
    """Whether a client message asks for an answer or an action (not a bare thank-you)."""
    return bool(text and _ASKS.search(text))


@dataclass(frozen=True)
class ThreadMessage:
    """One stored message, as far as open-thread detection cares."""

    id: int
    thread_key: str
    role: str  # client | staff | unassigned
    date: datetime | None
    subject: str
    text: str | None
    auto_generated: bool = False


@dataclass(frozen=True)
class OpenThread:
    thread_key: str
    message_id: int  # the stored client message that awaits our answer
    subject: str
    date: datetime | None

    @property
    def text(self) -> str:
        """The item as the owner and the farewell name it."""
        subject = clean_subject(self.subject) or "(no subject)"
        when = f" of {self.date.day} {self.date:%B %Y}" if self.date else ""
        return f"Answer to the message \u201c{subject}\u201d{when}"


def awaiting_answer(
    messages: Iterable[ThreadMessage],
    *,
    now: datetime,
    max_age: timedelta = MAX_AGE,
    exclude_threads: Collection[str] = (),
) -> list[OpenThread]:
    """Threads whose last human message is the client's and asks for something (pure).

    Auto-replies do not count either way (an out-of-office neither asks nor answers).
    """
    last: dict[str, ThreadMessage] = {}
    for m in messages:
        if m.auto_generated or m.role not in ("client", "staff"):
            continue
        if m.thread_key in exclude_threads:
            continue
        seen = last.get(m.thread_key)
        key = (m.date or datetime.min.replace(tzinfo=UTC), m.id)
        if seen is None or key >= (seen.date or datetime.min.replace(tzinfo=UTC), seen.id):
            last[m.thread_key] = m
    found = []
    for thread, m in last.items():
        if m.role != "client" or not asks_for_something(m.text or m.subject):
            continue
        if m.date is not None and m.date < now - max_age:
            continue
        found.append(OpenThread(thread, m.id, m.subject, m.date))
    found.sort(key=lambda t: (t.date or datetime.min.replace(tzinfo=UTC), t.message_id))
    return found


# -- the store ------------------------------------------------------------------


def _thread_messages(session: Session, client: str, since: datetime) -> list[ThreadMessage]:
    rows = session.execute(
        select(Message.id, Message.thread_key, Message.role, Message.date, Message.subject,
               Message.new_text, Message.auto_generated)
        .where(Message.client == client, Message.date >= since)
    ).all()
    return [ThreadMessage(*row) for row in rows]


def refresh_mailbox_items(
    session: Session, client: str, *, now: datetime | None = None,
    exclude_threads: Collection[str] = (),
) -> None:
    """Bring the mailbox-derived rows of one client in line with its stored mail."""
    now = now or datetime.now(UTC)
    # Threads may have started long ago; their last messages are what matters.
    messages = _thread_messages(session, client, now - MAX_AGE - timedelta(days=365))
    open_now = {t.thread_key: t for t in awaiting_answer(messages, now=now,
                                                         exclude_threads=exclude_threads)}
    rows = session.scalars(
        select(PendingItem).where(PendingItem.client == client, PendingItem.source == "mailbox")
    ).all()
    by_thread = {r.thread_key: r for r in rows}
    for key, thread in open_now.items():
        row = by_thread.get(key)
        if row is None:
            session.add(PendingItem(client=client, text=thread.text[:2000], source="mailbox",
                                    thread_key=key, created_at=now))
        elif row.done_at is not None and thread.date is not None and thread.date > row.done_at:
            row.done_at = None  # the client wrote again after it was closed
            row.text = thread.text[:2000]
    for key, row in by_thread.items():
        if key not in open_now and row.done_at is None:
            row.done_at = now  # answered in the thread (or no longer asks anything)
    session.flush()


def open_items(
    session: Session, client: str, *, now: datetime | None = None, refresh: bool = True,
    exclude_threads: Collection[str] = (),
) -> list[PendingItem]:
    """Everything open with `client`, owner items first, oldest first."""
    if refresh:
        refresh_mailbox_items(session, client, now=now, exclude_threads=exclude_threads)
    rows = session.scalars(
        select(PendingItem)
        .where(PendingItem.client == client, PendingItem.done_at.is_(None))
        .order_by(PendingItem.id)
    ).all()
    return sorted(rows, key=lambda r: (r.source != "owner", r.id))


def item_json(row: PendingItem) -> dict[str, Any]:
    """One row of `pending list --json`."""
    return {
        "id": row.id,
        "client": row.client,
        "text": row.text,
        "source": row.source,
        "thread_key": row.thread_key,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "done_at": row.done_at.isoformat() if row.done_at else None,
        "open": row.done_at is None,
    }


def _client_name(settings: Settings, name: str) -> str:
    client = settings.client(name)
    if client is None:
        known = ", ".join(c.name for c in settings.clients) or "none configured"
        raise UsageError(f"no client named {name!r} (known: {known})")
    return client.name


def add_item(settings: Settings, store: Store, client: str, text: str,
             *, now: datetime | None = None) -> dict[str, Any]:
    """Record open work the mailbox cannot see (`pending add`)."""
    name = _client_name(settings, client)
    text = " ".join(text.split())
    if not text:
        raise UsageError("pending add needs a description of the open work")
    with store.session() as session:
        row = PendingItem(client=name, text=text[:2000], source="owner",
                          created_at=now or datetime.now(UTC))
        session.add(row)
        session.flush()
        return item_json(row)


def done_item(store: Store, item_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    """Mark one item done (`pending done ID`); doing it twice is harmless."""
    with store.session() as session:
        row = session.get(PendingItem, item_id)
        if row is None:
            raise UsageError(f"no pending item with id {item_id} (see `saygoodbye pending list`)")
        if row.done_at is None:
            row.done_at = now or datetime.now(UTC)
        return item_json(row)


def list_items(settings: Settings, store: Store, client: str | None = None, *,
               now: datetime | None = None) -> list[dict[str, Any]]:
    """Open items of one client or of every configured client (mailbox rows refreshed)."""
    names: Sequence[str] = ([_client_name(settings, client)] if client
                            else [c.name for c in settings.clients])
    from .offboarding import offboarding_threads

    out: list[dict[str, Any]] = []
    with store.session() as session:
        for name in names:
            rows = open_items(session, name, now=now,
                              exclude_threads=offboarding_threads(session, name))
            out.extend(item_json(r) for r in rows)
    return out

"""Privacy: body retention and `forget CLIENT`.

The service stores other people's correspondence. Bodies are only needed
while a message is analysed and for a while after (re-reading evidence);
after ``[service] keep_bodies_days`` they are deleted and only the derived
facts stay: tone, friction, signals with their short evidence quotes, scores.
``forget`` removes everything tied to one client, for a client who asks to
be erased or a relationship the agency wants no record of.

On SQLite, deletions run with ``secure_delete`` and the WAL is checkpointed
afterwards, so erased text does not linger in free pages or the journal.
PostgreSQL keeps dead rows until VACUUM (autovacuum reclaims them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, and_, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from .store.db import Store
from .store.models import (
    ClientState,
    CommandToken,
    Draft,
    Event,
    Feedback,
    HealthPoint,
    Message,
    Offboarding,
    OutboxMessage,
    PendingItem,
)

log = logging.getLogger(__name__)

# Rows per UPDATE: short transactions keep the daemon's other writers unblocked.
PURGE_CHUNK = 2000


@dataclass(frozen=True)
class PurgeReport:
    """What a retention pass did."""

    cutoff: datetime
    messages: int


@dataclass(frozen=True)
class ForgetReport:
    """What `forget` removed, table by table (the order it was removed in)."""

    client: str
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def _secure(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete=ON"))


def _checkpoint(store: Store) -> None:
    """Push the WAL into the database file and truncate it, so old pages are gone."""
    if store.engine.dialect.name != "sqlite":
        return
    with store.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _message_age():  # type: ignore[no-untyped-def]
    # Undated messages age from when we stored them.
    return func.coalesce(Message.date, Message.ingested_at)


def purge_bodies(
    store: Store, keep_days: int, *, now: datetime | None = None, chunk: int = PURGE_CHUNK
) -> PurgeReport:
    """Null body_text/new_text of messages older than `keep_days`; idempotent.

    Signals, scores, tone and friction figures and the evidence quotes inside
    `signals` stay, so health and `client NAME` keep working on old mail.
    """
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=keep_days)
    total = 0
    while True:
        with store.session() as session:
            _secure(session)
            ids = list(
                session.scalars(
                    select(Message.id)
                    .where(Message.bodies_purged_at.is_(None), _message_age() < cutoff)
                    .order_by(Message.id)
                    .limit(chunk)
                )
            )
            if not ids:
                break
            session.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(body_text=None, new_text=None, bodies_purged_at=now)
            )
            total += len(ids)
        if len(ids) < chunk:
            break
    if total:
        _checkpoint(store)
        log.info("event=bodies_purged messages=%d keep_days=%d", total, keep_days)
    return PurgeReport(cutoff=cutoff, messages=total)


def _ids(session: Session, query: Select[tuple[int]]) -> list[int]:
    return list(session.scalars(query))


def _delete_ids(session: Session, model: type, ids: Sequence[int]) -> int:
    count = 0
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        result = session.execute(delete(model).where(model.id.in_(part)))  # type: ignore[attr-defined]
        count += result.rowcount or 0
    return count


_CLIENT_TABLES = (Message, ClientState, HealthPoint, Offboarding, OutboxMessage, PendingItem,
                  Feedback)


def _stored_names(session: Session, key: str) -> list[str]:
    """Every spelling of the client's name stored anywhere (names are matched by casefold)."""
    found: set[str] = set()
    for model in _CLIENT_TABLES:
        column = model.client  # type: ignore[attr-defined]
        for value in session.scalars(select(column).where(column.is_not(None)).distinct()):
            if value.casefold() == key:
                found.add(value)
    return sorted(found)


def _address_match(addresses: Iterable[str], domains: Iterable[str]) -> list:  # type: ignore[type-arg]
    """Messages from the client's addresses or domains that were never assigned to it."""
    conditions = []
    for address in addresses:
        conditions.append(func.lower(Message.from_addr) == address.lower())
        conditions.append(func.lower(Message.unassigned_key) == address.lower())
    for domain in domains:
        domain = domain.lower().lstrip("@")
        conditions.append(func.lower(Message.from_addr).like(f"%@{domain}"))
        conditions.append(func.lower(Message.from_addr).like(f"%.{domain}"))
        conditions.append(func.lower(Message.unassigned_key) == domain)
    return conditions


def forget(
    store: Store,
    client: str,
    *,
    addresses: Iterable[str] = (),
    domains: Iterable[str] = (),
) -> ForgetReport:
    """Erase everything stored about `client` in one transaction and say what went.

    `client` matches stored client names case-insensitively. `addresses` and
    `domains` (the client's [[clients]] entry) also catch mail stored before
    the client was configured. Removes messages (with their quotes and
    signals), health state and history, outbox rows, offboardings with their
    drafts, pending items, feedback, the command tokens that pointed at any
    of those, and status events that name the client. Nothing is sent.
    """
    name = client.strip()
    if not name:
        raise ValueError("a client name is needed")
    key = name.casefold()
    removed: dict[str, int] = {}
    with store.session() as session:
        _secure(session)
        # Match names in Python: SQLite's lower() folds ASCII only.
        names = _stored_names(session, key) or [name]
        owned = Message.client.in_(names)
        extra = _address_match(addresses, domains)
        if extra:  # never another client's mail: only messages no client claimed
            owned = or_(owned, and_(Message.client.is_(None), or_(*extra)))
        removed["messages"] = _delete_ids(
            session, Message, _ids(session, select(Message.id).where(owned))
        )

        offboardings = _ids(session, select(Offboarding.id).where(Offboarding.client.in_(names)))
        drafts = _ids(session, select(Draft.id).where(Draft.offboarding_id.in_(offboardings)))
        outbox = _ids(session, select(OutboxMessage.id).where(
            or_(OutboxMessage.client.in_(names), OutboxMessage.draft_id.in_(drafts))
        ))
        removed["outbox"] = _delete_ids(session, OutboxMessage, outbox)
        removed["drafts"] = _delete_ids(session, Draft, drafts)
        removed["offboardings"] = _delete_ids(session, Offboarding, offboardings)

        refs = {
            "outbox": [str(i) for i in outbox],
            "draft": [str(i) for i in drafts],
            "offboarding": [str(i) for i in offboardings],
        }
        token_conditions = [CommandToken.subject_id.in_(names)]
        for purpose, subject_ids in refs.items():
            if subject_ids:
                token_conditions.append(
                    CommandToken.purpose.in_((purpose, purpose + "s"))
                    & CommandToken.subject_id.in_(subject_ids)
                )
        removed["command_tokens"] = _delete_ids(
            session, CommandToken,
            _ids(session, select(CommandToken.id).where(or_(*token_conditions))),
        )
        for label, model in (
            ("client_states", ClientState),
            ("health_history", HealthPoint),
            ("pending_items", PendingItem),
            ("feedback", Feedback),
        ):
            result = session.execute(delete(model).where(model.client.in_(names)))  # type: ignore[attr-defined]
            removed[label] = result.rowcount or 0
        events = [
            row.id for row in session.execute(select(Event.id, Event.message))
            if key in (row.message or "").casefold()
        ]
        removed["events"] = _delete_ids(session, Event, events)
    _checkpoint(store)
    report = ForgetReport(client=name, removed=removed)
    # Identify the client by name only: the log must not echo what was erased.
    log.info("event=client_forgotten client=%s rows=%d %s", name, report.total,
             " ".join(f"{k}={v}" for k, v in removed.items()))
    return report

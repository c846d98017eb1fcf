"""Recompute client health from stored analyses and remember the result.

I/O glue only: rows become MessageFacts, the pure analysis.health decides,
and the outcome lands in client_states and health_history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..analysis.health import (
    DEFAULT_ENTER,
    DEFAULT_LEAVE,
    ClientHealth,
    HealthSettings,
    assess_client,
)
from ..analysis.types import (
    ClientEconomics,
    MessageAnalysis,
    MessageFacts,
    Signal,
    Tone,
    signal_from_row,
)
from ..config import HealthConfig, Settings
from ..store.models import ClientState, HealthPoint, Message

_FACT_COLUMNS = (
    Message.message_id,
    Message.date,
    Message.role,
    Message.thread_key,
    Message.subject,
    Message.from_addr,
    Message.to_addrs,
    Message.auto_generated,
    Message.polarity,
    Message.subjectivity,
    Message.friction,
    Message.signals,
    Message.client,
)


def health_settings(config: HealthConfig) -> HealthSettings:
    """Map the [health] table onto the analysis defaults (partial tables merge)."""
    base = HealthSettings()
    return replace(
        base,
        window_days=tuple(config.window_days),
        half_life_days=config.half_life_days,
        min_messages=config.min_messages,
        weights={**base.weights, **config.weights},
        enter={**DEFAULT_ENTER, **config.enter},
        leave={**DEFAULT_LEAVE, **config.leave},
        alert_cooldown_days=float(config.alert_cooldown_days),
    )


def facts_from_row(row: Any) -> MessageFacts:
    analysis = None
    if row.friction is not None:
        analysis = MessageAnalysis(
            tone=Tone(row.polarity or 0.0, row.subjectivity or 0.0),
            friction=row.friction,
            signals=tuple(signal_from_row(item) for item in row.signals or ()),
        )
    return MessageFacts(
        message_id=row.message_id,
        date=row.date,
        role=row.role,
        thread_key=row.thread_key,
        subject=row.subject or "",
        sender=row.from_addr or "",
        recipients=tuple(row.to_addrs or ()),
        auto_generated=row.auto_generated,
        analysis=analysis,
    )


def load_facts(session: Session, clients: Iterable[str] | None = None) -> dict[str, list[Any]]:
    """Stored messages grouped by client, dated ones only, oldest first."""
    query = select(*_FACT_COLUMNS).where(Message.client.is_not(None), Message.date.is_not(None))
    if clients is not None:
        query = query.where(Message.client.in_(list(clients)))
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in session.execute(query.order_by(Message.date)):
        grouped[row.client].append(facts_from_row(row))
    return grouped


@dataclass(frozen=True)
class Assessment:
    client: str
    owner: str
    health: ClientHealth
    previous_state: str | None
    messages: int


def assess_all(
    session: Session,
    settings: Settings,
    *,
    now: datetime | None = None,
    clients: Iterable[str] | None = None,
) -> list[Assessment]:
    """Assess configured clients (all, or ``clients``); reads only: see save_assessments."""
    now = now or datetime.now(UTC)
    wanted = [c for c in settings.clients if clients is None or c.name in set(clients)]
    hs = health_settings(settings.health)
    results: list[Assessment] = []
    for client in wanted:
        # One client's history at a time: memory follows the largest client,
        # not the whole mailbox (a 100k-message backfill stays flat).
        client_facts = load_facts(session, [client.name]).get(client.name, [])
        stored = session.get(ClientState, client.name)
        previous = stored.state if stored else None
        health = assess_client(
            client_facts,
            now=now,
            settings=hs,
            economics=ClientEconomics(
                monthly_revenue=client.monthly_revenue,
                currency=client.currency,
                hours_per_month=client.hours_per_month,
            ),
            previous_state=previous,
        )
        results.append(Assessment(client.name, client.owner, health, previous, len(client_facts)))
    return results


def save_assessments(
    session: Session, assessments: Sequence[Assessment], now: datetime
) -> list[Assessment]:
    """Store what ``assess_all`` computed, in the caller's (short) transaction.

    Scoring reads every client's history and can take seconds on a big mailbox; done in a
    read-only transaction first, it never holds the database's write lock meanwhile (on
    SQLite that lock would stall the watcher's next commit). A state another writer stored
    in between is the one alerts compare against.
    """
    fresh = []
    for item in assessments:
        stored = session.get(ClientState, item.client)
        current = stored.state if stored else None
        if current != item.previous_state:
            item = replace(item, previous_state=current)
        _save(session, item.client, item.health, now, stored)
        fresh.append(item)
    return fresh


def _save(
    session: Session, client: str, health: ClientHealth, now: datetime, stored: ClientState | None
) -> None:
    if stored is None:
        stored = ClientState(client=client)
        session.add(stored)
    stored.score = round(health.score, 2)
    stored.state = health.state
    stored.trend = round(health.trend, 2)
    stored.computed_at = now
    stored.details = {
        "signals": [signal_json(s) for s in health.signals],
        "metrics": {k: round(float(v), 4) for k, v in health.metrics.items()},
        "economics": {
            "revenue": health.economics.revenue,
            "currency": health.economics.currency,
            "effort_units": round(health.economics.effort_units, 2),
            "revenue_per_effort": health.economics.revenue_per_effort,
            "revenue_change": health.economics.revenue_change,
            "flag": health.economics.flag,
            "reason": health.economics.reason,
        },
        "history": [[d.isoformat(), s] for d, s in health.history],
    }
    day = now.date()
    session.execute(delete(HealthPoint).where(HealthPoint.client == client, HealthPoint.day == day))
    session.add(HealthPoint(client=client, day=day, score=round(health.score, 2),
                            state=health.state))


def signal_json(signal: Signal) -> dict[str, Any]:
    return {
        "kind": signal.kind,
        "weight": signal.weight,
        "evidence": [
            {
                "message_id": e.message_id,
                "date": e.date.isoformat() if e.date else None,
                "subject": e.subject,
                "sender": e.sender,
                "quote": e.quote,
            }
            for e in signal.evidence
        ],
    }

"""Use cases behind the command line: each returns plain, JSON-ready data.

The CLI parses and prints; this module opens the store, calls the pipeline
and the workflows, and shapes results. Nothing here renders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from .analysis.message import analyse_message
from .config import Settings
from .directory import Directory
from .ingest import BatchStats, Ingestor
from .mail.parse import parse_message
from .mail.source import parse_source
from .store.db import Store
from .store.models import (
    ClientState,
    Event,
    MailboxCheckpoint,
    Message,
    OutboxMessage,
    SyncRun,
    iso,
)
from .workflows.health_update import assess_all, signal_json


def open_store(settings: Settings) -> Store:
    return Store(settings.database_url)


# -- ingest -----------------------------------------------------------------


def sync_offline(
    settings: Settings,
    store: Store,
    spec: str,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int | None], None] | None = None,
    workers: int | None = None,
) -> BatchStats:
    """One pass over an mbox or Maildir export, then a health refresh."""
    source = parse_source(spec)
    if on_total:
        on_total(source.count())
    with Ingestor(store, Directory.from_settings(settings), workers=workers) as ingestor:
        stats = ingestor.ingest_stream(source, source=source.kind, progress=progress)
    refresh_health(settings, store)
    return stats


def refresh_health(
    settings: Settings,
    store: Store,
    *,
    now: datetime | None = None,
    alerts: bool = True,
    clients: Sequence[str] | None = None,
) -> list[Any]:
    """Re-assess clients (all, or ``clients``) and decide alerts.

    Two transactions: a read-only one that scores (seconds on a 100k mailbox) and a short
    one that stores states and queues alerts, so the write lock is never held while
    scoring and a message arriving meanwhile is committed at once.
    """
    from .workflows.alerts import process_assessments
    from .workflows.health_update import save_assessments

    now = now or datetime.now(UTC)
    with store.session() as session:
        assessments = assess_all(session, settings, now=now, clients=clients)
    with store.session() as session:
        assessments = save_assessments(session, assessments, now)
        if alerts:
            process_assessments(session, settings, assessments, now=now)
    return assessments


#: Health changes with time alone (a client going quiet): every client is re-assessed at
#: least this often, by the daemon and by `saygoodbye sync`, mail or not.
HEALTH_MAX_AGE = timedelta(hours=1)


def stale_clients(settings: Settings, store: Store, *, now: datetime | None = None) -> list[str]:
    """Configured clients never assessed, or last assessed more than HEALTH_MAX_AGE ago."""
    now = now or datetime.now(UTC)
    with store.session() as session:
        seen = dict(session.execute(select(ClientState.client, ClientState.computed_at)).all())
    stale = []
    for client in settings.clients:
        computed = seen.get(client.name)
        if computed is not None and computed.tzinfo is None:
            computed = computed.replace(tzinfo=UTC)
        if computed is None or abs(now - computed) > HEALTH_MAX_AGE:
            stale.append(client.name)
    return stale


def clients_of(store: Store, message_ids: Sequence[str]) -> list[str]:
    """The clients these stored messages belong to (unassigned senders have none)."""
    with store.session() as session:
        found: set[str] = set()
        for start in range(0, len(message_ids), 500):
            chunk = message_ids[start:start + 500]
            found.update(session.scalars(
                select(Message.client).where(Message.message_id.in_(chunk),
                                             Message.client.is_not(None))))
    return sorted(found)


def latest_message_date(store: Store) -> datetime | None:
    with store.session() as session:
        return session.scalar(select(func.max(Message.date)))


# -- listings ---------------------------------------------------------------


def clients_report(settings: Settings, store: Store) -> list[dict[str, Any]]:
    """One row per configured client, worst first (the `clients --json` contract)."""
    with store.session() as session:
        states = {s.client: s for s in session.scalars(select(ClientState))}
        counts = dict(
            session.execute(
                select(Message.client, func.count()).where(Message.client.is_not(None))
                .group_by(Message.client)
            ).all()
        )
    rows = []
    for client in settings.clients:
        state = states.get(client.name)
        details = state.details if state else {}
        rows.append(
            {
                "name": client.name,
                "owner": client.owner,
                "score": state.score if state else None,
                "state": state.state if state else "healthy",
                "trend": state.trend if state else None,
                "signals": details.get("signals", []),
                "messages": counts.get(client.name, 0),
                "monthly_revenue": client.monthly_revenue,
                "currency": client.currency,
                "economics": details.get("economics"),
                "computed_at": iso(state.computed_at) if state else None,
            }
        )
    rows.sort(key=lambda r: (r["score"] if r["score"] is not None else 101.0, r["name"]))
    return rows


def unassigned_report(store: Store) -> list[dict[str, Any]]:
    """Senders we could not map to a client, grouped by domain (free mail: by address)."""
    with store.session() as session:
        rows = session.execute(
            select(
                Message.unassigned_key,
                func.count(),
                func.min(Message.date),
                func.max(Message.date),
            )
            .where(Message.role == "unassigned", Message.unassigned_key.is_not(None))
            .group_by(Message.unassigned_key)
            .order_by(func.count().desc())
        ).all()
    return [
        {"sender": key, "messages": n, "first": iso(first), "last": iso(last)}
        for key, n, first, last in rows
    ]


def client_report(settings: Settings, store: Store, name: str) -> dict[str, Any] | None:
    client = settings.client(name)
    if client is None:
        return None
    with store.session() as session:
        state = session.get(ClientState, client.name)
        recent = session.execute(
            select(Message.date, Message.role, Message.from_addr, Message.subject,
                   Message.friction, Message.auto_generated)
            .where(Message.client == client.name)
            .order_by(Message.date.desc())
            .limit(15)
        ).all()
        total = session.scalar(select(func.count()).where(Message.client == client.name)) or 0
        from .workflows.offboarding import client_status

        offboarding = client_status(session, client.name)
    details = state.details if state else {}
    return {
        "name": client.name,
        "owner": client.owner,
        "domains": list(client.domains),
        "score": state.score if state else None,
        "state": state.state if state else "healthy",
        "trend": state.trend if state else None,
        "signals": details.get("signals", []),
        "metrics": details.get("metrics", {}),
        "economics": details.get("economics"),
        "history": details.get("history", []),
        "messages": total,
        "offboarding": offboarding,
        "recent": [
            {
                "date": iso(r.date),
                "role": r.role,
                "from": r.from_addr,
                "subject": r.subject,
                "friction": r.friction,
                "auto_generated": r.auto_generated,
            }
            for r in recent
        ],
    }


def status_report(settings: Settings, store: Store) -> dict[str, Any]:
    with store.session() as session:
        messages = session.scalar(select(func.count()).select_from(Message)) or 0
        last_run = session.scalars(
            select(SyncRun).where(SyncRun.error.is_(None), SyncRun.finished_at.is_not(None))
            .order_by(SyncRun.finished_at.desc()).limit(1)
        ).first()
        outbox = dict(
            session.execute(
                select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
            ).all()
        )
        checkpoints = [
            {"folder": c.folder, "uidvalidity": c.uidvalidity, "last_uid": c.last_uid,
             "updated_at": iso(c.updated_at)}
            for c in session.scalars(select(MailboxCheckpoint))
        ]
        errors = [
            {"at": iso(e.at), "level": e.level, "component": e.component, "message": e.message}
            for e in session.scalars(select(Event).order_by(Event.at.desc()).limit(10))
        ]
        failed_runs = [
            {"at": iso(r.started_at), "level": "error", "component": "sync",
             "message": r.error}
            for r in session.scalars(
                select(SyncRun).where(SyncRun.error.is_not(None))
                .order_by(SyncRun.started_at.desc()).limit(5)
            )
        ]
    from .daemon import daemon_status

    daemon = daemon_status(settings)
    # the daemon's watcher syncs continuously without SyncRun rows: the latest of both
    synced = [t for t in (iso(last_run.finished_at) if last_run else None,
                          daemon and daemon["last_mailbox_sync"]) if t]
    last_sync = max(synced, key=datetime.fromisoformat) if synced else None
    return {
        "messages": messages,
        "clients": len(settings.clients),
        "last_sync": last_sync,
        "mailbox_lag_seconds": (
            round((datetime.now(UTC) - datetime.fromisoformat(last_sync)).total_seconds())
            if last_sync else None
        ),
        "daemon": daemon,
        "last_sync_source": last_run.source if last_run else None,
        "mailbox": checkpoints,
        "outbox": outbox,
        "next_jobs": _next_jobs(store),
        "errors": sorted(errors + failed_runs, key=lambda e: e["at"] or "", reverse=True)[:10],
        "database": _redacted_url(settings.database_url),
    }


def _next_jobs(store: Store) -> list[dict[str, Any]]:
    """The scheduler's stored jobs (read from its job store; no scheduler is started)."""
    from .workflows.scheduler import next_jobs

    return next_jobs(store)


def _redacted_url(url: str) -> str:
    """Show where the database is without any password in the URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


# -- inspect ----------------------------------------------------------------


def inspect_raw(raw: bytes, directory: Directory | None = None, name: str = "") -> dict[str, Any]:
    """How one raw email is read: the `inspect --json` contract."""
    parsed = parse_message(raw)
    party = (directory or Directory((), ())).classify(parsed.from_addr, (*parsed.to, *parsed.cc))
    analysis = None
    if not parsed.auto_generated:
        analysis = analyse_message(
            parsed.new_text, role=party.role, subject=parsed.subject, sent_at=parsed.date,
            cc=parsed.cc,
        )
    return {
        "file": name,
        "message_id": parsed.message_id,
        "from": parsed.from_addr,
        "from_name": parsed.from_name,
        "to": list(parsed.to),
        "cc": list(parsed.cc),
        "date": iso(parsed.date),
        "subject": parsed.subject,
        "client": party.client,
        "role": party.role,
        "thread_key": parsed.thread_key,
        "new_text": parsed.new_text,
        "html_only": parsed.html_only,
        "auto_generated": parsed.auto_generated,
        "auto_reason": parsed.auto_reason,
        "tone": (
            {"polarity": round(analysis.tone.polarity, 4),
             "subjectivity": round(analysis.tone.subjectivity, 4)}
            if analysis else None
        ),
        "friction": round(analysis.friction, 4) if analysis else None,
        "language": analysis.language if analysis else None,
        "signals": [signal_json(s) for s in analysis.signals] if analysis else [],
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in parsed.attachments
        ],
        "defects": list(parsed.defects),
    }


def inspect_files(paths: Sequence[Path], settings: Settings | None) -> list[dict[str, Any]]:
    directory = Directory.from_settings(settings) if settings else None
    results = []
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            results.append({"file": str(path), "error": f"cannot read: {exc.strerror}"})
            continue
        results.append(inspect_raw(raw, directory, str(path)))
    return results

"""One pass of the live service: mailbox -> store -> health and alerts -> commands -> sends.

`saygoodbye sync` runs it once; the daemon runs the same steps, woken by IDLE
and the scheduler. Each step commits on its own, and each is safe to repeat
after a crash.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from .config import Settings
from .directory import Directory
from .ingest import Ingestor, RawMail
from .store.db import Store
from .store.models import SyncRun

log = logging.getLogger(__name__)


def reply_hook(settings: Settings, store: Store) -> Callable[[Sequence[RawMail],
                                                             Sequence[dict[str, Any]]], None]:
    """Act on owners' reply commands found in a batch, before the batch is committed.

    Replies are recognised cheaply first (sent by staff, our command address in
    the bytes) and then verified by the approvals channel, which logs each
    reply's Message-ID so a batch seen twice acts once.
    """
    from .workflows import approvals

    if settings.smtp is None and settings.mailbox is None:
        return lambda items, rows: None
    address = approvals.command_address(settings)
    local = address.split("@", 1)[0].encode().lower()

    def hook(items: Sequence[RawMail], rows: Sequence[dict[str, Any]]) -> None:
        replies = [
            item.raw
            for item, row in zip(items, rows, strict=True)
            if row["role"] == "staff" and not row["auto_generated"]
            and local + b"+" in item.raw.lower()
            and approvals.is_command_reply(settings, item.raw)
        ]
        if replies:
            for outcome in approvals.process_replies(settings, store, replies):
                log.info("event=owner_reply accepted=%s command=%s reason=%s",
                         outcome.accepted, outcome.command, outcome.reason)

    return hook


def _offboarding_hook() -> Callable[..., Any] | None:
    if importlib.util.find_spec("service.workflows.offboarding") is None:
        return None
    from .workflows import offboarding

    return getattr(offboarding, "on_new_messages", None)


def live_pass(
    settings: Settings,
    store: Store,
    *,
    now: datetime | None = None,
    progress: Callable[..., Any] | None = None,
    send: bool = True,
) -> dict[str, Any]:
    """Ingest new mail over IMAP, act on replies, re-assess, alert, send what is due."""
    from .app import clients_of, refresh_health, stale_clients
    from .mail.imap import SOURCE, SyncResult, sync_once
    from .workflows import outbox

    label = f"imap://{settings.mailbox.username}@{settings.mailbox.host}" if settings.mailbox \
        else "imap"
    with store.session() as session:
        run = SyncRun(source=label[:512], started_at=datetime.now(UTC))
        session.add(run)
        session.flush()
        run_id = run.id
    error: str | None = None
    result = SyncResult()
    try:
        with Ingestor(store, Directory.from_settings(settings),
                      before_store=reply_hook(settings, store)) as ingestor:
            if progress is None:
                result = sync_once(settings, ingestor)
            else:
                with progress() as (advance, set_total):
                    result = sync_once(settings, ingestor, advance, on_total=set_total)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        with store.session() as session:
            row = session.get(SyncRun, run_id)
            if row is not None:
                row.finished_at = datetime.now(UTC)
                row.seen, row.stored = result.seen, result.stored
                row.duplicates, row.defective = result.duplicates, result.defective
                row.error = error
    # Only what can have changed: the clients the new mail is about, and any client not
    # assessed within the hour (a no-op `sync` of a 100k mailbox skips seconds of scoring).
    wanted = set(stale_clients(settings, store, now=now))
    if result.stored_ids:
        wanted.update(clients_of(store, list(result.stored_ids)))
    if wanted:
        refresh_health(settings, store, now=now, clients=sorted(wanted))
    hook = _offboarding_hook()
    if hook is not None and result.stored_ids:
        hook(settings, store, list(result.stored_ids))
    summary = result.as_dict(label)
    summary.setdefault("source", SOURCE)
    if send and settings.smtp is not None:
        report = outbox.send_due(settings, store, now=now)
        summary["sent"] = len(report.sent)
    return summary

"""The ingest pipeline every source feeds: parse, classify, analyse, store.

Parsing and analysis are pure and CPU-bound, so they run in worker processes
when there is more than one core; the parent only writes to the database.
Each batch is one transaction that also moves the source's checkpoint, so an
interrupted run (SIGKILL included) resumes with nothing lost and nothing
stored twice.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from sqlalchemy import select

from .analysis.friction import detect, friction_score
from .analysis.message import analyse_message
from .analysis.types import signal_from_row, signal_to_row
from .directory import Directory
from .mail.parse import parse_message
from .store.db import Store
from .store.models import MailboxCheckpoint, Message, SyncRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMail:
    """One message as a source hands it over."""

    raw: bytes
    folder: str | None = None
    uid: int | None = None


@dataclass(frozen=True)
class Checkpoint:
    folder: str
    uidvalidity: int
    last_uid: int


@dataclass
class BatchStats:
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    defective: int = 0
    stored_ids: list[str] = field(default_factory=list)

    def add(self, other: BatchStats) -> None:
        self.seen += other.seen
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.defective += other.defective
        self.stored_ids.extend(other.stored_ids)


def prepare(item: RawMail, directory: Directory, source: str) -> dict[str, Any]:
    """Bytes to a row of column values. Pure: safe in a worker process."""
    parsed = parse_message(item.raw)
    party = directory.classify(parsed.from_addr, (*parsed.to, *parsed.cc))
    row: dict[str, Any] = {
        "message_id": parsed.message_id[:998],
        "raw_sha256": parsed.raw_sha256,
        "source": source,
        "folder": item.folder,
        "uid": item.uid,
        "date": parsed.date,
        "from_addr": parsed.from_addr,
        "from_name": (parsed.from_name or None) and parsed.from_name[:255],
        "to_addrs": list(parsed.to),
        "cc_addrs": list(parsed.cc),
        "subject": parsed.subject,
        "in_reply_to": parsed.in_reply_to and parsed.in_reply_to[:998],
        "references": list(parsed.references),
        "thread_key": parsed.thread_key[:998],
        "client": party.client,
        "role": party.role,
        "unassigned_key": party.unassigned_key,
        "body_text": parsed.text,
        "new_text": parsed.new_text,
        "html_only": parsed.html_only,
        "auto_generated": parsed.auto_generated,
        "auto_reason": parsed.auto_reason,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in parsed.attachments
        ],
        "defects": list(parsed.defects),
        "size": parsed.size,
        "polarity": None,
        "subjectivity": None,
        "friction": None,
        "signals": [],
    }
    # Auto-generated mail never counts toward tone: a vacation notice is not a mood.
    if not parsed.auto_generated:
        analysis = analyse_message(
            parsed.new_text,
            role=party.role,
            subject=parsed.subject,
            sent_at=parsed.date,
            # A senior CC is news only against the client's history, which the
            # parent knows: see Ingestor._escalate_new_senior_ccs.
            cc=parsed.cc,
            previous_cc=parsed.cc,
        )
        row["polarity"] = round(analysis.tone.polarity, 4)
        row["subjectivity"] = round(analysis.tone.subjectivity, 4)
        row["friction"] = round(analysis.friction, 4)
        row["signals"] = [signal_to_row(signal) for signal in analysis.signals]
    return row


# Worker-process state, set once by the pool initializer.
_worker_directory: Directory | None = None


def _init_worker(directory: Directory) -> None:
    global _worker_directory
    _worker_directory = directory


def _prepare_in_worker(args: tuple[RawMail, str]) -> dict[str, Any]:
    assert _worker_directory is not None
    return prepare(args[0], _worker_directory, args[1])


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def warm_up_analysis() -> None:
    """Load the detector rules and the hostility model before forking the workers.

    Forked children share these read-only tables with the parent instead of each
    building its own (about half a second of CPU per worker, every pool start).
    """
    from .analysis import hostility
    from .analysis.friction import load_rules

    load_rules()
    # A missing model is logged once by the detector, in the process that needs it.
    with contextlib.suppress(hostility.HostilityModelError):
        hostility.load_model()


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))


BeforeStore = Callable[[Sequence[RawMail], Sequence[dict[str, Any]]], None]


class Ingestor:
    """Stores parsed and analysed mail; owns the transaction boundaries.

    ``before_store`` sees each batch (raw bytes and prepared rows) before it is
    committed: work that must not be lost if the process dies between the two
    (acting on owners' reply commands) runs there and must be idempotent, since
    an interrupted batch is fetched and shown again.
    """

    def __init__(
        self,
        store: Store,
        directory: Directory,
        *,
        workers: int | None = None,
        before_store: BeforeStore | None = None,
    ):
        self.store = store
        self.directory = directory
        self.workers = default_workers() if workers is None else max(1, workers)
        self.before_store = before_store
        self._pool: ProcessPoolExecutor | None = None
        # Addresses each client's correspondence has already involved, loaded on
        # first need: a senior person copied in for the first time is escalation.
        self._known_addresses: dict[str, set[str]] = {}

    # -- lifecycle ---------------------------------------------------------
    def _executor(self) -> ProcessPoolExecutor | None:
        if self.workers <= 1:
            return None
        if self._pool is None:
            warm_up_analysis()
            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context,
                initializer=_init_worker, initargs=(self.directory,),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- work --------------------------------------------------------------
    def prepare_many(self, items: Sequence[RawMail], source: str) -> list[dict[str, Any]]:
        return self.prepare_async(items, source)()

    def prepare_async(
        self, items: Sequence[RawMail], source: str
    ) -> Callable[[], list[dict[str, Any]]]:
        """Start preparing ``items`` in the workers; call the result to wait for the rows.

        Lets a source fetch its next batch (or store the previous one) while the
        workers parse and analyse this one. Small batches are prepared here, now.
        """
        pool = self._executor() if len(items) >= 16 else None
        if pool is None:
            rows = [prepare(item, self.directory, source) for item in items]
            return lambda: rows
        chunk = max(1, len(items) // (self.workers * 4))
        # Executor.map submits every chunk at once; the iterator only collects them.
        pending = pool.map(_prepare_in_worker, [(i, source) for i in items], chunksize=chunk)
        return lambda: list(pending)

    def checkpoint(self, folder: str) -> Checkpoint | None:
        with self.store.session() as session:
            row = session.get(MailboxCheckpoint, folder)
            if row is None:
                return None
            return Checkpoint(row.folder, row.uidvalidity, row.last_uid)

    def ingest_batch(
        self,
        items: Sequence[RawMail],
        *,
        source: str,
        checkpoint: Checkpoint | None = None,
        rows: Sequence[dict[str, Any]] | None = None,
    ) -> BatchStats:
        """Store what is new in ``items`` and move the checkpoint, atomically.

        ``rows``: the items already prepared (``prepare_async``), in the same order.
        """
        rows = self.prepare_many(items, source) if rows is None else rows
        if self.before_store is not None and rows:
            self.before_store(items, rows)
        return self.store_rows(rows, checkpoint=checkpoint)

    def store_rows(
        self, rows: Sequence[dict[str, Any]], *, checkpoint: Checkpoint | None = None
    ) -> BatchStats:
        stats = BatchStats(seen=len(rows))
        with self.store.session() as session:
            ids = {r["message_id"] for r in rows}
            existing = set(
                session.scalars(select(Message.message_id).where(Message.message_id.in_(ids)))
            )
            fresh: list[dict[str, Any]] = []
            for row in rows:
                if row["message_id"] in existing:
                    stats.duplicates += 1
                    continue
                existing.add(row["message_id"])
                fresh.append(row)
                if row["defects"]:
                    stats.defective += 1
            if fresh:
                self._escalate_new_senior_ccs(session, fresh)
                now = datetime.now(UTC)
                for row in fresh:
                    row.setdefault("ingested_at", now)
                # Core executemany: the ORM's bulk path splits rows into one statement per
                # pattern of NULL columns (about five rows each here); Core sends one.
                session.execute(Message.__table__.insert(), fresh)
            stats.stored = len(fresh)
            stats.stored_ids = [r["message_id"] for r in fresh]
            if checkpoint is not None:
                self._save_checkpoint(session, checkpoint)
        return stats

    def _known(self, session: Any, client: str) -> set[str]:
        known = self._known_addresses.get(client)
        if known is None:
            known = set()
            query = select(Message.from_addr, Message.to_addrs, Message.cc_addrs).where(
                Message.client == client
            )
            for sender, to, cc in session.execute(query):
                known.update(to or ())
                known.update(cc or ())
                if sender:
                    known.add(sender)
            self._known_addresses[client] = known
        return known

    def _escalate_new_senior_ccs(self, session: Any, rows: list[dict[str, Any]]) -> None:
        """Add an escalation signal when a client copies a senior person in for the first time.

        Needs the client's history, so it runs here (in the parent, with the
        database) rather than in the pure per-message analysis.
        """
        for row in sorted(rows, key=lambda r: r["date"] or datetime.min.replace(tzinfo=UTC)):
            client = row["client"]
            if client is None:
                continue
            known = self._known(session, client)
            involved = {*row["to_addrs"], *row["cc_addrs"]}
            if row["from_addr"]:
                involved.add(row["from_addr"])
            judged = row["role"] == "client" and row["friction"] is not None
            if judged and row["cc_addrs"] and known:
                found = detect("", cc=row["cc_addrs"], previous_cc=sorted(known),
                               kinds=frozenset({"escalation"}))
                if found:
                    signals = [signal_from_row(item) for item in row["signals"]] + found
                    row["signals"] = [signal_to_row(signal) for signal in signals]
                    row["friction"] = round(friction_score(signals), 4)
            known.update(involved)

    @staticmethod
    def _save_checkpoint(session: Any, checkpoint: Checkpoint) -> None:
        row = session.get(MailboxCheckpoint, checkpoint.folder)
        now = datetime.now(UTC)
        if row is None:
            session.add(
                MailboxCheckpoint(
                    folder=checkpoint.folder,
                    uidvalidity=checkpoint.uidvalidity,
                    last_uid=checkpoint.last_uid,
                    updated_at=now,
                )
            )
        else:
            row.uidvalidity = checkpoint.uidvalidity
            row.last_uid = checkpoint.last_uid
            row.updated_at = now

    def ingest_stream(
        self,
        items: Iterable[RawMail],
        *,
        source: str,
        batch_size: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> BatchStats:
        """Ingest an unbounded stream in bounded batches (memory stays flat).

        While the parent stores one batch, the workers already parse the next.
        """
        total = BatchStats()
        run_id = self._start_run(source)
        error: str | None = None
        try:
            pool = self._executor()
            in_flight: deque[Future[list[dict[str, Any]]]] = deque()
            for batch in _batched(items, batch_size):
                if pool is None:
                    rows = [prepare(item, self.directory, source) for item in batch]
                    self._store_prepared(rows, total, progress)
                    continue
                # A bounded window keeps every worker busy without reading ahead
                # more than a few batches (memory stays flat).
                in_flight.append(pool.submit(_prepare_batch_in_worker, batch, source))
                if len(in_flight) > self.workers:
                    self._store_prepared(in_flight.popleft().result(), total, progress)
            while in_flight:
                self._store_prepared(in_flight.popleft().result(), total, progress)
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._finish_run(run_id, total, error)
        return total

    def _store_prepared(
        self,
        rows: list[dict[str, Any]],
        total: BatchStats,
        progress: Callable[[int], None] | None,
    ) -> None:
        stats = self.store_rows(rows)
        stats.stored_ids = []  # a stream can be huge; callers get counts
        total.add(stats)
        if progress:
            progress(len(rows))

    def _start_run(self, source: str) -> int:
        with self.store.session() as session:
            run = SyncRun(source=source[:512], started_at=datetime.now(UTC))
            session.add(run)
            session.flush()
            return run.id

    def _finish_run(self, run_id: int, stats: BatchStats, error: str | None) -> None:
        with self.store.session() as session:
            run = session.get(SyncRun, run_id)
            if run is None:
                return
            run.finished_at = datetime.now(UTC)
            run.seen = stats.seen
            run.stored = stats.stored
            run.duplicates = stats.duplicates
            run.defective = stats.defective
            run.error = error


def _prepare_batch_in_worker(batch: list[RawMail], source: str) -> list[dict[str, Any]]:
    assert _worker_directory is not None
    return [prepare(item, _worker_directory, source) for item in batch]

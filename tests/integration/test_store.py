"""One storage contract suite, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from service.directory import ClientRef, Directory
from service.ingest import Checkpoint, Ingestor, RawMail
from service.store.db import Store
from service.store.models import ClientState, MailboxCheckpoint, Message, OutboxMessage

pytestmark = pytest.mark.integration


def mail(n: int, *, sender: str = "bob@acme.com", body: str = "Thanks, looks good.") -> bytes:
    return (
        f"From: Bob <{sender}>\r\nTo: team@northwind.studio\r\n"
        f"Subject: Update {n}\r\nMessage-ID: <m{n}@acme.com>\r\n"
        f"Date: Mon, 04 May 2026 10:{n % 60:02d}:00 +0200\r\n\r\n{body}\r\n"
    ).encode()


DIRECTORY = Directory([ClientRef("Acme", "maria@northwind.studio", ("acme.com",))],
                      ["northwind.studio"])


def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    store = Store(database_url)
    tables = set(inspect(store.engine).get_table_names())
    assert {"messages", "mailbox_checkpoints", "outbox", "drafts", "offboardings",
            "command_tokens", "client_states", "digest_runs"} <= tables
    store.dispose()
    Store(database_url).dispose()  # second start: nothing to do, no error


def test_datetimes_round_trip_as_aware_utc(database_url: str) -> None:
    store = Store(database_url)
    when = datetime(2026, 3, 29, 1, 30, tzinfo=UTC) + timedelta(hours=1)
    with store.session() as session:
        session.add(ClientState(client="Acme", state="watch", computed_at=when))
    with store.session() as session:
        got = session.get(ClientState, "Acme")
        assert got is not None and got.computed_at == when
        assert got.computed_at.tzinfo is not None
    store.dispose()


def test_message_id_is_unique(database_url: str) -> None:
    store = Store(database_url)
    row = dict(message_id="<x@y>", raw_sha256="0" * 64, source="mbox", thread_key="<x@y>",
               role="client")
    with store.session() as session:
        session.add(Message(**row))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Message(**row))
    store.dispose()


def test_batches_dedupe_and_move_the_checkpoint_atomically(database_url: str) -> None:
    store = Store(database_url)
    with Ingestor(store, DIRECTORY, workers=1) as ingestor:
        first = ingestor.ingest_batch(
            [RawMail(mail(i), "INBOX", i) for i in range(1, 6)],
            source="imap", checkpoint=Checkpoint("INBOX", 7, 5),
        )
        again = ingestor.ingest_batch(
            [RawMail(mail(i), "INBOX", i) for i in range(3, 9)],
            source="imap", checkpoint=Checkpoint("INBOX", 7, 8),
        )
        assert (first.stored, first.duplicates) == (5, 0)
        assert (again.stored, again.duplicates) == (3, 3)
        assert ingestor.checkpoint("INBOX") == Checkpoint("INBOX", 7, 8)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 8
        row = session.scalars(select(Message).where(Message.message_id == "<m1@acme.com>")).one()
        assert row.client == "Acme" and row.role == "client"
        assert row.date == datetime(2026, 5, 4, 8, 1, tzinfo=UTC)
        assert row.friction is not None
    store.dispose()


def test_failed_batch_leaves_neither_messages_nor_checkpoint(database_url: str) -> None:
    store = Store(database_url)
    with Ingestor(store, DIRECTORY, workers=1) as ingestor:
        rows = ingestor.prepare_many([RawMail(mail(1), "INBOX", 1)], "imap")
        rows.append(dict(rows[0], message_id=None))  # violates NOT NULL mid-batch
        with pytest.raises(IntegrityError):
            ingestor.store_rows(rows, checkpoint=Checkpoint("INBOX", 1, 99))
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.get(MailboxCheckpoint, "INBOX") is None
    store.dispose()


def test_outbox_keeps_raw_bytes_exactly(database_url: str) -> None:
    store = Store(database_url)
    raw = b"Subject: x\r\nMessage-ID: <o1@northwind.studio>\r\n\r\n\xe2\x82\xac\r\n"
    with store.session() as session:
        session.add(OutboxMessage(kind="alert", from_addr="a@b", to_addrs=["c@d"],
                                  message_id="<o1@northwind.studio>", raw=raw))
    with store.session() as session:
        stored = session.scalars(select(OutboxMessage)).one()
        assert stored.raw == raw and stored.state == "scheduled"
    store.dispose()


def test_sqlite_uses_wal_and_private_file_modes(tmp_path: Path) -> None:
    db = tmp_path / "state" / "x.db"
    store = Store(f"sqlite:///{db}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(db.parent).st_mode) == 0o700
    store.dispose()


def test_a_senior_person_copied_in_for_the_first_time_is_escalation(database_url: str) -> None:
    store = Store(database_url)

    def cc_mail(n: int, cc: str = "") -> bytes:
        header = f"Cc: {cc}\r\n" if cc else ""
        return (f"From: bob@acme.com\r\nTo: team@northwind.studio\r\n{header}Subject: x\r\n"
                f"Message-ID: <cc{n}@acme.com>\r\nDate: Mon, 04 May 2026 10:{n:02d}:00 +0200"
                "\r\n\r\nPlease see the attached notes.\r\n").encode()

    with Ingestor(store, DIRECTORY, workers=1) as ingestor:
        ingestor.ingest_batch([RawMail(cc_mail(1)), RawMail(cc_mail(2, "ceo@acme.com"))],
                              source="imap")
    with Ingestor(store, DIRECTORY, workers=1) as ingestor:  # history comes from the store
        ingestor.ingest_batch([RawMail(cc_mail(3, "ceo@acme.com"))], source="imap")
    with store.session() as session:
        rows = {r.message_id: r for r in session.scalars(select(Message))}
    kinds = {mid: [s["kind"] for s in row.signals] for mid, row in rows.items()}
    assert "escalation" in kinds["<cc2@acme.com>"]
    assert "escalation" not in kinds["<cc1@acme.com>"]
    assert "escalation" not in kinds["<cc3@acme.com>"]  # already known: no news
    assert rows["<cc2@acme.com>"].friction > rows["<cc3@acme.com>"].friction
    store.dispose()

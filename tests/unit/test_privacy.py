"""Retention and `forget`, against SQLite and PostgreSQL alike."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service import cli
from service.privacy import forget, purge_bodies
from service.store.db import Store
from service.store.models import (
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

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SECRET_BODY = "ZEBRA-7731 the contract terms we discussed privately"


def _message(n: int, client: str | None, *, sender: str, days_old: float | None,
             body: str = SECRET_BODY) -> Message:
    return Message(
        message_id=f"<m{n}@example>", raw_sha256=f"{n:064d}", source="imap",
        date=None if days_old is None else NOW - timedelta(days=days_old),
        ingested_at=NOW - timedelta(days=days_old or 0),
        from_addr=sender, client=client, role="client" if client else "unassigned",
        unassigned_key=None if client else sender, thread_key=f"<t{n}>",
        body_text=f"{body} #{n}", new_text=f"{body} #{n} new",
        polarity=-0.4, friction=0.7,
        signals=[{"kind": "demand", "weight": 0.8,
                  "evidence": [{"message_id": f"<m{n}@example>", "quote": "third time"}]}],
    )


def _seed(store: Store, client: str = "Acme") -> None:
    with store.session() as s:
        s.add_all([
            _message(1, client, sender="bob@acme.com", days_old=3),
            _message(2, client, sender="bob@acme.com", days_old=400),
            _message(3, None, sender="new.person@acme.com", days_old=10),  # before configured
            _message(4, "Globex", sender="hank@globex.com", days_old=3),
            _message(5, "Globex", sender="hank@globex.com", days_old=500),
            # a Globex contact on an acme.com address stays Globex's
            _message(6, "Globex", sender="contractor@acme.com", days_old=3),
        ])
        s.add_all([ClientState(client=client, state="at_risk", score=31.0),
                   ClientState(client="Globex", state="healthy", score=90.0)])
        s.add_all([HealthPoint(client=client, day=date(2026, 11, d), score=40.0, state="watch")
                   for d in (1, 2, 3)])
        s.add(HealthPoint(client="Globex", day=date(2026, 11, 1), score=90, state="healthy"))
        off = Offboarding(client=client, owner="maria@northwind.studio")
        other = Offboarding(client="Globex", owner="maria@northwind.studio")
        s.add_all([off, other])
        s.flush()
        farewell = Draft(offboarding_id=off.id, kind="farewell", subject="Goodbye", text="…")
        feedback = Draft(offboarding_id=off.id, kind="feedback_request", subject="F", text="…")
        kept = Draft(offboarding_id=other.id, kind="farewell", subject="Bye", text="…")
        s.add_all([farewell, feedback, kept])
        s.flush()
        alert = OutboxMessage(kind="alert", client=client, from_addr="sg@northwind.studio",
                              to_addrs=["maria@northwind.studio"], message_id="<o1@x>", raw=b"x")
        bye = OutboxMessage(kind="farewell", client=None, draft_id=farewell.id,
                            from_addr="sg@northwind.studio", to_addrs=["bob@acme.com"],
                            message_id="<o2@x>", raw=b"x")
        digest = OutboxMessage(kind="digest", client=None, from_addr="sg@northwind.studio",
                               to_addrs=["maria@northwind.studio"], message_id="<o3@x>",
                               raw=b"x")
        s.add_all([alert, bye, digest])
        s.flush()
        expires = NOW + timedelta(days=7)
        s.add_all([
            CommandToken(token_hash="a" * 64, owner="maria@northwind.studio", purpose="outbox",
                         subject_id=str(alert.id), expires_at=expires),
            CommandToken(token_hash="b" * 64, owner="maria@northwind.studio", purpose="draft",
                         subject_id=str(farewell.id), expires_at=expires),
            CommandToken(token_hash="c" * 64, owner="maria@northwind.studio", purpose="alert",
                         subject_id=client, expires_at=expires),
            CommandToken(token_hash="d" * 64, owner="maria@northwind.studio", purpose="outbox",
                         subject_id=str(digest.id), expires_at=expires),
        ])
        s.add_all([PendingItem(client=client, text="deliver the final invoice"),
                   PendingItem(client="Globex", text="hand over assets")])
        s.add(Feedback(client=client, message_id="<fb@acme.com>", received_at=NOW,
                       text="You were slow."))
        s.add_all([Event(level="warning", component="alerts", message=f"alert for {client}"),
                   Event(level="error", component="sync", message="IMAP timeout")])


def _count(store: Store, model: type, **where: object) -> int:
    with store.session() as s:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return s.scalar(query) or 0


def test_forget_removes_everything_about_the_client_and_says_what(database_url: str) -> None:
    store = Store(database_url)
    _seed(store)
    report = forget(store, "acme", addresses=(), domains=("acme.com",))
    assert report.client == "acme"
    assert report.removed == {
        "messages": 3, "outbox": 2, "drafts": 2, "offboardings": 1, "command_tokens": 3,
        "client_states": 1, "health_history": 3, "pending_items": 1, "feedback": 1,
        "events": 1,
    }
    assert report.total == 18
    # nothing about Acme is left anywhere
    for model in (Message, ClientState, HealthPoint, Offboarding, PendingItem, Feedback):
        assert _count(store, model, client="Acme") == 0
    # the other client, the digest and unrelated events are untouched
    assert _count(store, Message, client="Globex") == 3
    assert _count(store, Draft) == 1
    assert _count(store, OutboxMessage) == 1
    assert _count(store, CommandToken) == 1
    assert _count(store, Event) == 1
    assert _count(store, ClientState, client="Globex") == 1
    # a second run finds nothing
    again = forget(store, "ACME", domains=("acme.com",))
    assert again.total == 0
    store.dispose()


def test_forget_matches_non_ascii_names_by_casefold(database_url: str) -> None:
    store = Store(database_url)
    _seed(store, client="Société Générale")
    report = forget(store, "SOCIÉTÉ GÉNÉRALE")
    assert report.removed["messages"] == 2  # no domains given: the unassigned one stays
    assert report.removed["client_states"] == 1
    assert _count(store, Message, client="Société Générale") == 0
    store.dispose()


def test_forget_refuses_an_empty_name(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    with pytest.raises(ValueError):
        forget(store, "  ")
    store.dispose()


def _file_bytes(url: str) -> bytes:
    path = Path(url.removeprefix("sqlite:///"))
    data = path.read_bytes()
    wal = path.with_name(path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_forget_leaves_no_trace_in_the_sqlite_files(sqlite_url: str) -> None:
    # Holds whatever the SQLite build's secure_delete default (forget turns it on).
    store = Store(sqlite_url)
    _seed(store)
    with store.session() as s:  # Globex's bodies must survive
        s.execute(Message.__table__.update().where(Message.client == "Globex")
                  .values(body_text="GLOBEX-KEEP"))
    assert b"ZEBRA-7731" in _file_bytes(sqlite_url)
    forget(store, "Acme", domains=("acme.com",))
    with store.session() as s:  # the rest of the seeded Acme-free rows still carry it
        s.execute(Message.__table__.update().values(new_text=None))
    store.dispose()
    data = _file_bytes(sqlite_url)
    assert b"ZEBRA-7731" not in data
    assert b"You were slow" not in data
    assert b"GLOBEX-KEEP" in data


def test_purge_bodies_keeps_signals_and_is_idempotent(database_url: str) -> None:
    store = Store(database_url)
    _seed(store)
    with store.session() as s:
        s.add(_message(7, "Acme", sender="bob@acme.com", days_old=None))  # undated, new
        s.add(_message(8, "Acme", sender="bob@acme.com", days_old=None))
        s.get(Message, 8)
    with store.session() as s:  # undated and stored long ago
        row = s.scalars(select(Message).where(Message.message_id == "<m8@example>")).one()
        row.ingested_at = NOW - timedelta(days=800)
    report = purge_bodies(store, 365, now=NOW, chunk=1)
    assert report.messages == 3  # m2 (400 d), m5 (500 d), m8 (stored 800 d ago, undated)
    assert report.cutoff == NOW - timedelta(days=365)
    with store.session() as s:
        rows = {m.message_id: m for m in s.scalars(select(Message))}
    for mid in ("<m2@example>", "<m5@example>", "<m8@example>"):
        row = rows[mid]
        assert row.body_text is None and row.new_text is None
        assert row.bodies_purged_at == NOW
        assert row.friction == 0.7 and row.polarity == -0.4
        assert row.signals[0]["evidence"][0]["quote"] == "third time"
    for mid in ("<m1@example>", "<m4@example>", "<m7@example>"):
        assert rows[mid].body_text and rows[mid].bodies_purged_at is None
    assert purge_bodies(store, 365, now=NOW).messages == 0
    assert purge_bodies(store, 1, now=NOW).messages == 4
    with pytest.raises(ValueError):
        purge_bodies(store, 0)
    store.dispose()


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[service]\ndatabase = "{url}"\n\n'
        '[[clients]]\nname = "Acme"\ndomains = ["acme.com"]\nowner = "maria@northwind.studio"\n',
        encoding="utf-8",
    )
    return path


def test_cli_forget_prints_what_it_removed(tmp_path: Path, sqlite_url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(sqlite_url)
    _seed(store)
    store.dispose()
    config = _config(tmp_path, sqlite_url)
    assert cli.main(["--config", str(config), "forget", "acme", "--yes", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["client"] == "Acme"  # the configured spelling
    assert data["removed"]["messages"] == 3 and data["total"] == 18
    assert cli.main(["--config", str(config), "forget", "Acme", "--yes"]) == 0
    assert "Nothing was stored about 'Acme'" in capsys.readouterr().out


def test_cli_forget_asks_first(tmp_path: Path, sqlite_url: str,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(sqlite_url)
    _seed(store)
    store.dispose()
    config = _config(tmp_path, sqlite_url)
    # not a terminal and no --yes: refused as a usage error, nothing erased
    monkeypatch.setattr(sys, "stdin", io.StringIO("Acme\n"))
    assert cli.main(["--config", str(config), "forget", "Acme"]) == 2
    assert "--yes" in capsys.readouterr().err

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty("no\n"))
    assert cli.main(["--config", str(config), "forget", "Acme"]) == 1
    store = Store(sqlite_url)
    assert _count(store, Message, client="Acme") == 2
    store.dispose()
    monkeypatch.setattr(sys, "stdin", Tty("acme\n"))
    assert cli.main(["--config", str(config), "forget", "Acme"]) == 0
    assert "Erased 18 records about 'Acme'" in capsys.readouterr().out

"""Health refresh: scoring never holds the write lock; only the named clients are touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import sqlalchemy
from sqlalchemy import select

from service.app import clients_of, open_store, refresh_health
from service.config import Settings, settings_from_mapping
from service.directory import Directory
from service.ingest import Ingestor, RawMail
from service.store.db import Store
from service.store.models import ClientState, Message
from service.workflows import health_update
from service.workflows.health_update import assess_all, save_assessments

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _settings(url: str) -> Settings:
    return settings_from_mapping({
        "service": {"database": url, "own_domains": ["agency.example"]},
        "clients": [
            {"name": "Acme", "domains": ["acme.example"], "owner": "olga@agency.example"},
            {"name": "Globex", "domains": ["globex.example"], "owner": "olga@agency.example"},
        ],
    })


def _mail(n: int, sender: str, body: str, when: datetime) -> RawMail:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "team@agency.example"
    msg["Subject"] = "Project"
    msg["Message-ID"] = f"<m{n}@example>"
    msg["Date"] = format_datetime(when)
    msg.set_content(body)
    return RawMail(msg.as_bytes())


def _seed(settings: Settings) -> Store:
    store = open_store(settings)
    mails = [
        _mail(i, f"ana@{domain}", "Thanks, this looks great. Could you send the files?",
              NOW - timedelta(days=20 - i))
        for i, domain in enumerate(["acme.example", "globex.example"] * 3)
    ]
    with Ingestor(store, Directory.from_settings(settings), workers=1) as ingestor:
        ingestor.ingest_batch(mails, source="test")
    return store


def test_named_clients_only(tmp_path: Path) -> None:
    settings = _settings(f"sqlite:///{tmp_path / 'h.db'}")
    store = _seed(settings)
    assert clients_of(store, ["<m0@example>", "<m2@example>", "<nope@x>"]) == ["Acme"]
    refresh_health(settings, store, now=NOW, clients=["Acme"])
    with store.session() as session:
        assert session.get(ClientState, "Acme") is not None
        assert session.get(ClientState, "Globex") is None
    refresh_health(settings, store, now=NOW)
    with store.session() as session:
        assert session.get(ClientState, "Globex") is not None


def test_a_state_stored_meanwhile_is_what_alerts_compare_against(tmp_path: Path) -> None:
    settings = _settings(f"sqlite:///{tmp_path / 'h.db'}")
    store = _seed(settings)
    with store.session() as session:
        assessed = assess_all(session, settings, now=NOW)
    assert {a.previous_state for a in assessed} == {None}
    with store.session() as session:  # another writer got there first
        session.add(ClientState(client="Acme", state="at_risk", score=50.0, trend=0.0,
                                computed_at=NOW, details={}))
    with store.session() as session:
        saved = {a.client: a for a in save_assessments(session, assessed, NOW)}
    assert saved["Acme"].previous_state == "at_risk"
    assert saved["Globex"].previous_state is None
    with store.session() as session:
        assert session.get(ClientState, "Acme").state == saved["Acme"].health.state


def test_scoring_does_not_block_a_concurrent_commit(tmp_path: Path, monkeypatch) -> None:
    """The watcher commits new mail while every client is being scored (SQLite's single
    writer lock would otherwise stall it for the whole refresh)."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    settings = _settings(url)
    store = _seed(settings)
    other = sqlalchemy.create_engine(url, connect_args={"timeout": 0.2})
    real = health_update.assess_client
    commits: list[int] = []

    def scoring_while_someone_writes(*args, **kwargs):
        with other.begin() as conn:  # raises "database is locked" after 0.2 s if held
            conn.execute(sqlalchemy.text(
                "UPDATE messages SET subject = subject || '.' WHERE id = 1"))
        commits.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(health_update, "assess_client", scoring_while_someone_writes)
    refresh_health(settings, store, now=NOW)
    assert len(commits) == 2  # one concurrent commit per client scored, none refused
    with store.session() as session:
        assert session.scalar(select(Message.subject).where(Message.id == 1)) == "Project.."
    other.dispose()


def test_stale_clients_are_the_unassessed_and_the_old(tmp_path: Path) -> None:
    from service.app import stale_clients

    settings = _settings(f"sqlite:///{tmp_path / 'h.db'}")
    store = _seed(settings)
    assert stale_clients(settings, store, now=NOW) == ["Acme", "Globex"]
    refresh_health(settings, store, now=NOW, clients=["Acme"])
    assert stale_clients(settings, store, now=NOW + timedelta(minutes=30)) == ["Globex"]
    assert stale_clients(settings, store, now=NOW + timedelta(hours=2)) == ["Acme", "Globex"]

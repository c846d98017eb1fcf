"""The live mailbox against a real Dovecot: backfill, incremental sync, IDLE,
UIDVALIDITY changes, server restarts and SIGKILL mid-backfill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest
from sqlalchemy import select

from service.config import Settings, settings_from_mapping
from service.directory import Directory
from service.errors import MailboxError
from service.ingest import Ingestor
from service.mail.backoff import Backoff
from service.mail.imap import MailboxWatcher, sync_once
from service.store.db import Store
from service.store.models import MailboxCheckpoint, Message
from tests.rig import mailgen
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration

PASSWORD_ENV = "SG_TEST_IMAP_PASSWORD"
ROOT = Path(__file__).resolve().parents[2]


def make_settings(dovecot: Dovecot, user: str, database: str, **mailbox: object) -> Settings:
    return settings_from_mapping(
        {
            "service": {"database": database},
            "mailbox": {
                "host": dovecot.host,
                "port": dovecot.imap_port,
                "security": "none",
                "username": user,
                "password_env": PASSWORD_ENV,
                "timeout": 5,
                **mailbox,
            },
            "clients": [
                {"name": "Acme", "domains": ["acme.test"], "owner": "olga@northwind.test"},
                {"name": "Globex", "domains": ["globex.test"], "owner": "paul@northwind.test"},
            ],
        }
    )


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sg.db'}"


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    store = Store(database)
    yield store
    store.dispose()


@pytest.fixture
def team(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> str:
    user = dovecot.add_user("team@northwind.test", "team-pass")
    monkeypatch.setenv(PASSWORD_ENV, "team-pass")
    return user


def ingestor_for(settings: Settings, store: Store) -> Ingestor:
    return Ingestor(store, Directory.from_settings(settings), workers=1)


def message_ids(raws: list[bytes]) -> set[str]:
    parser = BytesHeaderParser()
    return {str(parser.parsebytes(raw)["Message-ID"]).strip() for raw in raws}


def stored_ids(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(Message.message_id)))


def checkpoint(store: Store, folder: str) -> MailboxCheckpoint | None:
    with store.session() as session:
        return session.get(MailboxCheckpoint, folder)


def test_backfill_then_incremental_without_touching_flags(
    dovecot: Dovecot, team: str, store: Store, database: str
) -> None:
    dovecot.fill(team, mailgen.generate(230, seed=3))
    settings = make_settings(dovecot, team, database, batch_size=50)
    batches: list[int] = []
    totals: list[int | None] = []
    with ingestor_for(settings, store) as ingestor:
        result = sync_once(settings, ingestor, batches.append, on_total=totals.append)
    assert result.stored == 230 and result.duplicates == 0 and result.retries == 0
    assert batches == [50, 50, 50, 50, 30]
    assert totals[-1] == 230
    inbox = dovecot.messages(team)
    assert sorted(stored_ids(store)) == sorted(message_ids(inbox))
    point = checkpoint(store, "INBOX")
    assert point is not None and point.last_uid == 230
    assert point.uidvalidity == dovecot.uidvalidity(team)
    # never marked read, never flagged: people use this mailbox too
    assert all(b"\\Seen" not in flags for flags in dovecot.flags(team).values())

    new = [mailgen.message(f"new {i}") for i in range(3)]
    for raw in new:
        dovecot.deliver(team, raw)
    with ingestor_for(settings, store) as ingestor:
        second = sync_once(settings, ingestor)
        third = sync_once(settings, ingestor)
    assert second.seen == 3 and second.stored == 3
    assert third.seen == 0 and third.stored == 0
    assert len(stored_ids(store)) == 233
    assert checkpoint(store, "INBOX").last_uid == 233


def test_sent_folder_found_by_special_use_and_synced(
    dovecot: Dovecot, team: str, store: Store, database: str
) -> None:
    dovecot.deliver(team, mailgen.message("question", sender="ana@acme.test"))
    reply = mailgen.message("Re: question", sender=team, to="ana@acme.test")
    dovecot.append(team, reply, folder="Sent", flags=(b"\\Seen",))
    settings = make_settings(dovecot, team, database)
    with ingestor_for(settings, store) as ingestor:
        result = sync_once(settings, ingestor)
    assert {f.folder: f.stored for f in result.folders} == {"INBOX": 1, "Sent": 1}
    assert checkpoint(store, "Sent").last_uid == 1
    with store.session() as session:
        row = session.scalars(select(Message).where(Message.folder == "Sent")).one()
        assert row.role == "staff" and row.client == "Acme"


def test_uidvalidity_change_rescans_without_duplicates(
    dovecot: Dovecot, team: str, store: Store, database: str
) -> None:
    dovecot.deliver_many(team, mailgen.generate(40, seed=5))
    settings = make_settings(dovecot, team, database, batch_size=15)
    with ingestor_for(settings, store) as ingestor:
        sync_once(settings, ingestor)
        old = checkpoint(store, "INBOX")
        new_validity = dovecot.change_uidvalidity(team)
        dovecot.deliver(team, mailgen.message("after the rebuild"))
        result = sync_once(settings, ingestor)
    inbox = result.folder("INBOX")
    assert inbox.rescanned and inbox.seen == 41
    assert inbox.stored == 1 and inbox.duplicates == 40
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == 41
    point = checkpoint(store, "INBOX")
    assert point.uidvalidity == new_validity != old.uidvalidity
    assert point.last_uid > old.last_uid  # UIDs were renumbered upwards


def test_bad_password_is_permanent_and_not_retried(
    dovecot: Dovecot, team: str, store: Store, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    settings = make_settings(dovecot, team, database)
    with ingestor_for(settings, store) as ingestor, pytest.raises(MailboxError) as error:
        sync_once(settings, ingestor, sleep=lambda s: pytest.fail("retried a bad password"))
    assert not error.value.transient
    assert "wrong" not in str(error.value)


def test_server_restart_mid_sync_recovers(
    dovecot_factory, store: Store, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = dovecot_factory()
    team = server.add_user("team@northwind.test", "team-pass")
    monkeypatch.setenv(PASSWORD_ENV, "team-pass")
    server.fill(team, mailgen.generate(300, seed=7))
    settings = make_settings(server, team, database, batch_size=40)
    restarted = []

    def progress(n: int) -> None:
        if not restarted:  # after the first batch is committed, the server goes away
            restarted.append(n)
            server.restart()

    with ingestor_for(settings, store) as ingestor:
        result = sync_once(settings, ingestor, progress, backoff=Backoff(base=0.05, cap=0.2))
    assert result.retries >= 1
    assert result.stored == 300 and result.duplicates == 0
    assert sorted(stored_ids(store)) == sorted(message_ids(server.messages(team)))


def test_network_outage_longer_than_retries_raises_transient(
    dovecot_factory, store: Store, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = dovecot_factory()
    team = server.add_user("team@northwind.test", "team-pass")
    monkeypatch.setenv(PASSWORD_ENV, "team-pass")
    settings = make_settings(server, team, database)
    server.stop()
    delays: list[float] = []
    with ingestor_for(settings, store) as ingestor, pytest.raises(MailboxError) as error:
        sync_once(settings, ingestor, max_attempts=4, sleep=delays.append)
    assert error.value.transient
    assert len(delays) == 3
    assert delays[0] < delays[-1]  # backs off exponentially


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from service.config import settings_from_mapping
    from service.directory import Directory
    from service.ingest import Ingestor
    from service.mail.imap import sync_once
    from service.store.db import Store

    settings = settings_from_mapping({mapping!r})
    store = Store(settings.database_url)
    with Ingestor(store, Directory.from_settings(settings), workers=2) as ingestor:
        # slow each batch a little so the kill lands mid-backfill
        sync_once(settings, ingestor, lambda n: time.sleep(0.03))
    print("finished")
    """
)


def test_sigkill_mid_backfill_resumes_exactly(
    dovecot: Dovecot, team: str, store: Store, database: str, tmp_path: Path
) -> None:
    total = 500
    dovecot.fill(team, mailgen.generate(total, seed=11))
    settings = make_settings(dovecot, team, database, batch_size=25)
    script = tmp_path / "sync.py"
    script.write_text(KILL_SCRIPT.format(root=str(ROOT), mapping=settings.model_dump(mode="json")))
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        env={**os.environ, PASSWORD_ENV: "team-pass"},
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(stored_ids(store)) < 100:
            assert proc.poll() is None, "sync ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sync and its worker processes
        proc.wait()
    partial = len(stored_ids(store))
    assert 100 <= partial < total
    assert checkpoint(store, "INBOX").last_uid == partial  # batch and checkpoint agree

    with ingestor_for(settings, store) as ingestor:
        result = sync_once(settings, ingestor)
    assert result.stored == total - partial and result.duplicates == 0
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == total
    assert set(ids) == message_ids(dovecot.messages(team))


def _wait_for(predicate, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)
    return time.monotonic() - started


def test_watcher_idle_stores_new_mail_within_a_second(
    dovecot: Dovecot, team: str, store: Store, database: str
) -> None:
    settings = make_settings(dovecot, team, database)
    dovecot.deliver(team, mailgen.message("before start"))
    with ingestor_for(settings, store) as ingestor:
        watcher = MailboxWatcher(settings, ingestor)
        watcher.start()
        try:
            _wait_for(lambda: len(stored_ids(store)) == 1, 5)
            assert watcher.mode == "idle"
            time.sleep(0.2)  # let it settle into IDLE
            latencies = []
            for i in range(3):
                dovecot.deliver(team, mailgen.message(f"live {i}"))
                # generous ceiling for a loaded CI box; the median below is the requirement
                latencies.append(_wait_for(lambda n=i: len(stored_ids(store)) == n + 2, 15))
        finally:
            watcher.stop()
    assert not watcher._thread.is_alive()
    # Dovecot batches IDLE notifications for 0.5 s; on a loaded 2-core box one
    # sample may exceed the budget, so the median carries the 1 s requirement.
    assert sorted(latencies)[1] < 1.0, latencies
    # still nothing marked read
    assert all(b"\\Seen" not in f for f in dovecot.flags(team).values())


def test_watcher_polls_when_server_lacks_idle(
    dovecot_factory, store: Store, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = dovecot_factory(idle=False)
    team = server.add_user("team@northwind.test", "team-pass")
    monkeypatch.setenv(PASSWORD_ENV, "team-pass")
    settings = make_settings(server, team, database)
    with ingestor_for(settings, store) as ingestor:
        watcher = MailboxWatcher(settings, ingestor, poll_seconds=0.2)
        watcher.start()
        try:
            _wait_for(lambda: watcher.syncs >= 1, 5)
            assert watcher.mode == "poll"
            server.deliver(team, mailgen.message("polled"))
            _wait_for(lambda: len(stored_ids(store)) == 1, 3)
        finally:
            watcher.stop()


def test_watcher_reconnects_after_server_restart(
    dovecot_factory, store: Store, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = dovecot_factory()
    team = server.add_user("team@northwind.test", "team-pass")
    monkeypatch.setenv(PASSWORD_ENV, "team-pass")
    settings = make_settings(server, team, database)
    synced = threading.Event()
    with ingestor_for(settings, store) as ingestor:
        watcher = MailboxWatcher(
            settings, ingestor, backoff=Backoff(base=0.05, cap=0.3), on_sync=lambda r: synced.set()
        )
        watcher.start()
        try:
            assert synced.wait(5)
            server.kill()  # a crash: connections die without BYE
            server.start()
            server.deliver(team, mailgen.message("after the crash"))
            _wait_for(lambda: len(stored_ids(store)) == 1, 10)
        finally:
            watcher.stop()
    assert watcher.mode is None  # stopped cleanly


def test_sync_mailbox_records_the_run_for_status(
    dovecot: Dovecot, team: str, database: str
) -> None:
    from service.mail.imap import sync_mailbox
    from service.store.models import SyncRun

    dovecot.deliver(team, mailgen.message("for the cli", sender="dan@globex.test"))
    settings = make_settings(dovecot, team, database)
    bars: list[tuple[str, int | None]] = []

    class Bar:  # the CLI's progress factory: a context manager yielding two callbacks
        def __enter__(self):
            return (lambda n: bars.append(("advance", n)), lambda t: bars.append(("total", t)))

        def __exit__(self, *exc: object) -> None:
            return None

    data = sync_mailbox(settings, progress=Bar)
    assert data["stored"] == 1 and data["source"] == f"imap://{team}@127.0.0.1"
    assert ("total", 1) in bars and ("advance", 1) in bars
    store = Store(database)
    with store.session() as session:
        run = session.scalars(select(SyncRun)).one()
        assert run.finished_at is not None and run.stored == 1 and run.error is None
    store.dispose()


def test_expunged_tail_settles_the_checkpoint(
    dovecot: Dovecot, team: str, store: Store, database: str
) -> None:
    """Mail removed before we fetched it must not look like new mail for ever."""
    for i in range(3):
        dovecot.deliver(team, mailgen.message(f"kept {i}"))
    settings = make_settings(dovecot, team, database)
    with ingestor_for(settings, store) as ingestor:
        sync_once(settings, ingestor)
    dovecot.deliver(team, mailgen.message("gone 1"))
    dovecot.deliver(team, mailgen.message("gone 2"))
    with dovecot.imap(team) as client:
        client.select_folder("INBOX")
        client.delete_messages([4, 5])
        client.expunge()
    with ingestor_for(settings, store) as ingestor:
        result = sync_once(settings, ingestor)
    assert result.stored == 0
    assert checkpoint(store, "INBOX").last_uid == 5  # UIDNEXT - 1: nothing left to wait for


def _running_watcher(settings: Settings, ingestor: Ingestor, **kwargs: object) -> MailboxWatcher:
    watcher = MailboxWatcher(settings, ingestor, **kwargs)  # type: ignore[arg-type]
    watcher.start()
    _wait_for(lambda: watcher.round_seconds is not None, 10)  # synced, back in IDLE
    return watcher


def test_wakeups_without_mail_keep_the_folder_open(
    dovecot: Dovecot, team: str, store: Store, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A no-new-mail wake-up must not open the folder again (55 ms at 100k on Dovecot)."""
    from imapclient import IMAPClient

    opened: list[str] = []
    select = IMAPClient.select_folder

    def counting_select(self: IMAPClient, folder: str, readonly: bool = False) -> object:
        opened.append(folder)
        return select(self, folder, readonly)

    monkeypatch.setattr(IMAPClient, "select_folder", counting_select)
    dovecot.deliver(team, mailgen.message("already there"))
    settings = make_settings(dovecot, team, database)
    with ingestor_for(settings, store) as ingestor:
        watcher = _running_watcher(settings, ingestor)
        try:
            before = list(opened)
            for _ in range(3):
                watcher.round_seconds = None
                watcher.wake()
                _wait_for(lambda: watcher.round_seconds is not None, 5)
            idle_rounds = list(opened[len(before):])
            dovecot.deliver(team, mailgen.message("while watched"))
            _wait_for(lambda: len(stored_ids(store)) == 2, 10)
        finally:
            watcher.stop()
    assert before == ["INBOX", "Sent", "INBOX"]  # the first sync, then IDLE's folder
    assert idle_rounds == []
    assert opened[len(before):] == []  # new mail is fetched from the open folder too
    assert watcher.syncs >= 5


def test_mail_announced_after_the_passs_search_is_not_left_for_the_renewal(
    dovecot: Dovecot, team: str, store: Store, database: str
) -> None:
    """Mail that arrives after the pass searched the inbox, but is announced to us
    before IDLE (with a later command's reply), is never announced again: the
    watcher must sync at once rather than wait 9 minutes for the IDLE renewal."""
    settings = make_settings(dovecot, team, database)
    delivered: list[str] = []

    class DeliverDuringThePass(Ingestor):
        def checkpoint(self, folder: str):  # type: ignore[no-untyped-def]
            # the inbox is searched; Sent is next: mail lands in between
            if folder == "Sent" and len(delivered) == 1:
                delivered.append("late")
                dovecot.deliver(team, mailgen.message("late"))
            return super().checkpoint(folder)

    with DeliverDuringThePass(store, Directory.from_settings(settings), workers=1) as ingestor:
        watcher = _running_watcher(settings, ingestor)  # renewal: 9 minutes
        try:
            delivered.append("first")
            dovecot.deliver(team, mailgen.message("first"))
            _wait_for(lambda: len(stored_ids(store)) == 2, 10)
        finally:
            watcher.stop()
    assert delivered == ["first", "late"]


def test_uidvalidity_change_under_the_watcher_rescans_once(
    dovecot: Dovecot, team: str, store: Store, database: str
) -> None:
    """The folder the watcher keeps open is renumbered: no duplicates, nothing missed."""
    for i in range(3):
        dovecot.deliver(team, mailgen.message(f"before {i}"))
    settings = make_settings(dovecot, team, database)
    with ingestor_for(settings, store) as ingestor:
        watcher = _running_watcher(settings, ingestor, backoff=Backoff(base=0.05, cap=0.3))
        try:
            assert len(stored_ids(store)) == 3
            new_validity = dovecot.change_uidvalidity(team)
            dovecot.deliver(team, mailgen.message("after the rebuild"))
            _wait_for(lambda: len(stored_ids(store)) == 4, 15)
            _wait_for(lambda: checkpoint(store, "INBOX").uidvalidity == new_validity, 10)
        finally:
            watcher.stop()
    assert len(set(stored_ids(store))) == 4
    with dovecot.session(team) as client:
        uidnext = client.folder_status("INBOX", ["UIDNEXT"])[b"UIDNEXT"]
    assert checkpoint(store, "INBOX").last_uid == uidnext - 1


def test_sync_looks_at_the_inbox_before_listing_folders(
    dovecot: Dovecot, team: str, store: Store, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """On Dovecot, a LIST first makes opening a 100k inbox ~25x slower for the session."""
    import logging

    dovecot.deliver(team, mailgen.message("one"))
    settings = make_settings(dovecot, team, database)
    with ingestor_for(settings, store) as ingestor:
        sync_once(settings, ingestor)
        caplog.clear()
        caplog.set_level(logging.DEBUG, logger="imapclient")
        result = sync_once(settings, ingestor)  # nothing new
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("> ")]
    verbs = [line.split()[2].strip("'") for line in sent if len(line.split()) > 2]
    assert verbs.index("STATUS") < verbs.index("LIST"), sent
    assert [f.folder for f in result.folders] == ["INBOX", "Sent"] and result.stored == 0

"""Fault suite (issue 8): real servers on loopback, real processes killed hard.

Short form inside ``make test``; ``make faults`` (``SAYGOODBYE_FAULTS=full``)
raises the counts. Each test prints its figures (run with ``-s``) for the
README's Reliability section.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from service.mail.compose import compose
from service.store.db import Store
from service.store.models import Message, OutboxMessage
from service.workflows import outbox
from tests.faults.helpers import (
    ROOT,
    FilingSmtpServer,
    cli_env,
    delivered_per_id,
    header_ids,
    kill_group,
    maxrss_mb,
    rng,
    run_cli,
    scale,
    start_cli,
    stored_ids,
    wait_until,
    write_config,
)
from tests.integration.test_outbox_env import (
    AUTHSERV,
    CLIENT,
    IMAP_PASSWORD_ENV,
    OWNER,
    SERVICE,
    SMTP_PASSWORD_ENV,
    make_settings,
)
from tests.rig import mailgen
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration

TEAM = "team@northwind.test"


def _next_second() -> None:
    """Dovecot.fill names files by the current second: two fills never share one."""
    time.sleep(1.02 - (time.time() % 1))


def _count(db: Path) -> int:
    """Stored messages, read without the service's code (cheap enough to poll)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


# -- 1. SIGKILL during a backfill -------------------------------------------------


def test_sigkill_during_backfill_stores_the_mailbox_exactly(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    kills = scale(3, 50)
    initial, top_up = scale(200, 600), scale(150, 120)
    rand, _seed = rng("backfill kills")
    user = dovecot.add_user(TEAM, "team-pass")
    dovecot.fill(user, mailgen.generate(initial, seed=1))
    in_mailbox = initial
    db = tmp_path / "state" / "sg.db"
    url = f"sqlite:///{db}"
    config = write_config(tmp_path / "config.toml", dovecot, user, url, extra="batch_size = 25")
    env = cli_env(dovecot, user)
    log = tmp_path / "sync.log"
    killed = mid_backfill = finished = 0
    for round_ in range(kills):
        before = len(stored_ids(url))
        proc = start_cli(config, env, "sync", "--json", log=log)
        # most kills land once the backfill is under way (a batch committed);
        # every fifth at any moment from the start (imports, migrations, login)
        if round_ % 5 != 4:
            began = time.monotonic()
            while _count(db) <= before and proc.poll() is None and time.monotonic() - began < 60:
                time.sleep(0.05)
        try:
            proc.wait(timeout=rand.uniform(0.0, 1.2) if round_ % 5 != 4 else rand.uniform(0.2, 4))
            assert proc.returncode == 0, log.read_text()[-3000:]
            finished += 1
        except subprocess.TimeoutExpired:
            kill_group(proc)
            killed += 1
        ids = stored_ids(url)
        assert len(ids) == len(set(ids)), "a message was stored twice"
        if before < len(ids) < in_mailbox:
            mid_backfill += 1
        # new mail keeps arriving, so later kills still land in a backfill
        _next_second()
        dovecot.fill(user, mailgen.generate(top_up, seed=round_ + 2))
        in_mailbox += top_up
    code, out, err = run_cli(config, env, "sync", "--json")
    assert code == 0, err[-3000:]
    mailbox = header_ids(dovecot.messages(user))
    ids = stored_ids(url)
    assert len(mailbox) == in_mailbox
    assert len(ids) == len(set(ids)) == len(mailbox)
    assert set(ids) == set(mailbox)
    print(f"[faults] backfill: {killed} SIGKILLs ({mid_backfill} mid-backfill, {finished} runs "
          f"finished first); {len(ids)} stored == {len(mailbox)} in mailbox, 0 duplicates")


# -- 2. SIGKILL around sending ----------------------------------------------------

SENDER = """
import json, sys
from service.config import settings_from_mapping
from service.store.db import Store
from service.workflows import outbox
from datetime import timedelta

settings = settings_from_mapping(json.loads(sys.argv[1]))
store = Store(settings.database_url)
outbox.recover_interrupted(settings, store)  # what the restarted service does first
print("go", flush=True)
policy = outbox.SendPolicy(backoff_base=timedelta(0), backoff_cap=timedelta(0), batch_size=5)
outbox.send_due(settings, store, policy_=policy)
print("done", flush=True)
"""


@pytest.fixture
def filing_smtp(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> Iterator[FilingSmtpServer]:
    for address in (SERVICE, OWNER, CLIENT):
        dovecot.add_user(address)
    server = FilingSmtpServer(dovecot, SERVICE, authserv_id=AUTHSERV)
    server.start()
    monkeypatch.setenv(SMTP_PASSWORD_ENV, server.password)
    monkeypatch.setenv(IMAP_PASSWORD_ENV, dovecot.password(SERVICE))
    yield server
    server.stop()


def test_sigkill_around_sending_never_delivers_twice(
    dovecot: Dovecot, filing_smtp: FilingSmtpServer, tmp_path: Path
) -> None:
    kills, per_round = scale(3, 20), scale(4, 5)
    rand, _seed = rng("send kills")
    url = f"sqlite:///{tmp_path / 'state' / 'sg.db'}"
    settings = make_settings(dovecot, filing_smtp, url, save_to_sent="never")
    store = Store(url)
    config = json.dumps(settings.model_dump(mode="json", exclude_none=True))
    # each message waits a little after delivery before the 250: kills land
    # before, during and after DATA
    filing_smtp.delay_next("after_delivery", 0.08, count=10**6)
    queued: dict[int, str] = {}
    killed = post_data = pre_data = 0
    try:
        for round_ in range(kills):
            with store.session() as session:
                for n in range(per_round):
                    msg = compose(from_addr=SERVICE, to=[CLIENT], subject=f"Farewell {round_}.{n}",
                                  text="Thank you for the years together.\n")
                    row = outbox.queue(session, settings, msg, kind="farewell", client="Acme")
                    session.flush()
                    queued[row.id] = row.message_id
            proc = subprocess.Popen(
                [sys.executable, "-c", SENDER, config], cwd=ROOT, env=os.environ.copy(),
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                start_new_session=True,
            )
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "go"
            time.sleep(rand.uniform(0.0, per_round * 0.12))
            if proc.poll() is None:
                killed += 1
            kill_group(proc)
            with store.session() as session:
                for row in session.scalars(
                    select(OutboxMessage).where(OutboxMessage.state == "sending")
                ):
                    if row.error and row.error.startswith(outbox.DATA_MARKER):
                        post_data += 1
                    else:
                        pre_data += 1
        # the service comes back for good
        outbox.recover_interrupted(settings, store)
        fast = outbox.SendPolicy(backoff_base=timedelta(0), backoff_cap=timedelta(0))
        resolved = 0
        for _ in range(4):
            resolved += len(outbox.send_due(settings, store, policy_=fast).resolved)
        with store.session() as session:
            rows = {r.id: (r.state, r.message_id) for r in session.scalars(
                select(OutboxMessage).where(OutboxMessage.id.in_(list(queued))))}
    finally:
        store.dispose()
    counts = delivered_per_id(dovecot.messages(CLIENT))
    asks = [raw for raw in dovecot.messages(OWNER) if b"Was it delivered?" in raw]
    assert max(counts.values(), default=0) <= 1, f"delivered twice: {counts.most_common(3)}"
    assert max(delivered_per_id(dovecot.messages(OWNER)).values(), default=0) <= 1
    sent = [i for i, (state, _mid) in rows.items() if state == "sent"]
    asked = [i for i, (state, _mid) in rows.items() if state == "uncertain"]
    assert len(sent) + len(asked) == len(queued), rows  # nothing left scheduled or sending
    for row_id in sent:
        assert counts[queued[row_id]] == 1, f"row {row_id} sent but not delivered once"
    for row_id in asked:  # DATA began, the server never had it: only the owner can say
        assert counts[queued[row_id]] == 0
    assert len(asks) == len(asked)
    print(f"[faults] sending: {killed} SIGKILLs mid-send ({pre_data} rows cut before DATA, "
          f"{post_data} after DATA began); {len(queued)} queued, {sum(counts.values())} "
          f"deliveries counted in the recipient mailbox, max 1 per Message-ID; "
          f"{resolved} uncertain resolved through the Sent check, {len(asked)} asked the owner")


# -- 3. Dovecot restarted under IDLE; SMTP 4xx, 5xx and down: the daemon carries on


def _daemon_config(path: Path, dovecot: Dovecot, smtp: FilingSmtpServer, url: str) -> Path:
    state = path.parent / "state"
    path.write_text(
        f'[service]\ndatabase = "{url}"\nstate_dir = "{state}"\n'
        'own_domains = ["northwind.test"]\n\n'
        f'[mailbox]\nhost = "{dovecot.host}"\nport = {dovecot.imap_port}\nsecurity = "none"\n'
        f'username = "{SERVICE}"\npassword_env = "{IMAP_PASSWORD_ENV}"\ntimeout = 5\n\n'
        f'[smtp]\nhost = "{smtp.host}"\nport = {smtp.port}\nsecurity = "none"\n'
        f'username = "{smtp.username}"\npassword_env = "{SMTP_PASSWORD_ENV}"\n'
        f'from_address = "{SERVICE}"\nsave_to_sent = "never"\ntimeout = 3\n\n'
        '[schedule]\nsend_window = "00:00-24:00"\nsend_days = "mon-sun"\n\n'
        f'[[clients]]\nname = "Acme"\ndomains = ["acme.test"]\nowner = "{OWNER}"\n',
        encoding="utf-8",
    )
    return path


def test_daemon_survives_imap_restart_and_smtp_faults(
    dovecot: Dovecot, filing_smtp: FilingSmtpServer, tmp_path: Path
) -> None:
    from tests.integration.test_daemon_env import Daemon, NotifyListener, cli_argv, daemon_env

    url = f"sqlite:///{tmp_path / 'state' / 'saygoodbye.db'}"
    config = _daemon_config(tmp_path / "config.toml", dovecot, filing_smtp, url)
    settings = make_settings(dovecot, filing_smtp, url, save_to_sent="never")
    notify = NotifyListener()
    env = daemon_env(notify, **{IMAP_PASSWORD_ENV: dovecot.password(SERVICE),
                                SMTP_PASSWORD_ENV: filing_smtp.password})
    daemon = Daemon(cli_argv(config, "run"), env)
    serial = iter(range(1, 1000))
    store: Store | None = None

    def arrive() -> int:
        """New client mail: stored through IDLE, and it wakes the outbox."""
        n = next(serial)
        dovecot.deliver(SERVICE, mailgen.message(f"Status {n}", message_id=f"<f3-{n}@acme.test>"))
        return n

    def row(row_id: int) -> OutboxMessage:
        assert store is not None
        with store.session() as session:
            found = session.get(OutboxMessage, row_id)
            assert found is not None
            return found

    def queue(subject: str) -> int:
        assert store is not None
        with store.session() as session:
            msg = compose(from_addr=SERVICE, to=[OWNER], subject=subject, text="Heads up.\n")
            return outbox.queue(session, settings, msg, kind="alert", owner=OWNER).id

    def due_now(row_id: int) -> None:
        """The backoff has passed (the daemon's clock is not ours to move)."""
        assert store is not None
        with store.session() as session:
            found = session.get(OutboxMessage, row_id)
            assert found is not None
            found.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)

    try:
        notify.wait_for("READY", timeout=60)
        daemon.wait_log("event=imap_watch mode=idle")
        store = Store(url, migrate_schema=False)
        arrive()
        wait_until(lambda: len(stored_ids(url)) == 1, 30, "first message stored")

        # IMAP: the server stops under IDLE, stays away, comes back
        dovecot.stop()
        time.sleep(2.0)
        dovecot.start()
        arrive()
        wait_until(lambda: len(stored_ids(url)) == 2, 60, "message after the restart stored")
        reconnect = daemon.wait_log("event=imap_reconnect")

        # SMTP 4xx: retried, then sent
        filing_smtp.fail_next("mail", 451, text="4.7.1 Greylisted, come back later")
        soft = queue("Alert: 4xx")
        arrive()
        wait_until(lambda: row(soft).attempts >= 1 and row(soft).state != "sending", 30, "the 4xx attempt")
        assert row(soft).state == "scheduled" and "Greylisted" in (row(soft).error or "")
        due_now(soft)
        arrive()
        wait_until(lambda: row(soft).state == "sent", 30, "the retried send")

        # SMTP 5xx: failed, with the server's words
        filing_smtp.fail_next("rcpt", 550, text="5.2.1 Mailbox disabled for this recipient")
        hard = queue("Alert: 5xx")
        arrive()
        wait_until(lambda: row(hard).state == "failed", 30, "the 5xx failure")

        # SMTP down: the daemon keeps running, sends once it is back
        filing_smtp.stop()
        down = queue("Alert: server down")
        arrive()
        wait_until(lambda: row(down).attempts >= 1 and row(down).state != "sending", 30, "the attempt while SMTP is down")
        assert row(down).state == "scheduled" and daemon.proc.poll() is None
        down_error = row(down).error
        filing_smtp.start()
        due_now(down)
        arrive()
        wait_until(lambda: row(down).state == "sent", 30, "the send after SMTP came back")

        listing = subprocess.run(cli_argv(config, "outbox", "--json"), cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=60, check=True)
        by_id = {item["id"]: item for item in json.loads(listing.stdout)}
        assert by_id[hard]["state"] == "failed"
        assert "Mailbox disabled for this recipient" in by_id[hard]["error"]
        assert by_id[soft]["state"] == by_id[down]["state"] == "sent"
        counts = delivered_per_id(dovecot.messages(OWNER))
        assert counts[row(soft).message_id] == counts[row(down).message_id] == 1
        assert counts[row(hard).message_id] == 0
        assert daemon.proc.poll() is None
        assert daemon.stop(timeout=30) == 0
        assert not daemon.logs("Traceback")
    finally:
        daemon.kill()
        notify.close()
        if store is not None:
            store.dispose()
    print(f"[faults] daemon: IMAP restart under IDLE survived ({reconnect.strip()[:160]}); "
          f"SMTP 451 retried then sent; 550 failed with {by_id[hard]['error']!r}; "
          f"SMTP down -> {down_error!r}, sent after it returned; daemon exit 0")

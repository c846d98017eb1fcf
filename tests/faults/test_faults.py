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
    kills = scale(4, 50)
    initial, top_up = scale(120, 600), scale(80, 120)
    rand, _seed = rng("backfill kills")
    user = dovecot.add_user(TEAM, "team-pass")
    dovecot.fill(user, mailgen.generate(initial, seed=1))
    in_mailbox = initial
    db = tmp_path / "state" / "sg.db"
    url = f"sqlite:///{db}"
    config = write_config(tmp_path / "config.toml", dovecot, user, url,
                          extra=f"batch_size = {scale(10, 25)}")
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
    code, _out, err = run_cli(config, env, "sync", "--json")
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
    killed = pre_data = 0
    post_data: set[int] = set()  # rows cut after DATA began: `uncertain` on restart
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
                        post_data.add(row.id)
                    else:
                        pre_data += 1
        # the service comes back for good
        outbox.recover_interrupted(settings, store)
        fast = outbox.SendPolicy(backoff_base=timedelta(0), backoff_cap=timedelta(0))
        for _ in range(4):
            outbox.send_due(settings, store, policy_=fast)
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
    resolved = len([i for i in post_data if rows[i][0] == "sent"])
    print(f"[faults] sending: {killed} SIGKILLs mid-send ({pre_data} rows cut before DATA, "
          f"{len(post_data)} after DATA began); {len(queued)} queued, {sum(counts.values())} "
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

    def _settled(row_id: int) -> bool:
        """Tried at least once and no longer in flight."""
        found = row(row_id)
        return found.attempts >= 1 and found.state != "sending"

    def due_now(row_id: int) -> None:
        """The backoff has passed (the daemon's clock is not ours to move)."""
        assert store is not None
        with store.session() as session:
            found = session.get(OutboxMessage, row_id)
            assert found is not None
            found.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)

    # The first mail waits in the mailbox before the start: mail delivered within
    # milliseconds of "imap_watch mode=idle" was seen missed for over 60 s (2 runs
    # of 5 under load), a watcher race reported separately, not this suite's subject.
    arrive()
    daemon = Daemon(cli_argv(config, "run"), env)
    try:
        notify.wait_for("READY", timeout=60)
        daemon.wait_log("event=imap_watch mode=idle")
        store = Store(url, migrate_schema=False)
        wait_until(lambda: len(stored_ids(url)) == 1, 60, "first message stored")

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
        wait_until(lambda: _settled(soft), 30, "the 4xx attempt")
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
        wait_until(lambda: _settled(down), 30, "the attempt while SMTP is down")
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
    except AssertionError:
        print("\n".join(daemon.lines[-60:]))  # what the daemon said, for the failure report
        raise
    finally:
        daemon.kill()
        notify.close()
        if store is not None:
            store.dispose()
    print(f"[faults] daemon: IMAP restart under IDLE survived ({reconnect.strip()[:160]}); "
          f"SMTP 451 retried then sent; 550 failed with {by_id[hard]['error']!r}; "
          f"SMTP down -> {down_error!r}, sent after it returned; daemon exit 0")


# -- 4. The database goes away or is locked ------------------------------------


def test_postgres_connections_terminated_during_sync_lose_nothing(
    dovecot: Dovecot, postgres_url: str, postgres_server: str, tmp_path: Path
) -> None:
    total = scale(200, 1500)
    rand, _seed = rng("postgres terminations")
    user = dovecot.add_user(TEAM, "team-pass")
    dovecot.fill(user, mailgen.generate(total, seed=21))
    config = write_config(tmp_path / "config.toml", dovecot, user, postgres_url,
                          extra="batch_size = 25")
    env = cli_env(dovecot, user)
    database = postgres_url.rsplit("/", 1)[1]
    stop = threading.Event()
    terminated: list[int] = []

    def terminator() -> None:
        """Cut every connection to the test database now and then (never the server)."""
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            while not stop.wait(rand.uniform(0.3, 1.0)):
                cut = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
                ).fetchone()
                terminated.append(int(cut[0]) if cut else 0)

    thread = threading.Thread(target=terminator, daemon=True)
    thread.start()
    runs = failures = 0
    try:
        for _ in range(scale(8, 30)):  # what systemd's Restart=on-failure would do
            runs += 1
            code, _out, err = run_cli(config, env, "sync", "--json")
            if code == 0 and len(stored_ids(postgres_url)) == total:
                break
            failures += code != 0
    finally:
        stop.set()
        thread.join(10)
    code, out, err = run_cli(config, env, "sync", "--json")  # after the outage: nothing new
    assert code == 0, err[-3000:]
    assert json.loads(out)["stored"] == 0
    ids = stored_ids(postgres_url)
    mailbox = header_ids(dovecot.messages(user))
    assert len(ids) == len(set(ids)) == len(mailbox) == total
    assert set(ids) == set(mailbox)
    print(f"[faults] postgres: {sum(terminated)} backend connections terminated over "
          f"{len(terminated)} cuts; {runs} sync runs ({failures} exited non-zero, re-run); "
          f"{len(ids)} stored == {total} in mailbox, 0 duplicates")


def test_sqlite_write_lock_is_waited_out(dovecot: Dovecot, tmp_path: Path) -> None:
    total, hold = 60, 2.0
    user = dovecot.add_user(TEAM, "team-pass")
    dovecot.fill(user, mailgen.generate(total, seed=31))
    db = tmp_path / "state" / "sg.db"
    url = f"sqlite:///{db}"
    Store(url).dispose()  # the schema exists; the lock is on the data
    config = write_config(tmp_path / "config.toml", dovecot, user, url)
    env = cli_env(dovecot, user)
    blocker = sqlite3.connect(db, isolation_level=None, timeout=5)
    blocker.execute("BEGIN EXCLUSIVE")
    began = time.monotonic()
    proc = start_cli(config, env, "sync", "--json")
    try:
        time.sleep(hold)
        assert proc.poll() is None, "the sync gave up while the database was locked"
        assert _count(db) == 0
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    out, err = proc.communicate(timeout=120)
    took = time.monotonic() - began
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out)["stored"] == total
    assert sorted(stored_ids(url)) == sorted(header_ids(dovecot.messages(user)))
    print(f"[faults] sqlite: exclusive lock held {hold:.0f} s during a sync; it waited "
          f"(busy_timeout) and stored all {total} ({took:.1f} s in all)")


# -- 5. Hostile input -----------------------------------------------------------

MALFORMED = ROOT / "tests" / "data" / "mail" / "malformed"


def _head(n: int, subject: bytes = b"hostile") -> bytes:
    return (b"From: Ana <ana@acme.test>\r\nTo: team@northwind.test\r\n"
            b"Date: Mon, 3 Mar 2025 10:00:00 +0000\r\n"
            b"Message-ID: <hostile-%d@acme.test>\r\nSubject: " % n + subject + b"\r\n")


def hostile_corpus(zip_bomb_mb: int) -> Iterator[tuple[str, bytes]]:
    """(name, raw) of messages built to hurt a parser; generated here, never committed."""
    # a 1 MB header, folded, and a 256 kB one on a single line
    folded = b"\r\n ".join([b"x" * 70] * (1024 * 1024 // 73))
    yield "huge_header", _head(1) + b"X-Huge: " + folded + b"\r\n\r\nShort body.\r\n"
    yield "huge_unfolded_subject", _head(2, b"y" * 256 * 1024) + b"\r\nBody.\r\n"
    # 200 levels of multipart nesting
    depth, parts = 200, []
    for level in range(depth):
        parts.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n'
                     % (level, level))
    inner = b"Content-Type: text/plain\r\n\r\nDeep inside.\r\n"
    closing = b"".join(b"\r\n--b%d--\r\n" % level for level in reversed(range(depth)))
    yield "nested_200", _head(3) + b"MIME-Version: 1.0\r\n" + b"".join(parts) + inner + closing
    # zip-bomb-like: a tiny, highly compressible encoding of many MB of zeros
    line = b"A" * 76 + b"\r\n"  # 57 zero bytes per line
    lines = zip_bomb_mb * 1024 * 1024 // 57
    yield "zero_bomb", (
        _head(4) + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="z"\r\n\r\n'
        b"--z\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        b'--z\r\nContent-Type: application/octet-stream; name="zeros.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + line * lines + b"--z--\r\n"
    )
    # a text part that decodes to megabytes of one repeated word
    word = b"d29yZCB3b3JkIHdvcmQg" * 3 + b"\r\n"  # "word word word " x 3, base64
    yield "text_bomb", (
        _head(5) + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + word * 100_000
    )
    bad = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc"
    yield "invalid_utf8", (
        b"From: " + bad + b" <ana@acme.test>\r\nTo: team@northwind.test\r\n"
        b"Message-ID: <hostile-6@acme.test>\r\nSubject: " + bad + b"\r\n"
        b"Date: " + bad + b"\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="' + bad + b'"\r\n\r\n--' + bad
        + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + bad * 50 + b"\r\n--" + bad
        + b'\r\nContent-Type: text/html; charset="\xff"\r\nContent-Disposition: attachment; '
        b'filename="' + bad + b'.html"\r\n\r\n<p>' + bad + b"</p>\r\n--" + bad + b"--\r\n"
    )
    yield "nul_bytes", (
        _head(7, b"nul\x00in\x00subject") + b"X-Nul: a\x00b\r\n\r\nBody\x00with\x00NULs.\r\n"
    )
    yield "headers_only", _head(8)[:-2]  # not even the blank line
    yield "charset_lies", (
        _head(9) + b"Content-Type: text/plain; charset=x-no-such-charset\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=E9t=E9 =\r\n"
    )
    for n, path in enumerate(sorted(MALFORMED.glob("*.eml"))):
        raw = path.read_bytes()
        if b"message-id:" not in raw.lower():  # each must be findable after the sync
            raw = b"Message-ID: <malformed-%d@corpus.test>\r\n" % n + raw
        yield f"corpus:{path.name}", raw


def test_hostile_input_is_stored_with_bounded_memory(dovecot: Dovecot, tmp_path: Path) -> None:
    corpus = list(hostile_corpus(zip_bomb_mb=50))
    user = dovecot.add_user(TEAM, "team-pass")
    dovecot.deliver(user, mailgen.message("before", message_id="<calm-1@acme.test>"))
    _next_second()
    dovecot.fill(user, (raw for _name, raw in corpus))
    dovecot.deliver(user, mailgen.message("after", message_id="<calm-2@acme.test>"))
    in_mailbox = len(corpus) + 2
    url = f"sqlite:///{tmp_path / 'state' / 'sg.db'}"
    config = write_config(tmp_path / "config.toml", dovecot, user, url)
    began = time.monotonic()
    code, out, err = run_cli(config, cli_env(dovecot, user), "sync", "--json",
                             measure_rss=True, timeout=120)
    took = time.monotonic() - began
    assert code == 0, err[-3000:]
    peak = maxrss_mb(err)
    assert peak < 400, f"peak RSS {peak:.0f} MB"
    result = json.loads(out)
    assert result["seen"] == in_mailbox
    store = Store(url, migrate_schema=False)
    try:
        with store.session() as session:
            rows = session.execute(select(Message.message_id, Message.defects)).all()
    finally:
        store.dispose()
    assert len(rows) == in_mailbox, f"{len(rows)} stored of {in_mailbox}"
    with_defects = [mid for mid, defects in rows if defects]
    assert {"<calm-1@acme.test>", "<calm-2@acme.test>"} <= {mid for mid, _d in rows}
    sizes = sorted(len(raw) for _n, raw in corpus)
    print(f"[faults] hostile input: {len(corpus)} inputs tried ({len(corpus) - 9} from the "
          f"malformed corpus; largest {sizes[-1] / 1e6:.0f} MB raw), {len(rows)} of {in_mailbox} "
          f"stored, {len(with_defects)} with defects listed; peak RSS {peak:.0f} MB; "
          f"sync {took:.1f} s")

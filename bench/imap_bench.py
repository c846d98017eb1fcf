"""IMAP ingest benchmark against a private Dovecot: speed, no-op cost, memory, latency.

    python bench/imap_bench.py            # N = 1k, 10k and 100k (about 15 minutes)
    python bench/imap_bench.py --quick    # N = 1k and 5k (a minute or two)
    python bench/imap_bench.py --sizes 10000

Reports, per N: msgs/s of fetch + parse + analysis alone vs the full sync into
SQLite (and their ratio), the cost of finding no new mail (the running
watcher's pass and whole wake-up, and a whole `sync_once` with its own
connection), the peak RSS of the syncing process, and the arrival-to-row
latency of `saygoodbye run` on IDLE.
Each measurement runs in its own process so RSS and caches do not leak across.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD_ENV = "SG_BENCH_IMAP_PASSWORD"
USER = "team@northwind.test"
PASSWORD = "bench-pass"


CLIENTS = [
    {"name": "Acme", "domains": ["acme.test"], "owner": "olga@northwind.test"},
    {"name": "Globex", "domains": ["globex.test"], "owner": "paul@northwind.test"},
    {"name": "Initech", "domains": ["initech.test"], "owner": "olga@northwind.test"},
    {"name": "Umbrella", "domains": ["umbrella.test"], "owner": "quinn@northwind.test"},
]


def mailbox_for(port: int, batch_size: int = 200) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": USER,
        "password_env": PASSWORD_ENV,
        "batch_size": batch_size,
    }


def settings_for(port: int, database: str, batch_size: int = 200) -> Any:
    from service.config import settings_from_mapping

    return settings_from_mapping(
        {
            "service": {"database": database},
            "mailbox": mailbox_for(port, batch_size),
            "clients": CLIENTS,
        }
    )


def daemon_config(path: Path, port: int, database: str, state_dir: Path) -> None:
    """The same settings as a config file, for `saygoodbye run`."""
    lines = ["[service]", f"database = {json.dumps(database)}",
             f"state_dir = {json.dumps(str(state_dir))}", "", "[mailbox]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in mailbox_for(port).items()]
    for client in CLIENTS:
        lines += ["", "[[clients]]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in client.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- child processes ------------------------------------------------------------


def child_analysis_only(port: int) -> dict[str, Any]:
    """Fetch + parse + analysis, no database: the ceiling the full sync is held to."""
    from service.directory import Directory
    from service.ingest import BatchStats, Ingestor
    from service.mail.imap import connect, sync_folders

    class NoStore(Ingestor):
        def checkpoint(self, folder: str) -> None:
            return None

        def ingest_batch(self, items, *, source, checkpoint=None, rows=None):  # type: ignore[override]
            rows = self.prepare_many(items, source) if rows is None else rows
            return BatchStats(seen=len(rows))

    settings = settings_for(port, "sqlite://")
    with NoStore(None, Directory.from_settings(settings)) as ingestor:  # type: ignore[arg-type]
        client = connect(settings.mailbox)
        started = time.perf_counter()
        result = sync_folders(client, ["INBOX"], ingestor, batch_size=settings.mailbox.batch_size)
        seconds = time.perf_counter() - started
        client.logout()
    return {"seen": result.seen, "seconds": seconds, "rss_mb": peak_rss_mb()}


def child_full(port: int, database: str) -> dict[str, Any]:
    """The real `sync`: fetch, parse, analyse, store with checkpoints."""
    from service.directory import Directory
    from service.ingest import Ingestor
    from service.mail.imap import sync_once
    from service.store.db import Store

    settings = settings_for(port, database)
    store = Store(database)
    with Ingestor(store, Directory.from_settings(settings)) as ingestor:
        started = time.perf_counter()
        result = sync_once(settings, ingestor)
        seconds = time.perf_counter() - started
        rss = peak_rss_mb()
        # no new mail, as `saygoodbye sync` meets it: connect, log in, find Sent, look
        noop_full = []
        for _ in range(5):
            t = time.perf_counter()
            sync_once(settings, ingestor)
            noop_full.append(time.perf_counter() - t)
    # and all of `saygoodbye sync` (no SMTP configured), health refresh included: the
    # first pass after the backfill assesses every client; a later one with no new mail
    # re-assesses only clients not assessed within the hour (none here).
    from service.pipeline import live_pass

    t = time.perf_counter()
    live_pass(settings, store, send=False)
    first_cli = time.perf_counter() - t
    t = time.perf_counter()
    live_pass(settings, store, send=False)
    noop_cli = time.perf_counter() - t
    return {
        "stored": result.stored,
        "seconds": seconds,
        "rss_mb": rss,
        "workers_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "noop_sync_ms": statistics.median(noop_full) * 1000,
        "noop_cli_ms": noop_cli * 1000,
        "first_cli_ms": first_cli * 1000,
        **watcher_rounds(settings, store),
    }


def watcher_rounds(settings: Any, store: Any, rounds: int = 15) -> dict[str, float]:
    """No new mail, as the daemon meets it: the running watcher is woken and syncs.

    `pass` is the sync itself (MailboxWatcher reports it to on_sync); `round` is
    everything a wake-up costs before the watcher waits again, IDLE re-issued
    included: what an IDLE renewal or a wake-up after sending mail costs.
    """
    from service.directory import Directory
    from service.ingest import Ingestor
    from service.mail.imap import MailboxWatcher

    passes: list[float] = []
    spent: list[float] = []
    with Ingestor(store, Directory.from_settings(settings), workers=1) as ingestor:
        watcher = MailboxWatcher(settings, ingestor, on_sync=lambda r: passes.append(r.seconds))
        watcher.start()
        try:
            for i in range(rounds + 1):
                deadline = time.monotonic() + 30
                while watcher.round_seconds is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"watcher did not settle: {watcher.last_error}")
                    time.sleep(0.002)
                if i:  # the first round connects and opens the folder
                    spent.append(watcher.round_seconds)
                watcher.round_seconds = None
                watcher.wake()
        finally:
            watcher.stop()
    return {
        "noop_pass_ms": statistics.median(passes[1 : rounds + 1]) * 1000,
        "noop_round_ms": statistics.median(spent) * 1000,
    }


def child_idle_latency(port: int, lmtp_port: int, database: str, samples: int) -> dict[str, Any]:
    """`saygoodbye run` on IDLE: deliver by LMTP, time until the row is committed.

    Two series. `quiet`: each message arrives once the daemon has finished
    with the previous one (its health refresh committed), as mail usually
    comes. `burst`: the next message follows 0.2 s after the previous row, so
    it meets the daemon's after-mail work (health refresh) still running.
    The first message of a run is reported apart: it also pays the warm-up
    (analysis models, the client's known addresses).
    """
    import smtplib
    import threading

    from sqlalchemy import func, select

    from service.store.db import Store
    from service.store.models import ClientState, Message
    from tests.rig import mailgen

    work = Path(tempfile.mkdtemp(prefix="sg-bench-daemon-"))
    config = work / "config.toml"
    daemon_config(config, port, database, work / "state")
    store = Store(database)

    def newest() -> tuple[int, datetime | None]:
        # max() reads one index entry; count(*) over 100k rows every 2 ms would
        # compete with the daemon for the CPU and distort what is measured.
        with store.session() as session:
            top = int(session.scalar(select(func.max(Message.id))) or 0)
            refreshed = session.scalar(select(func.max(ClientState.computed_at)))
        return top, refreshed

    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYGOODBYE")}
    env["PYTHONUNBUFFERED"] = "1"
    log_lines: list[str] = []
    daemon = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "--config", str(config), "run"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert daemon.stdout is not None
    out = daemon.stdout
    threading.Thread(
        target=lambda: log_lines.extend(line.decode(errors="replace") for line in out),
        daemon=True,
    ).start()

    def wait_for(predicate: Any, what: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daemon: no {what}\n" + "".join(log_lines[-30:]))
            time.sleep(0.002)

    refreshed_before: list[datetime | None] = [None]

    def deliver_and_wait(i: int) -> float:
        before, refreshed_before[0] = newest()
        raw = mailgen.message(f"latency {i}")
        started = time.perf_counter()
        lmtp = smtplib.LMTP("127.0.0.1", lmtp_port)
        lmtp.sendmail("ana@acme.test", [USER], raw)
        lmtp.quit()
        wait_for(lambda: newest()[0] > before, "new row")
        return time.perf_counter() - started

    def settled() -> bool:
        """The daemon's health refresh after the last message has committed."""
        refreshed, previous = newest()[1], refreshed_before[0]
        return refreshed is not None and (previous is None or refreshed > previous)

    quiet: list[float] = []
    burst: list[float] = []
    try:
        wait_for(lambda: any("event=imap_watch mode=idle" in line for line in log_lines),
                 "IDLE watch")
        time.sleep(3.0)  # the first pass and the retention sweep at start
        first = deliver_and_wait(0)
        for i in range(1, samples + 1):
            wait_for(settled, "health refresh after the previous mail")
            quiet.append(deliver_and_wait(i))
        for i in range(samples):
            time.sleep(0.2)
            burst.append(deliver_and_wait(samples + 1 + i))
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        store.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "first_ms": first * 1000,
        "median_ms": statistics.median(quiet) * 1000,
        "max_ms": max(quiet) * 1000,
        "burst_median_ms": statistics.median(burst) * 1000,
        "burst_max_ms": max(burst) * 1000,
    }


def run_child(*args: str) -> dict[str, Any]:
    env = {**os.environ, PASSWORD_ENV: PASSWORD}
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
    return json.loads(out.decode().strip().splitlines()[-1])


# -- driver ---------------------------------------------------------------------


def bench(sizes: Sequence[int], latency_samples: int) -> list[dict[str, Any]]:
    from tests.rig import mailgen
    from tests.rig.dovecot import Dovecot

    rows = []
    with Dovecot() as server, tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            server.reset()
            server.add_user(USER, PASSWORD)
            t = time.perf_counter()
            server.fill(USER, mailgen.generate(n, seed=n))
            fill_s = time.perf_counter() - t
            with server.session(USER) as client:  # let Dovecot index once, outside timings
                client.select_folder("INBOX", readonly=True)
            print(f"N={n}: mailbox filled in {fill_s:.1f}s", file=sys.stderr)
            alone = run_child("analysis", str(server.imap_port))
            print(f"N={n}: analysis alone {alone}", file=sys.stderr)
            database = f"sqlite:///{tmp}/bench-{n}.db"
            full = run_child("full", str(server.imap_port), database)
            print(f"N={n}: full {full}", file=sys.stderr)
            latency = run_child(
                "idle",
                str(server.imap_port),
                str(server.lmtp_port),
                database,
                str(latency_samples),
            )
            rows.append({"n": n, "alone": alone, "full": full, "latency": latency})
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="IMAP ingest against a local Dovecot (SQLite store)")
    for column in (
        "N",
        "fetch+parse+analysis msg/s",
        "full ingest msg/s",
        "ratio",
        "no new mail: daemon pass / round ms",
        "no new mail: sync_once / `saygoodbye sync` ms (first after backfill)",
        "peak RSS MB (main / worker)",
        "run: LMTP→row ms, quiet median / max",
        "burst median / max",
        "first",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        alone = row["alone"]["seen"] / row["alone"]["seconds"]
        full = row["full"]["stored"] / row["full"]["seconds"]
        latency = row["latency"]
        table.add_row(
            f"{row['n']:,}",
            f"{alone:,.0f}",
            f"{full:,.0f}",
            f"{full / alone:.2f}",
            f"{row['full']['noop_pass_ms']:.1f} / {row['full']['noop_round_ms']:.1f}",
            f"{row['full']['noop_sync_ms']:.1f} / {row['full']['noop_cli_ms']:,.0f} "
            f"({row['full']['first_cli_ms']:,.0f})",
            f"{row['full']['rss_mb']:.0f} / {row['full']['workers_rss_mb']:.0f}",
            f"{latency['median_ms']:.0f} / {latency['max_ms']:.0f}",
            f"{latency['burst_median_ms']:.0f} / {latency['burst_max_ms']:.0f}",
            f"{latency['first_ms']:.0f}",
        )
    Console(width=max(Console().width, 180)).print(table)
    if len(rows) >= 2:
        small, large = rows[0]["full"], rows[-1]["full"]
        print(
            f"no new mail {rows[-1]['n']:,} vs {rows[0]['n']:,}: "
            f"daemon pass {large['noop_pass_ms'] / small['noop_pass_ms']:.2f}x, "
            f"round {large['noop_round_ms'] / small['noop_round_ms']:.2f}x, "
            f"sync_once {large['noop_sync_ms'] / small['noop_sync_ms']:.2f}x; "
            f"peak RSS {rows[-1]['n']:,} vs {rows[-2]['n']:,}: "
            f"{large['rss_mb'] / rows[-2]['full']['rss_mb']:.2f}x"
        )
    print(f"cores: {os.cpu_count()}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 1k and 5k")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--json", action="store_true", help="print raw results as JSON")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "analysis":
            out = child_analysis_only(int(rest[0]))
        elif kind == "full":
            out = child_full(int(rest[0]), rest[1])
        else:
            out = child_idle_latency(int(rest[0]), int(rest[1]), rest[2], int(rest[3]))
        print(json.dumps(out))
        return 0
    sizes = args.sizes or ([1000, 5000] if args.quick else [1_000, 10_000, 100_000])
    rows = bench(sizes, latency_samples=5 if args.quick else 10)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

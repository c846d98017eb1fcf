"""IMAP ingest benchmark against a private Dovecot: speed, no-op cost, memory, latency.

    python bench/imap_bench.py            # N = 10k and 100k (minutes)
    python bench/imap_bench.py --quick    # N = 1k and 5k (seconds)

Reports, per N: msgs/s of fetch + parse + analysis alone vs the full sync into
SQLite (and their ratio), the time of a sync that finds no new mail, the peak
RSS of the syncing process, and the arrival-to-row latency on IDLE.
Each measurement runs in its own process so RSS and caches do not leak across.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD_ENV = "SG_BENCH_IMAP_PASSWORD"
USER = "team@northwind.test"
PASSWORD = "bench-pass"


def settings_for(port: int, database: str, batch_size: int = 200) -> Any:
    from service.config import settings_from_mapping

    return settings_from_mapping(
        {
            "service": {"database": database},
            "mailbox": {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "username": USER,
                "password_env": PASSWORD_ENV,
                "batch_size": batch_size,
            },
            "clients": [
                {"name": "Acme", "domains": ["acme.test"], "owner": "olga@northwind.test"},
                {"name": "Globex", "domains": ["globex.test"], "owner": "paul@northwind.test"},
                {"name": "Initech", "domains": ["initech.test"], "owner": "olga@northwind.test"},
                {"name": "Umbrella", "domains": ["umbrella.test"], "owner": "quinn@northwind.test"},
            ],
        }
    )


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

        def ingest_batch(self, items, *, source, checkpoint=None):  # type: ignore[override]
            rows = self.prepare_many(items, source)
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
    from service.mail.imap import connect, sync_folders, sync_once
    from service.store.db import Store

    settings = settings_for(port, database)
    store = Store(database)
    with Ingestor(store, Directory.from_settings(settings)) as ingestor:
        started = time.perf_counter()
        result = sync_once(settings, ingestor)
        seconds = time.perf_counter() - started
        rss = peak_rss_mb()
        # no new mail: the daemon's pass on an open connection, and a whole sync_once
        client = connect(settings.mailbox)
        noop_pass = []
        for _ in range(20):
            t = time.perf_counter()
            sync_folders(client, ["INBOX", "Sent"], ingestor)
            noop_pass.append(time.perf_counter() - t)
        client.logout()
        noop_full = []
        for _ in range(5):
            t = time.perf_counter()
            sync_once(settings, ingestor)
            noop_full.append(time.perf_counter() - t)
    return {
        "stored": result.stored,
        "seconds": seconds,
        "rss_mb": rss,
        "workers_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "noop_pass_ms": statistics.median(noop_pass) * 1000,
        "noop_sync_ms": statistics.median(noop_full) * 1000,
    }


def child_idle_latency(port: int, lmtp_port: int, database: str, samples: int) -> dict[str, Any]:
    """Deliver by LMTP while the watcher IDLEs; time until the row is committed."""
    import smtplib

    from sqlalchemy import func, select

    from service.directory import Directory
    from service.ingest import Ingestor
    from service.mail.imap import MailboxWatcher
    from service.store.db import Store
    from service.store.models import Message
    from tests.rig import mailgen

    settings = settings_for(port, database)
    store = Store(database)

    def count() -> int:
        # max(id) reads one index entry; count(*) over 100k rows every 2 ms would
        # compete with the watcher for the CPU and distort what is measured.
        with store.session() as session:
            return int(session.scalar(select(func.max(Message.id))) or 0)

    latencies = []
    with Ingestor(store, Directory.from_settings(settings)) as ingestor:
        watcher = MailboxWatcher(settings, ingestor)
        watcher.start()
        while watcher.syncs == 0:
            time.sleep(0.01)
        time.sleep(0.3)
        for i in range(samples):
            before = count()
            raw = mailgen.message(f"latency {i}")
            started = time.perf_counter()
            lmtp = smtplib.LMTP("127.0.0.1", lmtp_port)
            lmtp.sendmail("ana@acme.test", [USER], raw)
            lmtp.quit()
            while count() == before:
                time.sleep(0.002)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.05)
        watcher.stop()
    return {"median_ms": statistics.median(latencies) * 1000, "max_ms": max(latencies) * 1000}


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
        "no-new-mail pass ms",
        "no-new-mail sync_once ms",
        "peak RSS MB (main / worker)",
        "IDLE→row ms (median / max)",
    ):
        table.add_column(column, justify="right")
    for row in rows:
        alone = row["alone"]["seen"] / row["alone"]["seconds"]
        full = row["full"]["stored"] / row["full"]["seconds"]
        table.add_row(
            f"{row['n']:,}",
            f"{alone:,.0f}",
            f"{full:,.0f}",
            f"{full / alone:.2f}",
            f"{row['full']['noop_pass_ms']:.1f}",
            f"{row['full']['noop_sync_ms']:.1f}",
            f"{row['full']['rss_mb']:.0f} / {row['full']['workers_rss_mb']:.0f}",
            f"{row['latency']['median_ms']:.0f} / {row['latency']['max_ms']:.0f}",
        )
    Console().print(table)
    if len(rows) >= 2:
        small, large = rows[0], rows[-1]
        print(
            f"no-new-mail pass {large['n']:,}/{small['n']:,}: "
            f"{large['full']['noop_pass_ms'] / small['full']['noop_pass_ms']:.2f}x; "
            f"peak RSS {large['full']['rss_mb'] / small['full']['rss_mb']:.2f}x"
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
    sizes = args.sizes or ([1000, 5000] if args.quick else [10_000, 100_000])
    rows = bench(sizes, latency_samples=10 if args.quick else 20)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

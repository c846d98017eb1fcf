"""Offline ingest benchmark: parse + TextBlob alone against the full pipeline into SQLite.

Each phase runs in its own process so peak RSS is measured cleanly (parent and
worker processes separately). Run through `make bench` or:

    .venv/bin/python -m bench.offline_bench --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.corpus import write_mbox

OUT = Path(__file__).with_name("out")


def _analyse_batch(batch: list[bytes], library: bool = True) -> int:
    """Parse + TextBlob sentiment per message.

    ``library``: TextBlob's own PatternAnalyzer (the issue's baseline). Otherwise the
    pipeline's service.analysis.tone, which computes the same two numbers bit for bit
    with service.analysis.sentiment_fast at ~1/6 of the CPU: the "strict" comparison
    then sets the pipeline against its own parse + tone on the same workers.
    """
    from textblob.en import sentiment

    from service.analysis.tone import tone
    from service.mail.parse import parse_message

    score = sentiment if library else tone
    for raw in batch:
        parsed = parse_message(raw)
        if not parsed.auto_generated:
            score(parsed.new_text)
    return len(batch)


def phase_analyse(mbox: Path, workers: int, batch_size: int = 500,
                  library: bool = True) -> dict[str, float]:
    """Parse + TextBlob only: in this one process (workers=1, the issue's baseline), or
    with the same batching and worker window as ingest (the stricter comparison)."""
    import multiprocessing

    from service.mail.source import iter_mbox

    started = time.perf_counter()
    if workers <= 1:
        done = 0
        batch: list[bytes] = []
        for item in iter_mbox(mbox):
            batch.append(item.raw)
            if len(batch) == batch_size:
                done += _analyse_batch(batch, library)
                batch = []
        done += _analyse_batch(batch, library)
        seconds = time.perf_counter() - started
        return {"messages": done, "seconds": seconds, "rate": done / seconds}
    done = 0
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    window: deque = deque()
    batch: list[bytes] = []
    for item in iter_mbox(mbox):
        batch.append(item.raw)
        if len(batch) == batch_size:
            window.append(pool.submit(_analyse_batch, batch, library))
            batch = []
            if len(window) > workers:
                done += window.popleft().result()
    if batch:
        window.append(pool.submit(_analyse_batch, batch, library))
    while window:
        done += window.popleft().result()
    pool.shutdown()
    seconds = time.perf_counter() - started
    return {"messages": done, "seconds": seconds, "rate": done / seconds}


def phase_ingest(mbox: Path, workers: int) -> dict[str, float]:
    from service.app import open_store, sync_offline
    from service.config import settings_from_mapping

    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_from_mapping({
            "service": {"database": f"sqlite:///{tmp}/bench.db",
                        "own_domains": ["northwind.studio"]},
            "clients": [
                {"name": f"Client {i}", "domains": [f"client{i}.example"],
                 "owner": "maria@northwind.studio", "monthly_revenue": 1000 + i}
                for i in range(40)
            ],
        })
        store = open_store(settings)
        started = time.perf_counter()
        stats = sync_offline(settings, store, f"mbox:{mbox}", workers=workers)
        seconds = time.perf_counter() - started
        store.dispose()
    return {"messages": stats.stored, "seconds": seconds, "rate": stats.stored / seconds}


def _child(phase: str, mbox: Path, workers: int) -> dict[str, float]:
    """Run one phase in a fresh interpreter and collect its peak RSS."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.offline_bench", "--phase", phase, "--mbox", str(mbox),
         "--workers", str(workers)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--phase", choices=["analyse", "analyse-port", "ingest"])
    parser.add_argument("--mbox", type=Path)
    args = parser.parse_args()

    if args.phase:
        if args.phase == "ingest":
            result = phase_ingest(args.mbox, args.workers)
        else:
            result = phase_analyse(args.mbox, args.workers, library=args.phase == "analyse")
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        # CPU per message (all processes) is steady when the machine is busy; msg/s is not.
        result["cpu_ms_per_msg"] = 1000 * cpu / max(1, result["messages"])
        result["parent_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["worker_peak_rss_mb"] = (
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
        print(json.dumps(result))
        return

    OUT.mkdir(exist_ok=True)
    rows = []
    for n in args.sizes:
        mbox = OUT / f"bench-{n}.mbox"
        if not mbox.exists():
            write_mbox(str(mbox), n)
        alone = _child("analyse", mbox, 1)
        analyse = _child("analyse-port", mbox, args.workers)
        ingest = _child("ingest", mbox, args.workers)
        rows.append((n, alone, analyse, ingest))
    w = args.workers
    print(f"offline ingest, full pipeline on {w} worker process(es), mbox on local disk")
    print("ratio = full ingest / parse + TextBlob (the library) alone in one process: the "
          "issue's measure;")
    print(f"strict = full ingest / parse + our tone (same floats, sentiment_fast) on the same "
          f"{w} workers")
    print(f"{'N':>8} {'parse+TextBlob 1 proc':>22} {f'parse+TextBlob {w} wk':>20} "
          f"{'full ingest':>12} {'ratio':>6} {'strict':>7} {'parent RSS MB':>14} "
          f"{'worker RSS MB':>14}")
    for n, alone, analyse, ingest in rows:
        print(f"{n:>8} {alone['rate']:>18.0f} m/s {analyse['rate']:>16.0f} m/s "
              f"{ingest['rate']:>8.0f} m/s {ingest['rate'] / alone['rate']:>6.2f} "
              f"{ingest['rate'] / analyse['rate']:>7.2f} {ingest['parent_peak_rss_mb']:>14.0f} "
              f"{ingest['worker_peak_rss_mb']:>14.0f}")
    print("CPU ms per message, all processes (start-up included): "
          + "; ".join(f"{n}: {a['cpu_ms_per_msg']:.2f} alone, {i['cpu_ms_per_msg']:.2f} full"
                      for n, a, _, i in rows))
    if len(rows) >= 2:
        small, large = rows[0][3], rows[-1][3]
        print(f"peak RSS ratio {rows[-1][0]}/{rows[0][0]} (parent): "
              f"{large['parent_peak_rss_mb'] / small['parent_peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()

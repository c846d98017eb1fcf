"""`make bench`: every benchmark in one run, figures printed as tables.

Speed and memory targets are checked here, never by timed unit tests.
`--quick` runs small sizes (a smoke test of the benchmarks themselves).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def _run(title: str, argv: list[str]) -> int:
    print(f"\n=== {title} ===", flush=True)
    started = time.perf_counter()
    code = subprocess.call([sys.executable, *argv])
    print(f"({title}: {time.perf_counter() - started:.0f} s, exit {code})", flush=True)
    return code


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args()
    quick = args.quick
    codes = [
        _run("offline ingest (mbox -> SQLite)",
             ["-m", "bench.offline_bench", "--sizes", *(["2000"] if quick else
                                                         ["10000", "100000"])]),
        _run("health scoring",
             ["bench/health_bench.py", *(["--clients", "100", "--messages", "10000"]
                                         if quick else [])]),
        _run("live IMAP ingest (private Dovecot)",
             ["-m", "bench.imap_bench", *(["--quick"] if quick else [])]),
        _run("reply extraction (new text) against email-reply-parser and mail-parser-reply",
             ["-m", "bench.replies_eval"]),
        _run("tone: TextBlob's PatternAnalyzer against service.analysis.sentiment_fast",
             ["-m", "bench.tone_bench"]),
    ]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())

"""Speed of client-health recomputation over synthetic stored analyses.

    .venv/bin/python bench/health_bench.py [--clients 1000] [--messages 100000]

Targets: a full recompute (every client) within 2 s for 1,000 clients and
100k messages; an incremental update (one client, after one new message)
within 50 ms. Building the synthetic data is not timed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.analysis.health import HealthSettings, assess_client
from service.analysis.types import (
    ClientEconomics,
    Evidence,
    MessageAnalysis,
    MessageFacts,
    Signal,
    Tone,
)

KINDS = ("revision_loop", "price_pressure", "urgency", "blame", "dismissal", "negative_tone")
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def synthetic_client(rng: random.Random, c: int, n: int, days: int = 365) -> list[MessageFacts]:
    grumpy = rng.random() < 0.2
    out: list[MessageFacts] = []
    for i in range(n):
        role = "client" if rng.random() < 0.55 else "staff"
        friction = rng.random() * (0.9 if grumpy else 0.3) if role == "client" else 0.0
        signals: tuple[Signal, ...] = ()
        if friction > 0.2:
            kind = rng.choice(KINDS)
            signals = (Signal(kind, friction, (Evidence(f"{kind} quote {i}", 0, 12),)),)
        elif rng.random() < 0.3:
            signals = (Signal("gratitude", -0.5, (Evidence("thanks", 0, 6),)),)
        out.append(
            MessageFacts(
                message_id=f"<{c}.{i}@bench>",
                date=NOW - timedelta(seconds=rng.uniform(0, days * 86400)),
                role=role,  # type: ignore[arg-type]
                thread_key=f"t{rng.randrange(max(1, n // 8))}",
                subject="Re: project",
                sender=f"c{c}@client.example" if role == "client" else "me@agency.example",
                analysis=MessageAnalysis(Tone(rng.uniform(-0.3, 0.5), 0.5), friction, signals),
                new_text=f"message {i}",
            )
        )
    out.sort(key=lambda m: m.date)  # the store hands them over in date order
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=2000, help="messages of the incremental client")
    args = ap.parse_args()
    rng = random.Random(7)
    per = args.messages // args.clients
    clients = [synthetic_client(rng, c, per) for c in range(args.clients)]
    settings = HealthSettings()
    eco = ClientEconomics(monthly_revenue=1000)

    t0 = time.perf_counter()
    states = [
        assess_client(msgs, now=NOW, settings=settings, economics=eco).state for msgs in clients
    ]
    full = time.perf_counter() - t0
    total = sum(len(c) for c in clients)
    print(f"full recompute: {args.clients} clients, {total} messages: {full:.3f} s "
          f"({full / total * 1e6:.1f} µs/message)  [target <= 2 s]")
    print("states:", {s: states.count(s) for s in sorted(set(states))})

    for size in (per, args.big):
        history = synthetic_client(rng, 99_999, size)
        new = history[-1].__class__(
            **{**history[-1].__dict__, "message_id": "<new@bench>", "date": NOW}
        )
        runs = []
        for _ in range(20):
            t0 = time.perf_counter()
            assess_client([*history, new], now=NOW, settings=settings, economics=eco)
            runs.append(time.perf_counter() - t0)
        runs.sort()
        print(f"incremental (client with {size} messages, one new): median "
              f"{runs[len(runs) // 2] * 1000:.2f} ms, max {runs[-1] * 1000:.2f} ms  "
              f"[target <= 50 ms]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

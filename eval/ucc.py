"""Outside check: ROC-AUC of message friction on the Unhealthy Comments Corpus.

Usage: python -m eval.ucc [PATH/val.csv]   (default: ../shared/data/ucc/val.csv from the
repository root). The corpus is read at evaluation time only: it is never copied into the
repository and nothing is trained on it. It is news comments, not client email: a check
that the detectors generalise to hostility, condescension, dismissiveness and sarcasm,
not the target.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from service.analysis.message import analyse_message

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ucc" / "val.csv"


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Rank-based ROC-AUC (Mann-Whitney U); tied scores share their average rank."""
    if len(scores) != len(labels):
        raise ValueError("scores and labels differ in length")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    pos = sum(1 for y in labels if y)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        raise ValueError("need both classes")
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.ucc", description=__doc__.split("\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"not found: {args.path}", file=sys.stderr)
        return 2
    with args.path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    labels = [1 if float(r["healthy"]) == 0 else 0 for r in rows]
    friction, polarity = [], []
    fired_unhealthy: Counter[str] = Counter()
    fired_healthy: Counter[str] = Counter()
    t0 = time.perf_counter()
    for row, y in zip(rows, labels, strict=True):
        result = analyse_message(row["comment"], role="client")
        friction.append(result.friction)
        polarity.append(-result.tone.polarity)
        (fired_unhealthy if y else fired_healthy).update({s.kind for s in result.signals})
    elapsed = time.perf_counter() - t0
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    print(f"{args.path}: {len(rows)} comments, {n_pos} unhealthy")
    print(f"ROC-AUC friction            {roc_auc(friction, labels):.3f}")
    print(f"ROC-AUC -TextBlob polarity  {roc_auc(polarity, labels):.3f}")
    print(f"analysis time: {1000 * elapsed / len(rows):.3f} ms per comment")
    print("signal kind         fires on unhealthy  fires on healthy")
    for kind in sorted(set(fired_unhealthy) | set(fired_healthy)):
        print(f"  {kind:<18} {fired_unhealthy[kind] / n_pos:>17.1%} "
              f"{fired_healthy[kind] / n_neg:>17.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

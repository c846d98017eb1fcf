"""Evaluate client-health flagging on labelled threads (eval/threads, dev_threads, blind_threads).

    .venv/bin/python -m eval.threads_eval [--set dev|test|blind1..6|both|all] [-v] [--json]
                                          [--oracle] [DIR]

Measured (2026-11-25, second round: detectors extended on dev material only; the
test set was run once afterwards, nothing was changed after seeing it):

    set   method                              P     R     F1
    dev   ours (analyse_message), 58 threads 1.00  0.96  0.98   (44 threads before: 0.89)
    dev   baseline, best threshold on dev    0.69  1.00  0.82
    dev   ours with hand labels (--oracle)   0.96  1.00  0.98
    test  ours (analyse_message)             1.00  0.76  0.86   (round 1: 0.80, 0.73 before)
    test  baseline, best threshold on test   0.57  0.95  0.71
    test  ours with hand labels (--oracle)   0.91  1.00  0.95

Fourth round (2026-11-25; README "Evaluation" has the full story): test F1 0.87, message
ROC-AUC 0.863; dev 130 threads 0.92 / 0.890; six blind sets, each run once: F1 0.82,
0.78, 0.83, 0.86, 0.76, 0.78 (the round's starting code: 0.67, 0.72, 0.71, 0.82, 0.77, 0.73).

With hand per-message labels the aggregation reaches 0.95-0.98; the gap to
0.86 is per-message detection: fresh client wording the phrase rules have not
seen (polite payment stalling, praise while withholding payment, sarcasm).
Every health parameter was chosen on dev (see
``service/analysis/health.py``); dev and test share the format and the
labelling guideline (eval/threads/README.md) but no company, person or
phrasing.

Each thread is one client. Every message's new text (quoted history
stripped) goes through ``analyse_message``; ``assess_client`` then judges the
client at the last message, and the client counts as flagged when its state
is ``at_risk`` or ``unhealthy``. The health settings are the defaults.

The baseline is TextBlob polarity alone: a client is flagged when the mean
polarity of its messages is below a threshold. To be fair to it, the
threshold is the *best possible* one on the whole set (chosen after seeing
the labels, so its numbers are optimistic); for an honest comparison it is
also chosen on one half of the set (by file name) and measured on the other
(``baseline_cv``), and chosen on the other set (``baseline_other``: the
footing our defaults are on).

``--oracle`` replaces the analyser by the hand labels (friction 1/0 per
message) to measure the aggregation alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

from textblob import TextBlob

from eval.ucc import roc_auc
from service.analysis.health import ClientHealth, HealthSettings, assess_client
from service.analysis.types import ClientEconomics, MessageAnalysis, MessageFacts, Tone

SETS: dict[str, Path] = {
    "test": Path(__file__).parent / "threads",
    "dev": Path(__file__).parent / "dev_threads",
    # written blind in the fourth round and run once after its main changes (then tuned on)
    "blind1": Path(__file__).parent / "blind_threads",
    # written blind in the fourth round and run once after its health change (then tuned on)
    "blind2": Path(__file__).parent / "blind_threads_2",
    # written blind in the fourth round and run once near its end (then tuned on)
    "blind3": Path(__file__).parent / "blind_threads_3",
    # written blind in the fourth round, an ordinary mailbox rather than trick cases, run
    # once near its end (then tuned on)
    "blind4": Path(__file__).parent / "blind_threads_4",
    # the same kind of ordinary mailbox, run once near the end (then tuned on)
    "blind5": Path(__file__).parent / "blind_threads_5",
    # ordinary mail with a third of trick cases, run once at the very end: nothing tuned on it
    "blind6": Path(__file__).parent / "blind_threads_6",
}
DEFAULT_DIR = SETS["test"]
FLAGGED = ("at_risk", "unhealthy")
_WROTE = re.compile(r"^\s*(On\b.*wrote:|-{2,}\s*Original Message|From:\s.*)\s*$", re.I)
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|tr)\s*(\[\d+\])?\s*:\s*)+", re.I)


def _fallback_new_text(text: str) -> str:
    """Drop quoted lines and everything after an attribution line."""
    out: list[str] = []
    for line in text.splitlines():
        if _WROTE.match(line):
            break
        if not line.lstrip().startswith(">"):
            out.append(line)
    return "\n".join(out).strip()


def _new_text_extractor() -> Callable[[str], str]:
    try:
        module = importlib.import_module("service.mail.replies")
    except ImportError:
        return _fallback_new_text
    return getattr(module, "extract_new_text", _fallback_new_text)


def _analyser() -> Callable[..., MessageAnalysis] | None:
    try:
        module = importlib.import_module("service.analysis.message")
    except ImportError:
        return None
    return getattr(module, "analyse_message", None)


@dataclass(frozen=True)
class Thread:
    name: str
    label: bool  # True = unhealthy
    messages: tuple[MessageFacts, ...]
    economics: ClientEconomics
    now: datetime
    gold_friction: tuple[bool | None, ...] = ()  # per message: the hand label (staff: None)


def _thread_key(subject: str) -> str:
    return _SUBJECT_PREFIX.sub("", subject or "").strip().lower() or "(no subject)"


def load_threads(
    folder: Path, analyse: Callable[..., MessageAnalysis] | None, oracle: bool
) -> list[Thread]:
    extract = _new_text_extractor()
    threads: list[Thread] = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        facts: list[MessageFacts] = []
        for i, raw in enumerate(data["messages"]):
            when = datetime.fromisoformat(raw["date"])
            body = raw.get("body") or ""
            new_text = extract(body) or body
            role = raw.get("role", "client")
            polarity = TextBlob(new_text).sentiment.polarity
            if oracle:
                friction = 1.0 if raw.get("friction") else 0.0
                analysis = MessageAnalysis(tone=Tone(polarity, 0.0), friction=friction)
            else:
                assert analyse is not None
                analysis = analyse(
                    new_text, role=role, subject=raw.get("subject", ""), sent_at=when
                )
            facts.append(
                MessageFacts(
                    message_id=f"{path.stem}#{i}",
                    date=when,
                    role=role,
                    thread_key=_thread_key(raw.get("subject", "")),
                    subject=raw.get("subject", ""),
                    sender=raw.get("from", ""),
                    analysis=analysis,
                    new_text=new_text,
                )
            )
        economics = ClientEconomics(
            monthly_revenue=data.get("monthly_revenue"), currency=data.get("currency", "EUR")
        )
        now = max(m.date for m in facts) + timedelta(hours=1)
        gold = tuple(raw.get("friction") for raw in data["messages"])
        threads.append(
            Thread(path.stem, data["label"] == "unhealthy", tuple(facts), economics, now, gold)
        )
    return threads


def prf(pred: Sequence[bool], gold: Sequence[bool]) -> tuple[float, float, float]:
    tp = sum(p and g for p, g in zip(pred, gold, strict=True))
    fp = sum(p and not g for p, g in zip(pred, gold, strict=True))
    fn = sum(g and not p for p, g in zip(pred, gold, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def mean_client_polarity(t: Thread) -> float:
    pols = [m.analysis.tone.polarity for m in t.messages if m.role == "client" and m.analysis]
    return sum(pols) / len(pols) if pols else 0.0


def message_auc(threads: Sequence[Thread]) -> tuple[int, int, float, float]:
    """Client messages, those with friction, ROC-AUC of `friction` and of -polarity.

    The per-message view of the same hand labels: how well the friction score ranks the
    messages a reader marked as friction, before any aggregation into a client's health.
    """
    labels, friction, polarity = [], [], []
    for t in threads:
        for m, gold in zip(t.messages, t.gold_friction, strict=True):
            if m.role == "client" and gold is not None:
                labels.append(int(bool(gold)))
                friction.append(m.analysis.friction)
                polarity.append(-m.analysis.tone.polarity)
    if not 0 < sum(labels) < len(labels):
        return len(labels), sum(labels), float("nan"), float("nan")
    return len(labels), sum(labels), roc_auc(friction, labels), roc_auc(polarity, labels)


def best_threshold(values: Sequence[float], gold: Sequence[bool]) -> float:
    """The polarity threshold with the best F1 on these labels (flag when below)."""
    cuts = sorted(set(values))
    middles = [(a + b) / 2 for a, b in pairwise(cuts)]
    candidates = [cuts[0] - 1e-6, *middles, cuts[-1] + 1e-6]
    return max(candidates, key=lambda c: prf([v < c for v in values], gold)[2])


def assess_all(
    threads: Sequence[Thread], settings: HealthSettings | None = None
) -> list[ClientHealth]:
    settings = settings or HealthSettings()
    return [
        assess_client(t.messages, now=t.now, settings=settings, economics=t.economics)
        for t in threads
    ]


def evaluate(
    threads: Sequence[Thread], other: Sequence[Thread] | None = None
) -> tuple[dict[str, dict[str, tuple[float, float, float]]], list[ClientHealth], float]:
    """P/R/F1 rows of ours and of the polarity baseline on one set.

    ``other`` is the other set (dev for test, test for dev): the baseline's
    threshold chosen there and applied here is the honest transfer number,
    the same footing as our defaults, which were chosen on dev.
    """
    gold = [t.label for t in threads]
    health = assess_all(threads)
    ours = [h.state in FLAGGED for h in health]
    polarity = [mean_client_polarity(t) for t in threads]
    cut_all = best_threshold(polarity, gold)
    rows: dict[str, dict[str, tuple[float, float, float]]] = {
        "all": {
            "ours": prf(ours, gold),
            "baseline_best": prf([p < cut_all for p in polarity], gold),
        }
    }
    if other:
        cut_other = best_threshold(
            [mean_client_polarity(t) for t in other], [t.label for t in other]
        )
        rows["all"]["baseline_other"] = prf([p < cut_other for p in polarity], gold)
    half = len(threads) // 2
    for name, idx in {"A": range(0, half), "B": range(half, len(threads))}.items():
        rest = [i for i in range(len(threads)) if i not in idx]
        cut = best_threshold([polarity[i] for i in rest], [gold[i] for i in rest])
        g = [gold[i] for i in idx]
        rows[f"half {name}"] = {
            "ours": prf([ours[i] for i in idx], g),
            "baseline_cv": prf([polarity[i] < cut for i in idx], g),
        }
    rows["all"]["flag_all"] = prf([True] * len(gold), gold)
    return rows, health, cut_all


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", type=Path, default=None,
                    help="a folder of threads (overrides --set)")
    ap.add_argument("--set", choices=(*SETS, "both", "all"), default="test",
                    help="test = eval/threads (default), dev = eval/dev_threads, blind1..6 "
                         "= eval/blind_threads(_2.._6), both = test and dev, all = every set")
    ap.add_argument("--verbose", "-v", action="store_true", help="one line per thread")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument("--oracle", action="store_true", help="hand labels instead of the analyser")
    args = ap.parse_args(argv)

    analyse = _analyser()
    if analyse is None and not args.oracle:
        print("service.analysis.message.analyse_message is missing; use --oracle", file=sys.stderr)
        return 1
    if args.folder is not None:
        folders = {str(args.folder): args.folder}
    elif args.set == "both":
        folders = {name: SETS[name] for name in ("test", "dev")}
    elif args.set == "all":
        folders = dict(SETS)
    else:
        folders = {args.set: SETS[args.set]}
    loaded = {name: load_threads(folder, analyse, args.oracle) for name, folder in folders.items()}
    for name, threads in loaded.items():
        if not threads:
            print(f"no threads in {folders[name]}", file=sys.stderr)
            return 1
    others: dict[str, list[Thread]] = {}
    if args.folder is None:
        for name in loaded:
            twin = "dev" if name == "test" else "test"
            if twin in loaded:
                others[name] = loaded[twin]
            elif SETS[twin].is_dir():
                others[name] = load_threads(SETS[twin], analyse, args.oracle)

    docs = {}
    for name, threads in loaded.items():
        rows, health, cut_all = evaluate(threads, others.get(name))
        gold = [t.label for t in threads]
        n_msg, n_fric, auc_friction, auc_polarity = message_auc(threads)
        if args.json:
            docs[name] = {
                "threads": len(threads),
                "unhealthy": sum(gold),
                "messages": {"client": n_msg, "friction": n_fric,
                             "roc_auc_friction": auc_friction,
                             "roc_auc_negative_polarity": auc_polarity},
                "baseline_threshold": cut_all,
                "results": {k: {m: dict(zip(("precision", "recall", "f1"), v, strict=True))
                                for m, v in r.items()} for k, r in rows.items()},
                "per_thread": [
                    {"thread": t.name, "label": "unhealthy" if t.label else "healthy",
                     "score": h.score, "state": h.state,
                     "polarity": round(mean_client_polarity(t), 3),
                     "signals": [[s.kind, s.weight] for s in h.signals[:3]]}
                    for t, h in zip(threads, health, strict=True)
                ],
            }
            continue
        if args.verbose:
            for t, h in zip(threads, health, strict=True):
                flag = h.state in FLAGGED
                mark = "ok " if flag == t.label else "ERR"
                top = ", ".join(f"{s.kind} {s.weight:.0f}" for s in h.signals[:3])
                label = "unhealthy" if t.label else "healthy"
                print(f"{mark} {t.name:45s} {label:9s} {h.score:5.1f} {h.state:9s} "
                      f"pol={mean_client_polarity(t):+.2f}  {top}")
            print()
        mode = "oracle labels" if args.oracle else "analyse_message"
        print(f"[{name}] {len(threads)} threads ({sum(gold)} unhealthy), "
              f"messages read by {mode}")
        print(f"baseline: mean client polarity < {cut_all:+.3f} (best threshold on all labels)")
        print(f"{'split':8s} {'method':17s} {'P':>6s} {'R':>6s} {'F1':>6s}")
        for split, r in rows.items():
            for method, (p, rc, f1) in r.items():
                print(f"{split:8s} {method:17s} {p:6.2f} {rc:6.2f} {f1:6.2f}")
        print(f"messages: {n_msg} from clients ({n_fric} with friction): ROC-AUC of friction "
              f"{auc_friction:.3f}, of -TextBlob polarity {auc_polarity:.3f}")
        print()
    if args.json:
        only = next(iter(docs.values())) if len(docs) == 1 else docs
        print(json.dumps(only, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

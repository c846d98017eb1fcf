"""Tone scoring cost per text: textblob's PatternAnalyzer vs service.analysis.sentiment_fast.

    .venv/bin/python -m bench.tone_bench [--repeat 5]

Texts are the new_text of every message in the bundled sample mailbox (what ingest scores).
Each scorer runs over all texts `repeat` times; the best round is reported, after a warm-up
round that also loads both lexicons. Results are checked equal before timing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from textblob.en import sentiment as textblob_sentiment

from service.analysis.sentiment_fast import analyze
from service.mail.parse import parse_message
from service.mail.source import iter_mbox

SAMPLE = Path(__file__).resolve().parents[1] / "service" / "demo" / "sample.mbox"


def sample_texts(path: Path = SAMPLE) -> list[str]:
    """new_text of every message in the mailbox, in mailbox order."""
    return [parse_message(mail.raw).new_text for mail in iter_mbox(path)]


def _best_ms_per_text(score: Callable[[str], object], texts: list[str], repeat: int) -> float:
    for text in texts:  # warm-up (lexicon load, regex caches)
        score(text)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for text in texts:
            score(text)
        best = min(best, time.perf_counter() - start)
    return best * 1000 / len(texts)


def run(repeat: int = 5) -> dict[str, float]:
    """ms per text for both scorers (and their ratio), after checking they agree."""
    texts = sample_texts()
    for text in texts:
        ref = textblob_sentiment(text)
        pol, subj, _found = analyze(text)
        if (pol, subj) != (ref[0], ref[1]):
            raise SystemExit(f"results differ on {text[:60]!r}")
    old = _best_ms_per_text(textblob_sentiment, texts, repeat)
    new = _best_ms_per_text(analyze, texts, repeat)
    return {"texts": len(texts), "textblob_ms": old, "fast_ms": new, "speedup": old / new}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    r = run(parser.parse_args().repeat)
    print(f"{r['texts']} texts (sample mailbox new_text), best of rounds:")
    print(f"  textblob PatternAnalyzer  {r['textblob_ms']:.4f} ms/text")
    print(f"  sentiment_fast            {r['fast_ms']:.4f} ms/text  ({r['speedup']:.1f}x)")


if __name__ == "__main__":
    main()

"""Tone of a message: TextBlob's PatternAnalyzer scores (offline lexicon, no corpora download).

TextBlob alone misses most friction (a polite-sounding "third time I have asked" scores
0.0), so tone is one input among the friction detectors, never the verdict on its own.

Scored by service.analysis.sentiment_fast, a port of textblob.en.sentiment that reads
textblob's own lexicon and rules and gives the same floats ~5x faster (tone was a fifth of
the CPU per ingested message); tests/unit/test_sentiment_fast.py holds it equal to textblob.
"""

from __future__ import annotations

from typing import NamedTuple

from service.analysis.sentiment_fast import analyze
from service.analysis.types import Tone


class Assessment(NamedTuple):
    """One scored chunk of the lexicon pass: the words it covered and their polarity."""

    words: tuple[str, ...]
    polarity: float
    subjectivity: float


def assess(text: str) -> tuple[Tone, tuple[Assessment, ...]]:
    """Tone plus the per-word assessments, in ONE lexicon pass (the friction detectors
    reuse the assessments to quote the most negative sentence without re-scoring)."""
    polarity, subjectivity, found = analyze(text)
    return (
        Tone(polarity=polarity, subjectivity=subjectivity),
        tuple(Assessment(words, p, s) for words, p, s in found),
    )


def tone(text: str) -> Tone:
    """Polarity (-1..1) and subjectivity (0..1) of the text."""
    polarity, subjectivity, _found = analyze(text)
    return Tone(polarity=polarity, subjectivity=subjectivity)

"""Tone of a message: TextBlob's PatternAnalyzer (offline lexicon, no corpora download).

TextBlob alone misses most friction (a polite-sounding "third time I have asked" scores
0.0), so tone is one input among the friction detectors, never the verdict on its own.
"""

from __future__ import annotations

from typing import NamedTuple

from textblob.en import sentiment as _pattern_sentiment

from service.analysis.types import Tone


class Assessment(NamedTuple):
    """One scored chunk of the lexicon pass: the words it covered and their polarity."""

    words: tuple[str, ...]
    polarity: float
    subjectivity: float


def assess(text: str) -> tuple[Tone, tuple[Assessment, ...]]:
    """Tone plus the per-word assessments, in ONE lexicon pass (the friction detectors
    reuse the assessments to quote the most negative sentence without re-scoring)."""
    score = _pattern_sentiment(text)
    found = tuple(
        Assessment(tuple(words), float(pol), float(subj))
        for words, pol, subj, _label in score.assessments
    )
    return Tone(polarity=float(score[0]), subjectivity=float(score[1])), found


def tone(text: str) -> Tone:
    """Polarity (-1..1) and subjectivity (0..1) of the text."""
    score = _pattern_sentiment(text)
    return Tone(polarity=float(score[0]), subjectivity=float(score[1]))

"""Is this text English? The detectors and TextBlob's lexicon only read English.

German "Die Vorlagen sind abgenommen." is full of English-looking tokens ("die")
that an English lexicon misreads as hostility; such text is better left
unjudged than judged wrongly. simplemma's per-language word lists answer the
question without a model download and in well under a millisecond.
"""

from __future__ import annotations

import re

from simplemma import in_target_language

#: Share of words found in the English word list from which a text counts as English.
ENGLISH_SHARE = 0.5
#: Shorter texts ("ok thanks", "Merci!") are too short to tell; they count as English,
#: where a wrong guess costs least (the detectors mostly stay quiet on a few words).
MIN_WORDS = 4
#: Enough words to tell; reading more only costs time on long emails.
SAMPLE_WORDS = 60

_WORD = re.compile(r"[^\W\d_]{2,}")

#: English function words: frequent in any English text and rare as whole words in the
#: other languages our clients write in (none of "die", "de", "en", "a", "was", "on" are here). When
#: they make up a large share of the words the text is English, with no dictionary lookups.
_ENGLISH_FUNCTION_WORDS = frozenset(
    [
        "the",
        "and",
        "to",
        "of",
        "it",
        "you",
        "that",
        "for",
        "with",
        "this",
        "are",
        "have",
        "at",
        "not",
        "can",
        "your",
        "our",
        "would",
        "could",
        "please",
        "thanks",
        "thank",
        "if",
        "or",
        "but",
        "from",
        "by",
        "they",
        "there",
        "what",
        "when",
        "just",
        "about",
        "any",
        "do",
        "does",
        "did",
        "has",
        "had",
        "been",
        "were",
        "should",
        "let",
        "my",
        "us",
    ]
)  # not "on", "so", "an", "was", "will", "we", "is", "me": words of French, German, Dutch
#: Share of function words from which a text is taken as English outright.
_FAST_SHARE = 0.25


def is_english(text: str) -> bool:
    words = _WORD.findall(text[:4000])
    if len(words) < MIN_WORDS:
        return True
    sample_words = words[:SAMPLE_WORDS]
    common = sum(1 for w in sample_words if w.lower() in _ENGLISH_FUNCTION_WORDS)
    if common >= _FAST_SHARE * len(sample_words):
        return True
    sample = " ".join(sample_words)
    return in_target_language(sample, lang="en") >= ENGLISH_SHARE

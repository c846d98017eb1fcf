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

_WORD = re.compile(r"[^\W\d_]{2,}")


def is_english(text: str) -> bool:
    words = _WORD.findall(text[:4000])
    if len(words) < MIN_WORDS:
        return True
    return in_target_language(" ".join(words), lang="en") >= ENGLISH_SHARE

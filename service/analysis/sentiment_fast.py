"""TextBlob's PatternAnalyzer sentiment, re-implemented to give the same floats faster.

Why: every ingested message is scored, and ``textblob.en.sentiment`` cost ~0.22 ms of the
~1.2 ms of CPU per message, mostly in its pure-Python tokenizer loops and the ``lazydict``
indirection on every word lookup. This module runs the same algorithm with the same data:

* the lexicon is read once, lazily, from the ``en-sentiment.xml`` shipped inside the
  textblob package and averaged exactly as ``textblob._text.Sentiment.load`` and
  ``textblob.en.Sentiment.load`` do (same summation order, same "-ly" adverb annotation);
* the tokenizer rules (punctuation, abbreviations, contractions, emoticons, sarcasm mark)
  are textblob's own objects, imported from ``textblob._text``, not copies (textblob builds
  its emoticon regex by iterating sets, so its alternation order follows the hash seed;
  sharing the compiled pattern leaves no room for the two to disagree);
* plain words (no leading or trailing punctuation) skip the per-token splitting loop, and a
  text in which no emoticon or sarcasm pattern can match skips sentence segmentation,
  whose only effect on the scored words is where those patterns may match.

Verified by tests/unit/test_sentiment_fast.py: polarity, subjectivity and every assessment
(word chunk, polarity, subjectivity, order) equal ``textblob.en.sentiment`` exactly on the
project's text corpora and on hypothesis-generated texts built to hit each rule above, and
the loaded lexicon equals textblob's own loaded dictionary. textblob stays a dependency as
the data source and the reference.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from xml.etree import ElementTree

import textblob.en
from textblob._text import (
    ABBREVIATIONS,
    EMOTICONS,
    PUNCTUATION,
    RE_ABBR1,
    RE_ABBR2,
    RE_ABBR3,
    RE_EMOTICONS,
    RE_SARCASM,
    replacements,
)

Chunk = tuple[tuple[str, ...], float, float]
"""One assessment: the words it covers, its polarity and its subjectivity."""

_XML = os.path.join(os.path.dirname(os.path.abspath(textblob.en.__file__)), "en-sentiment.xml")

# textblob.en's Sentiment(negations=..., modifiers=("RB",), modifier=endswith("ly")).
_NEGATIONS = frozenset(("no", "not", "n't", "never"))
_EOS = "END-OF-SENTENCE"
_LINEBREAK = re.compile(r"\n{2,}")

# find_tokens: leading punctuation excludes the period; trailing includes it.
_LEAD = tuple(PUNCTUATION.replace(".", ""))
_LEAD_SET = frozenset(_LEAD)
_TRAIL = (*_LEAD, ".")
_TRAIL_SET = frozenset(_TRAIL)
_ENDERS = frozenset(("...", ".", "!", "?", _EOS))
_RUN = frozenset(("'", '"', "”", "’", "...", ".", "!", "?", ")", _EOS))

# The contraction replacements are applied with re.sub in textblob; as long as they hold
# no regex syntax, str.replace does the very same thing.
_REPLACE = tuple(replacements.items())
if any(re.escape(a) != a or "\\" in b for a, b in _REPLACE):  # pragma: no cover
    raise ImportError("textblob's contraction replacements are no longer plain strings")
_REPLACE_NEEDS_APOSTROPHE = all("'" in a for a, _b in _REPLACE)

_QUOTES = (("“", " “ "), ("”", " ” "), ("‘", " ‘ "), ("’", " ’ "), ("'", " ' "), ('"', ' " '))


def _emoticon_scores() -> dict[str, float]:
    """Lower-cased emoticon -> polarity, keeping only what Sentiment.assessments can reach
    (it skips alphabetic words, words over 5 characters and substrings of PUNCTUATION, and
    takes the first category in EMOTICONS order)."""
    scores: dict[str, float] = {}
    for (_kind, polarity), faces in EMOTICONS.items():
        for face in faces:
            w = face.lower()
            if w.isalpha() is False and len(w) <= 5 and w not in PUNCTUATION:
                scores.setdefault(w, polarity)
    return scores


_EMOTICON = _emoticon_scores()
# Unknown words that act even with no modifier or negation pending.
_SPECIAL = frozenset((*_NEGATIONS, "!", "(!)", *_EMOTICON))

_lexicon: dict[str, tuple[float, float, float, bool]] | None = None


def _avg(values: Sequence[float]) -> float:
    # textblob._text.avg, builtin sum included (its summation is what textblob gets).
    return sum(values) / float(len(values) or 1)


def load_lexicon() -> dict[str, dict[str | None, tuple[float, ...]]]:
    """The word -> {part of speech: (polarity, subjectivity, intensity)} table, built from
    the package's XML exactly as textblob.en.sentiment loads it (exposed for the test)."""
    senses: dict[str, dict[str | None, list[tuple[float, float, float]]]] = {}
    for el in ElementTree.parse(_XML).getroot().findall("word"):
        attrib = el.attrib
        form = attrib.get("form")
        psi = (
            float(attrib.get("polarity", 0.0)),
            float(attrib.get("subjectivity", 0.0)),
            float(attrib.get("intensity", 1.0)),
        )
        if form:
            senses.setdefault(form, {}).setdefault(attrib.get("pos"), []).append(psi)
    # Average the senses per part of speech, then the parts of speech (None).
    words: dict[str, dict[str | None, Sequence[float]]] = {
        w: {tag: [_avg(col) for col in zip(*psis, strict=True)] for tag, psis in by_pos.items()}
        for w, by_pos in senses.items()
    }
    for w, pos in list(words.items()):
        words[w][None] = [_avg(col) for col in zip(*pos.values(), strict=True)]
    # textblob.en: "terrible" also scores the adverb "terribly" (overwriting RB and None).
    for w, pos in list(words.items()):
        if "JJ" in pos:
            if w.endswith("y"):
                w = w[:-1] + "i"
            if w.endswith("le"):
                w = w[:-2]
            p, s, i = pos["JJ"]
            entry = words.setdefault(w + "ly", {})
            entry["RB"] = entry[None] = (p, s, i)
    return {w: {pos: tuple(v) for pos, v in entry.items()} for w, entry in words.items()}


def _words_lexicon() -> dict[str, tuple[float, float, float, bool]]:
    """word -> (polarity, subjectivity, intensity, is a modifier) for untagged text."""
    global _lexicon
    if _lexicon is None:
        table = {}
        for w, entry in load_lexicon().items():
            p, s, i = entry[None]
            table[w] = (p, s, i, "RB" in entry)  # pos=None: a modifier if it has an RB sense
        _lexicon = table
    return _lexicon


def _split_token(t: str) -> tuple[str, ...]:
    """find_tokens' punctuation splitting of one whitespace-delimited token, verbatim."""
    tokens = []
    tail = []
    while t.startswith(_LEAD) and t not in replacements:
        tokens.append(t[0])
        t = t[1:]
    while t.endswith(_TRAIL) and t not in replacements:
        if t.endswith(_LEAD):
            tail.append(t[-1])
            t = t[:-1]
        if t.endswith("..."):
            tail.append("...")
            t = t[:-3].rstrip(".")
        if t.endswith("."):
            if (
                t in ABBREVIATIONS
                or RE_ABBR1.match(t) is not None
                or RE_ABBR2.match(t) is not None
                or RE_ABBR3.match(t) is not None
            ):
                break
            tail.append(t[-1])
            t = t[:-1]
    if t != "":
        tokens.append(t)
    tokens.extend(reversed(tail))
    return tuple(tokens)


# The same few punctuated tokens ("you,", "thanks.") recur in every mail: split each once.
_SPLIT_CACHE: dict[str, tuple[str, ...]] = {}
_SPLIT_CACHE_MAX = 50_000


def _sentences(tokens: list[str]) -> list[str]:
    """find_tokens' sentence segmentation and per-sentence sarcasm/emoticon joining."""
    sentences: list[list[str]] = [[]]
    i = j = 0
    while j < len(tokens):
        if tokens[j] in _ENDERS:
            while j < len(tokens) and tokens[j] in _RUN:
                if tokens[j] in ("'", '"') and sentences[-1].count(tokens[j]) % 2 == 0:
                    break
                j += 1
            sentences[-1].extend(t for t in tokens[i:j] if t != _EOS)
            sentences.append([])
            i = j
        j += 1
    sentences[-1].extend(tokens[i:j])
    out = []
    for s in sentences:
        if s:
            text = RE_SARCASM.sub("(!)", " ".join(s))
            out.append(RE_EMOTICONS.sub(lambda m: m.group(1).replace(" ", "") + m.group(2), text))
    return out


def words(text: str) -> list[str]:
    """The lower-cased words Sentiment.__call__ assesses for a string:
    ``w.lower() for w in " ".join(parser.find_tokens(text)).split()``."""
    if "'" in text or not _REPLACE_NEEDS_APOSTROPHE:
        for a, b in _REPLACE:
            text = text.replace(a, b)
    for a, b in _QUOTES:
        text = text.replace(a, b)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    if "\n\n" in text:
        text = _LINEBREAK.sub(f" {_EOS} ", text)
    # Whitespace collapse + TOKEN.findall(text + " ") is str.split() (both use isspace).
    tokens: list[str] = []
    lead, trail = _LEAD_SET, _TRAIL_SET
    cache = _SPLIT_CACHE
    for t in text.split():
        if t[0] in lead or t[-1] in trail:
            parts = cache.get(t)
            if parts is None:
                if len(cache) >= _SPLIT_CACHE_MAX:
                    cache.clear()
                parts = cache[t] = _split_token(t)
            tokens += parts
        else:
            tokens.append(t)
    joined = " ".join(t for t in tokens if t != _EOS) if _EOS in tokens else " ".join(tokens)
    if RE_SARCASM.search(joined) is None and RE_EMOTICONS.search(joined) is None:
        # Nothing for the per-sentence substitutions to change: sentences joined == tokens.
        return joined.lower().split()
    return " ".join(_sentences(tokens)).lower().split()


def assess_words(ws: list[str]) -> list[Chunk]:
    """Sentiment.assessments(((w, None) for w in ws), negation=True), labels dropped."""
    lexicon = _words_lexicon()
    get = lexicon.get
    negations = _NEGATIONS
    emoticon = _EMOTICON
    special = _SPECIAL
    a: list[list] = []  # [words, polarity, subjectivity, intensity, negated]
    m: str | None = None  # preceding modifier ("very good")
    n: str | None = None  # preceding negation ("not good")
    for w in ws:
        entry = get(w)
        if entry is not None:
            p, s, i, is_modifier = entry
            if m is None:
                a.append([[w], p, s, i, 1])
            else:
                last = a[-1]
                last[0].append(w)
                li = last[3]
                last[1] = max(-1.0, min(p * li, +1.0))
                last[2] = max(-1.0, min(s * li, +1.0))
                last[3] = i
            if n is not None:
                last = a[-1]
                last[0].insert(0, n)
                last[3] = 1.0 / last[3]
                last[4] = -1
            m = w if is_modifier else None
            n = w if w in negations else None
        elif m is None and n is None and w not in special:
            continue  # an unknown word with no modifier or negation pending changes nothing
        else:
            if w in negations:
                n = w
            elif n and len(w.strip("'")) > 1:
                n = None
            if n is not None and m is not None and m.endswith("ly"):
                a[-1][0].append(n)
                a[-1][4] = -1
                n = None
            elif m is not None and len(w) > 2:
                m = None
            if w == "!" and a:
                last = a[-1]
                last[0].append("!")
                last[1] = max(-1.0, min(last[1] * 1.25, +1.0))
            if w == "(!)":
                a.append([[w], 0.0, 1.0, 1.0, 1])
            face = emoticon.get(w)
            if face is not None:
                a.append([[w], face, 1.0, 1.0, 1])
    return [(tuple(ws_), p * -0.5 if neg < 0 else p, s) for ws_, p, s, _i, neg in a]


def analyze(text: str) -> tuple[float, float, list[Chunk]]:
    """(polarity, subjectivity, assessments) as ``textblob.en.sentiment(text)`` gives them."""
    found = assess_words(words(text))
    # Sentiment.__call__'s avg(): an int-started running sum, divided by float(n or 1).
    sp = ss = 0
    for _w, p, s in found:
        sp += p
        ss += s
    n = float(len(found) or 1)
    return sp / n, ss / n, found

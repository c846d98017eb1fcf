"""The one-pass matcher finds exactly what trying every rule everywhere finds.

Two guards: outputs pinned before the matcher replaced the per-word regex engine
(tests/data/friction_golden.json: dev passages, civil mail, benchmark mail, eval threads,
drafts and whitespace/digit/quote edge cases), and a property test comparing the matcher
with a brute-force reference on generated text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.analysis.friction import Doc, _matches, detect, friction_score, load_rules
from service.analysis.message import analyse_message
from service.analysis.multimatch import (
    WHITESPACE,
    PhraseMatcher,
    literal_prefixes,
    required_factors,
)

GOLDEN = Path(__file__).parents[1] / "data" / "friction_golden.json"
GUARDRAIL_KINDS = ("blame", "disrespect", "dismissal", "negative_tone", "hostility")
_CASES = json.loads(GOLDEN.read_text(encoding="utf-8"))["cases"]


def _plain(signals) -> list[dict]:
    return [{"kind": s.kind, "weight": s.weight,
             "evidence": [[e.quote, e.start, e.end] for e in s.evidence]} for s in signals]


@pytest.mark.parametrize("case", _CASES, ids=[f"case{i}" for i in range(len(_CASES))])
def test_outputs_match_the_pinned_engine(case: dict):
    # The pin is of the phrase engine; the learned "strain" model came later (own tests).
    signals = [s for s in analyse_message(case["text"]).signals if s.kind != "strain"]
    assert round(friction_score(signals), 4) == case["friction"]
    assert _plain(signals) == case["signals"]
    assert _plain(detect(case["text"], kinds=GUARDRAIL_KINDS)) == case["guardrail_kinds"]


# --------------------------------------------------------------------------- reference

_WORD_START = re.compile(r"(?<![\w'])[a-z0-9]")


def _reference(doc: Doc, kinds: frozenset[str]) -> list[tuple[str, int, int]]:
    """Every rule tried at every place it may match: slow, obviously right."""
    rules = load_rules()
    found = []
    for i, rule in enumerate(rules.rules):
        if rule.kind not in kinds:
            continue
        text = doc.norm if rule.case else doc.lower
        if rule.at_start:
            spans = [m.span() for s, e in doc.sentences if (m := rule.regex.match(text, s, e))]
        elif i in rules.scan_all:
            spans = [m.span() for m in rule.regex.finditer(text)]
        else:
            spans = [m.span() for w in _WORD_START.finditer(doc.lower)
                     if (m := rule.regex.match(doc.lower, w.start()))]
        found += [(f"{rule.kind}:{i}", s, e) for s, e in spans]
    return sorted(found)


def _fast(doc: Doc, kinds: frozenset[str]) -> list[tuple[str, int, int]]:
    rules = load_rules()
    index = {id(r): i for i, r in enumerate(rules.rules)}
    return sorted((f"{r.kind}:{index[id(r)]}", s, e) for r, s, e in _matches(doc, rules, kinds))


def _vocabulary() -> list[str]:
    """Words and punctuation the rules are made of, so generated text hits many rules."""
    words: set[str] = set()
    for rule in load_rules().rules:
        for fs in required_factors(rule.regex.pattern):
            words |= {w for w in fs if len(w) < 20}
        for key in literal_prefixes(rule.regex.pattern) or ():
            words.add(key.strip())  # whole rule openings ("could you"), so rules fire
    return sorted(words)


_VOCAB = _vocabulary()
_GLUE = [" ", " ", " ", "  ", "\n", "\n\n", "\t", ", ", ". ", "! ", "? ", "!!", "??", "?!",
         " - ", "-", "/", "'", '"', "(", ")", " > ", "\n> ", "\u2028", "\xa0", "3", "21st ",
         "\u0663"]
_ALL_KINDS = frozenset(rule.kind for rule in load_rules().rules)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_VOCAB), st.sampled_from(_GLUE),
                          st.sampled_from(["lower", "upper", "title"])),
                min_size=1, max_size=30))
def test_matcher_finds_what_brute_force_finds(parts):
    text = "".join(getattr(w, case)() + glue for w, glue, case in parts)
    doc = Doc(text)
    assert _fast(doc, _ALL_KINDS) == _reference(doc, _ALL_KINDS)


_PUNCTUATED = [
    "ok (please send it asap", "\"could you\" -no rush- 'thanks'", "[urgent]: why is this late?",
    "re-do it.Again and again...as I said before!!!", "fix-it-now;you never listen",
]


@pytest.mark.parametrize("text", [c["text"] for c in _CASES[:40]] + _PUNCTUATED)
def test_matcher_finds_what_brute_force_finds_on_mail(text: str):
    doc = Doc(text)
    assert _fast(doc, _ALL_KINDS) == _reference(doc, _ALL_KINDS)


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"asap", {"asap"}),
    (r"(could|would)\s+you", {"could you", "would you"}),
    (r"thanks?", {"thank"}),
    (r"(i|we)\s+(really\s+)?appreciate", {"i appreciate", "i really appreciate",
                                         "we appreciate", "we really appreciate"}),
    (r"(?<![\w'])(?:no\s+rush)(?![\w])", {"no rush"}),
    (r"!!+", {"!!"}),
    (r"\w+\s+again", None),  # a match may start anywhere
    (r"(second|\d+(st|nd))\s+time", None),
    (r"x?", None),  # may match empty
])
def test_literal_prefixes(pattern: str, expected: set[str] | None):
    got = literal_prefixes(pattern)
    assert (set(got) if got is not None else None) == expected


def test_ascii_digit_prefixes_only_when_asked():
    assert literal_prefixes(r"\d+(st|nd)\s+time") is None
    assert literal_prefixes(r"\d+(st|nd)\s+time", ascii_digits=True) == frozenset("0123456789")


def test_required_factors_are_implied_by_every_match():
    assert frozenset({"time"}) in required_factors(r"(second|\d+(st|nd))\s+time")
    assert frozenset({"?!", "!?"}) in required_factors(r"\?+!+[?!]*|!+\?+[?!]*")
    assert required_factors(r"\w+") == ()


def test_scan_offsets_survive_whitespace_runs_and_word_boundaries():
    matcher = PhraseMatcher([({0: frozenset({"could you"})}, True),
                             ({1: frozenset({"!!"})}, False)], {7: frozenset({"zebra"})})
    text = "xcould you? could \n\t you!! could  you"
    scan = matcher.scan(text)
    word, anywhere = scan.slots
    assert [pos for pos, _ in word] == [12, 27]  # not inside "xcould"
    assert all(text[pos:pos + 5] == "could" for pos, _ in word)
    assert [pos for pos, _ in anywhere] == [24]
    assert scan.present == frozenset()
    assert matcher.scan("a zebra").present == frozenset({7})


def test_whitespace_list_is_what_regex_whitespace_matches():
    every = "".join(map(chr, range(0x110000)))
    assert "".join(re.findall(r"\s", every)) == WHITESPACE

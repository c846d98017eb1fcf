"""Friction detectors: phrase rules from a reviewed resource file, matched generically.

The phrase lists live in ``resources/friction.toml`` (one entry per pattern, with its
intent); this module only knows how to match them:

* text is normalised (curly quotes and apostrophes straightened, one char for one char,
  so offsets stay valid) and quoted lines (``> ...``) are blanked out, never matched;
* every pattern is compiled once, case-insensitive, with word boundaries;
* a hit is dropped when a negator ("not", "no", "never", "...n't") sits shortly before it
  in the same clause ("no rush", "I'm not blaming you", "no discount needed");
* each hit quotes the sentence it fired on (trimmed, with offsets into the input);
* two generic detectors are parameterised from the same file: runs of ALL-CAPS words
  (acronyms excluded) and newly added senior CCs (escalation);
* urgency sent late at night or at the weekend weighs more;
* two models add what phrase lists miss: offensive language (``hostility.py``) and a
  learned reading of client friction (``friction_model.py``, the "strain" signal).

Hits of one kind combine with diminishing returns (``decay``) up to a per-kind cap, so one
angry message cannot dominate a client's score, and every weight can be traced to a quote.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from service.analysis import friction_model, hostility
from service.analysis.multimatch import (
    PhraseMatcher,
    literal_prefixes,
    min_width,
    required_factors,
)
from service.analysis.tone import Assessment, assess
from service.analysis.types import Evidence, Signal

DEFAULT_RULES = Path(__file__).with_name("resources") / "friction.toml"

FRICTION_KINDS = (
    "revision_loop",
    "price_pressure",
    "scope_creep",
    "urgency",
    "blame",
    "escalation",
    "dismissal",
    "payment_friction",
    "disrespect",
    "hostility",
    "strain",
    "negative_tone",
)
HEALTHY_KINDS = ("gratitude", "politeness")
_MODEL_KINDS = frozenset({"strain", "hostility"})  # signals of a learned model, not a rule
KINDS = FRICTION_KINDS + HEALTHY_KINDS

# One char for one char: offsets into the normalised text are offsets into the input.
_STRAIGHTEN = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "“": '"', "”": '"',
                             "„": '"', "«": '"', "»": '"', "\u00a0": " "})
_QUOTED_LINE = re.compile(r"(?m)^[ \t]*>.*$")
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)|\n[ \t]*\n|\n(?=[ \t]*(?:[-*•]|\d+[.)])\s)")
_CLAUSE_BREAK = re.compile(r"[,;:()\u2013\u2014]|\s-\s|\bbut\b|\bhowever\b|\bthough\b", re.I)
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|yourselves|you're|ya|u)\b", re.I)
# Someone else in a sentence: a third-person pronoun. (Capitalised names were tried and
# dropped: "My nephew could do better in Canva." is aimed at us.)
_THIRD_PARTY = re.compile(r"\b(?:they|them|their|theirs|they're|he|him|his|she|her|hers)\b",
                          re.I)
_SHORT_LINE = 45  # a line this short ends a sentence ("Hi Tom,", "Regards")


class RulesError(ValueError):
    """The resource file is malformed: names the entry so a reviewer can fix it."""


@dataclass(frozen=True)
class Rule:
    kind: str
    weight: float
    why: str
    regex: re.Pattern[str]
    negatable: bool
    at_start: bool
    unless: frozenset[str]
    case: bool = False
    enthusiasm: bool = False
    intensifier: bool = False


@dataclass(frozen=True)
class CapsRule:
    kind: str
    min_words: int
    weight: float
    per_extra_word: float
    max_weight: float
    acronyms: frozenset[str]
    unless: frozenset[str]
    enthusiasm: bool = False


@dataclass(frozen=True)
class Rules:
    """Everything the detectors need, loaded once from the resource file."""

    rules: tuple[Rule, ...]
    bias: float
    decay: float
    caps_by_kind: dict[str, float]
    negators: frozenset[str]
    negation_window: int
    targeted_kinds: frozenset[str]
    targeted_factor: float
    third_party_factor: float  # the same kinds in a sentence about someone else, not "you"
    max_evidence: int
    evidence_max_chars: int
    caps: CapsRule
    night_start: int
    night_end: int
    weekend: bool
    off_hours_factor: float
    senior_weight: float
    senior_parts: frozenset[str]
    tone_threshold: float
    tone_scale: float
    courtesy_words: frozenset[str]
    tone_exempt: tuple[re.Pattern[str], ...]
    hostility_threshold: float
    hostility_scale: float
    hostility_max_sentences: int
    strain_threshold: float  # log-odds of the friction model at which "strain" starts
    strain_scale: float
    strain_max_sentences: int
    strain_window: int  # consecutive sentences the model reads at once
    enthusiasm_words: re.Pattern[str] | None  # clearly positive words (see [enthusiasm])
    enthusiasm_kinds: frozenset[str]  # healthy kinds that also show a positive message
    scan_all: tuple[int, ...]  # rules found like finditer() (not tried at every word start)
    at_start: tuple[int, ...]  # rules tried only at sentence starts
    gated: frozenset[int]  # tried only when their required literals occur
    anchored: frozenset[int]  # at_start rules tried only where one of their prefixes is
    emulated: frozenset[int]  # scan_all rules tried only where one of their prefixes is
    ascii_only: frozenset[int]  # emulated only for ASCII text (prefixes read \d as 0-9)
    matcher: PhraseMatcher = field(compare=False)  # prefixes and literals, one pass
    match: tuple = field(default=(), compare=False)  # each rule's regex.match, bound once
    kinds: frozenset[str] = frozenset()  # the kinds the rules have


def _lower_pattern(pattern: str) -> str:
    """Lower-case a pattern's literals, leaving escapes (\\S, \\W, \\D, \\B) intact."""
    out, escaped = [], False
    for ch in pattern:
        out.append(ch if escaped else ch.lower())
        escaped = ch == "\\" and not escaped
    return "".join(out)


def phrase_regex(pattern: str) -> str:
    """A space is a run of whitespace; " ?" (as in 'over ?due') is optional whitespace.

    (Read naively, " ?" would become a lazy ``\\s+?``: a required space, so "overdue" and
    "cashflow" would never match.)
    """
    return pattern.replace(" ?", r"\s*").replace(" ", r"\s+")


def _compile(pattern: str, *, boundary: bool, case: bool, where: str) -> re.Pattern[str]:
    # Case-insensitive rules are matched against lower-cased text without re.IGNORECASE:
    # IGNORECASE disables the regex engine's literal-prefix scan and costs ~5x.
    body = phrase_regex(pattern if case else _lower_pattern(pattern))
    if boundary:
        body = rf"(?<![\w'])(?:{body})(?![\w])"
    try:
        return re.compile(body)
    except re.error as exc:
        raise RulesError(f"{where}: bad pattern {pattern!r}: {exc}") from exc


_WORD_START_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_BOUNDARY = "(?<![\\w'])"  # what _compile puts before a rule with word boundaries


def _gate(rule: Rule) -> frozenset[str] | None:
    """The rarest literals one of which every match contains (None: no pre-check)."""
    sets = required_factors(rule.regex.pattern)
    if rule.case:
        if any(len(x.lower()) != len(x) for fs in sets for x in fs):
            return None  # lower-casing changes lengths: no safe pre-check
        sets = tuple(frozenset(x.lower() for x in fs) for fs in sets)
    return max(sets, key=lambda fs: (min(map(len, fs)), -len(fs)), default=None)


@functools.lru_cache(maxsize=8)
def _load(path: Path) -> Rules:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    settings = data.get("settings", {})
    rules: list[Rule] = []
    for kind, entries in data.get("rules", {}).items():
        if kind not in KINDS:
            raise RulesError(f"{path}: unknown kind [rules.{kind}]")
        healthy = kind in HEALTHY_KINDS
        for i, entry in enumerate(entries):
            where = f"{path}: rules.{kind}[{i}]"
            try:
                weight = float(entry["w"])
                pattern = entry["p"]
            except KeyError as exc:
                raise RulesError(f"{where}: missing {exc}") from exc
            if (weight < 0) != healthy:
                raise RulesError(f"{where}: weight sign does not match the kind")
            rules.append(
                Rule(
                    kind=kind,
                    weight=weight,
                    why=entry.get("why", ""),
                    regex=_compile(pattern, boundary=entry.get("b", True),
                                   case=entry.get("case", False), where=where),
                    negatable=entry.get("neg", not healthy),
                    at_start=entry.get("at") == "start",
                    unless=frozenset(entry.get("unless", ())),
                    case=entry.get("case", False),
                    enthusiasm=bool(entry.get("enthusiasm", False)),
                    intensifier=bool(entry.get("intensifier", False)),
                )
            )
    word_prefixes: dict[int, frozenset[str]] = {}  # matched wherever a prefix starts a word
    at_boundary: dict[int, frozenset[str]] = {}  # other rules that begin at a boundary
    anywhere: dict[int, frozenset[str]] = {}  # at_start and other scan_all rules
    scan_all: list[int] = []
    at_start: list[int] = []
    anchored: set[int] = set()  # at_start rules tried only where a prefix starts a sentence
    emulated: set[int] = set()  # scan_all rules tried only where a prefix occurs
    ascii_only: set[int] = set()  # ... when the text is ASCII (prefixes read \d as 0-9)
    gates: dict[int, frozenset[str]] = {}  # the rest: tried only when these literals occur
    for i, rule in enumerate(rules):
        pattern = rule.regex.pattern
        keys = None if rule.case else literal_prefixes(pattern)
        if rule.at_start:
            at_start.append(i)
            if keys is not None:
                (at_boundary if pattern.startswith(_BOUNDARY) else anywhere)[i] = keys
                anchored.add(i)
                continue
        elif keys is not None and all(k[0] in _WORD_START_CHARS for k in keys):
            word_prefixes[i] = keys
            continue
        else:
            scan_all.append(i)
            if not rule.case and min_width(pattern) > 0:
                if keys is None:
                    keys = literal_prefixes(pattern, ascii_digits=True)
                    if keys is not None:
                        ascii_only.add(i)
                if keys is not None:
                    (at_boundary if pattern.startswith(_BOUNDARY) else anywhere)[i] = keys
                    emulated.add(i)
                    if i not in ascii_only:
                        continue
        gate = _gate(rule)
        if gate is not None:
            gates[i] = gate
    caps = data.get("caps", {})
    urgency = data.get("urgency_context", {})
    cc = data.get("escalation_cc", {})
    tone_cfg = data.get("tone", {})
    host = data.get("hostility", {})
    cheer = data.get("enthusiasm", {})
    strain = data.get("strain", {})
    cheer_words = [phrase_regex(_lower_pattern(w)) for w in cheer.get("words", ())]
    return Rules(
        rules=tuple(rules),
        bias=float(settings.get("bias", -2.0)),
        decay=float(settings.get("decay", 0.5)),
        caps_by_kind={k: float(v.get("cap", 3.0)) for k, v in data.get("kinds", {}).items()},
        negators=frozenset(settings.get("negators", ("not", "no", "never"))),
        negation_window=int(settings.get("negation_window", 3)),
        targeted_kinds=frozenset(settings.get("targeted_kinds", ())),
        targeted_factor=float(settings.get("targeted_factor", 1.0)),
        third_party_factor=float(settings.get("third_party_factor", 1.0)),
        max_evidence=int(settings.get("max_evidence", 5)),
        evidence_max_chars=int(settings.get("evidence_max_chars", 240)),
        caps=CapsRule(
            kind=caps.get("kind", "disrespect"),
            min_words=int(caps.get("min_words", 2)),
            weight=float(caps.get("weight", 0.8)),
            per_extra_word=float(caps.get("per_extra_word", 0.15)),
            max_weight=float(caps.get("max_weight", 1.4)),
            acronyms=frozenset(a.upper() for a in caps.get("acronyms", ())),
            unless=frozenset(caps.get("unless", ())),
            enthusiasm=bool(caps.get("enthusiasm", False)),
        ),
        night_start=int(urgency.get("night_start", 22)),
        night_end=int(urgency.get("night_end", 6)),
        weekend=bool(urgency.get("weekend", True)),
        off_hours_factor=float(urgency.get("factor", 1.0)),
        senior_weight=float(cc.get("weight", 1.2)),
        senior_parts=frozenset(s.lower() for s in cc.get("senior", ())),
        tone_threshold=float(tone_cfg.get("threshold", -0.1)),
        tone_scale=float(tone_cfg.get("scale", 2.0)),
        courtesy_words=frozenset(w.lower() for w in tone_cfg.get("courtesy_words", ())),
        tone_exempt=tuple(
            _compile(p, boundary=True, case=False, where=f"{path}: tone.exempt[{i}]")
            for i, p in enumerate(tone_cfg.get("exempt", ()))
        ),
        hostility_threshold=float(host.get("threshold", 0.5)),
        hostility_scale=float(host.get("scale", 1.0)),
        hostility_max_sentences=int(host.get("max_sentences", 2)),
        strain_threshold=float(strain.get("threshold", 1.0)),
        strain_scale=float(strain.get("scale", 0.5)),
        strain_max_sentences=int(strain.get("max_sentences", 2)),
        strain_window=max(1, int(strain.get("window", 2))),
        enthusiasm_words=(re.compile(rf"(?<![\w'])(?:{'|'.join(cheer_words)})(?![\w])")
                          if cheer_words else None),
        enthusiasm_kinds=frozenset(cheer.get("kinds", ())),
        scan_all=tuple(scan_all),
        at_start=tuple(at_start),
        gated=frozenset(gates),
        anchored=frozenset(anchored),
        emulated=frozenset(emulated),
        ascii_only=frozenset(ascii_only),
        matcher=PhraseMatcher([(word_prefixes, True), (at_boundary, True), (anywhere, False)],
                              gates),
        match=tuple(rule.regex.match for rule in rules),
        kinds=frozenset(rule.kind for rule in rules),
    )


def load_rules(path: Path | None = None) -> Rules:
    """Rules from the reviewed resource file (cached: patterns compile once per process)."""
    return _load(Path(path) if path is not None else DEFAULT_RULES)


# --------------------------------------------------------------------------- text model


class _Hit(NamedTuple):  # a tuple: made many times per message
    kind: str
    weight: float
    start: int  # the matched phrase
    end: int
    sentence: int  # index into Doc.sentences
    unless: frozenset[str] = frozenset()  # dropped if its sentence has a hit of these kinds
    enthusiasm: bool = False  # punctuation/caps: enthusiasm in an otherwise positive message
    intensifier: bool = False  # counts only beside other friction in the message


class Doc:
    """The input prepared once for every detector: normalised, quotes blanked, sentences."""

    def __init__(self, text: str) -> None:
        self.text = text
        norm = text.translate(_STRAIGHTEN)
        if ">" in norm:
            norm = _QUOTED_LINE.sub(lambda m: " " * len(m.group()), norm)
        self.norm = norm
        lower = self.norm.lower()
        if len(lower) != len(self.norm):  # e.g. "İ": keep one char for one char
            lower = "".join(c if len(c.lower()) != 1 else c.lower() for c in self.norm)
        self.lower = lower
        self.sentences = _split_sentences(self.norm)
        self._starts = [s for s, _ in self.sentences]

    def sentence_of(self, pos: int) -> int:
        """The sentence holding ``pos`` (the first one for offsets before it)."""
        return max(bisect.bisect_right(self._starts, pos) - 1, 0)

    def evidence(self, hit_start: int, hit_end: int, limit: int) -> Evidence:
        """Quote the sentence (or, when too long, the clause) around a hit."""
        s, e = self.evidence_span(hit_start, hit_end, limit)
        return Evidence(quote=self.text[s:e], start=s, end=e)

    def evidence_span(self, hit_start: int, hit_end: int, limit: int) -> tuple[int, int]:
        """Where evidence() would quote (cheap: no Evidence made, for de-duplication)."""
        s, e = self.sentences[self.sentence_of(hit_start)]
        if e - s > limit:
            cs = s
            for m in _CLAUSE_BREAK.finditer(self.norm, s, hit_start):
                cs = m.end()
            ce = e
            m = _CLAUSE_BREAK.search(self.norm, hit_end, e)
            if m:
                ce = m.start()
            s, e = cs, max(ce, hit_end)
            if e - s > limit:
                s, e = max(s, hit_start - limit // 2), min(e, hit_end + limit // 2)
        text = self.text
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        return s, e


# A line whose stripped text is shorter than _SHORT_LINE, with its newline: a sentence ends.
_SHORT_LINE_END = re.compile(
    rf"(?m)^[^\S\n]*\S(?:[^\n]{{0,{_SHORT_LINE - 3}}}\S)?[^\S\n]*\n")
_LEADING = re.compile("[ \t\r\n\\-*•\"'(]*")  # not a sentence's first visible character


def _split_sentences(norm: str) -> list[tuple[int, int]]:
    cuts = {m.end() for m in _SENTENCE_END.finditer(norm)}
    cuts.update(m.end() for m in _SHORT_LINE_END.finditer(norm))
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in sorted(cuts):
        if cut > start:
            spans.append((start, cut))
            start = cut
    if start < len(norm) or not spans:
        spans.append((start, len(norm)))
    lead = _LEADING.match
    return [(lead(norm, s, e).end(), e) for s, e in spans]


def _negated(doc: Doc, rules: Rules, sentence_start: int, hit_start: int) -> bool:
    scope_start = sentence_start
    for m in _CLAUSE_BREAK.finditer(doc.norm, sentence_start, hit_start):
        scope_start = m.end()
    tokens = _TOKEN.findall(doc.lower[scope_start:hit_start])
    for tok in tokens[-rules.negation_window:]:
        if tok in rules.negators or tok.endswith("n't"):
            return True
    return False


# --------------------------------------------------------------------------- detectors


def _matches(doc: Doc, rules: Rules, kinds: frozenset[str]) -> list[tuple[Rule, int, int]]:
    """Every rule match, as trying each rule everywhere would find them, in one pass.

    Word rules: a match at every word start (overlaps allowed); at_start rules: at every
    sentence start; scan_all rules: finditer() over the text. The automaton only says where
    a rule can start (or whether it can match at all); the rule's regex decides.
    """
    found: list[tuple[Rule, int, int]] = []
    lower, norm, all_rules = doc.lower, doc.norm, rules.rules

    def text_for(rule: Rule) -> str:
        return norm if rule.case else lower

    scan = rules.matcher.scan(lower)
    at_words, at_boundary, anywhere = scan.slots
    gated, present, anchored, emulated = rules.gated, scan.present, rules.anchored, rules.emulated
    where: dict[int, list[int]] = {}  # anchored and emulated rules -> offsets of a prefix
    for slot in (at_boundary, anywhere):
        for pos, cands in slot:
            for i in cands:
                where.setdefault(i, []).append(pos)
    ends: dict[int, int] = {}  # sentence start -> end
    for s, e in doc.sentences:
        if e > ends.get(s, -1):
            ends[s] = e
    for i in rules.at_start:
        rule = all_rules[i]
        if rule.kind not in kinds:
            continue
        if i in anchored:
            for pos in where.get(i, ()):
                if pos in ends:
                    m = rule.regex.match(lower, pos, ends[pos])
                    if m:
                        found.append((rule, m.start(), m.end()))
        elif i not in gated or i in present:
            for s, e in doc.sentences:
                m = rule.regex.match(text_for(rule), s, e)
                if m:
                    found.append((rule, m.start(), m.end()))
    for i in rules.scan_all:
        rule = all_rules[i]
        if rule.kind not in kinds:
            continue
        if i in emulated and (i not in rules.ascii_only or lower.isascii()):
            # finditer() exactly: leftmost match, then on from its end (none is empty)
            after = 0
            for pos in where.get(i, ()):
                if pos >= after:
                    m = rule.regex.match(lower, pos)
                    if m:
                        found.append((rule, m.start(), m.end()))
                        after = m.end()
        elif i not in gated or i in present:
            found.extend((rule, m.start(), m.end()) for m in rule.regex.finditer(text_for(rule)))
    match = rules.match
    if kinds.issuperset(rules.kinds):
        for pos, cands in at_words:
            for i in cands:
                m = match[i](lower, pos)
                if m:
                    found.append((all_rules[i], *m.span()))
    else:
        for pos, cands in at_words:
            for i in cands:
                if all_rules[i].kind in kinds:
                    m = match[i](lower, pos)
                    if m:
                        found.append((all_rules[i], *m.span()))
    return found


def _phrase_hits(doc: Doc, rules: Rules, kinds: frozenset[str]) -> list[_Hit]:
    norm = doc.norm
    hits: list[_Hit] = []
    for rule, start, end in _matches(doc, rules, kinds):
        if end == start:
            continue
        idx = doc.sentence_of(start)
        if rule.negatable and _negated(doc, rules, doc.sentences[idx][0], start):
            continue
        weight = rule.weight
        if rule.kind in rules.targeted_kinds:
            weight *= _target_factor(norm, doc.sentences[idx], rules)
        hits.append(_Hit(rule.kind, weight, start, end, idx, rule.unless, rule.enthusiasm,
                         rule.intensifier))
    return hits


def _target_factor(norm: str, sentence: tuple[int, int], rules: Rules) -> float:
    """Contempt aimed at "you" weighs more; aimed at someone else instead, less.

    "Their support is useless" is a client venting about a third party, which is not
    friction toward us; a sentence naming both counts as aimed at us.
    """
    s, e = sentence
    if _SECOND_PERSON.search(norm, s, e):
        return rules.targeted_factor
    if _THIRD_PARTY.search(norm, s, e):
        return rules.third_party_factor
    return 1.0


_CAPS_WORD = re.compile(r"(?<![\w'])[A-Z0-9][A-Z0-9'&-]*(?![\w'])")
_TWO_CAPS = re.compile(r"[A-Z][A-Z0-9'&-]*[A-Z]")
_LETTER_OR_NEWLINE = re.compile(r"[A-Za-z0-9\n]")


def _caps_hits(doc: Doc, rules: Rules) -> list[_Hit]:
    """Runs of ALL-CAPS words on one line; acronyms and single letters do not count."""
    caps = rules.caps
    if len(_TWO_CAPS.findall(doc.norm)) < caps.min_words:
        return []  # each shouted word holds one of these, and they cannot overlap
    words = [m for m in _CAPS_WORD.finditer(doc.norm) if any(c.isalpha() for c in m.group())]
    shouting = {m.start() for m in words
                if sum(c.isalpha() for c in m.group()) >= 2
                and m.group().strip("'-&") not in caps.acronyms}
    if len(shouting) < caps.min_words:
        return []
    runs: list[list[re.Match[str]]] = []
    for m in words:
        if runs:
            gap = doc.norm[runs[-1][-1].end():m.start()]
            if len(gap) <= 4 and not _LETTER_OR_NEWLINE.search(gap):
                runs[-1].append(m)
                continue
        runs.append([m])
    hits = []
    for run in runs:
        shouted = sum(1 for m in run if m.start() in shouting)
        if shouted >= caps.min_words:
            weight = min(caps.max_weight,
                         caps.weight + caps.per_extra_word * (shouted - caps.min_words))
            start, end = run[0].start(), run[-1].end()
            hits.append(_Hit(caps.kind, weight, start, end, doc.sentence_of(start), caps.unless,
                             caps.enthusiasm))
    return hits


def _off_hours(rules: Rules, sent_at: datetime | None) -> bool:
    if sent_at is None:
        return False
    if rules.weekend and sent_at.weekday() >= 5:
        return True
    hour = sent_at.hour
    if rules.night_start > rules.night_end:
        return hour >= rules.night_start or hour < rules.night_end
    return rules.night_start <= hour < rules.night_end


def _senior_cc(rules: Rules, cc: Sequence[str], previous_cc: Sequence[str]) -> list[Evidence]:
    before = {_address(a) for a in previous_cc}
    found = []
    for raw in cc:
        addr = _address(raw)
        if not addr or addr in before:
            continue
        local = addr.split("@", 1)[0]
        parts = set(re.split(r"[._+\-]+", local)) | {local}
        if parts & rules.senior_parts:
            found.append(Evidence(quote=f"Cc: {addr}"))
    return found


def _address(raw: str) -> str:
    raw = raw.strip()
    m = re.search(r"<([^>]+)>", raw)
    return (m.group(1) if m else raw).strip().lower()


def _exempt_spans(doc: Doc, rules: Rules) -> list[tuple[int, int]]:
    """Benign phrases the lexicon and the model misread ("hate to chase", "corrupt file")."""
    combined = _combined_exempt(rules.tone_exempt)
    return [m.span() for m in combined.finditer(doc.lower)] if combined else []


@functools.lru_cache(maxsize=8)
def _combined_exempt(patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str] | None:
    """One alternation instead of one scan per phrase (the text is scanned once)."""
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns)) if patterns else None


def _masked(text: str, spans: Sequence[tuple[int, int]]) -> str:
    chars = list(text)
    for s, e in spans:
        chars[s:e] = " " * (e - s)
    return "".join(chars)


def _tone_hit(doc: Doc, rules: Rules, assessments: Sequence[Assessment]) -> _Hit | None:
    """negative_tone from the lexicon pass, ignoring courtesy words of civil farewells."""
    kept = [a for a in assessments if not (a.polarity < 0 and set(a.words) & rules.courtesy_words)]
    if not kept:
        return None
    polarity = sum(a.polarity for a in kept) / len(kept)
    if polarity >= rules.tone_threshold:
        return None
    worst = min(kept, key=lambda a: a.polarity)
    anchor = next((w for w in worst.words if w[:1].isalpha()), None)
    start = end = 0
    if anchor:
        m = re.search(rf"(?<!\w){re.escape(anchor)}(?!\w)", doc.norm, re.I)
        if m:
            start, end = m.start(), m.end()
    idx = doc.sentence_of(start)
    weight = rules.tone_scale * -polarity
    if "negative_tone" in rules.targeted_kinds:
        weight *= _target_factor(doc.norm, doc.sentences[idx], rules)
    return _Hit("negative_tone", weight, start, end, idx)


def _hostility(doc: Doc, rules: Rules, lowered: str) -> tuple[_Hit, list[Evidence]] | None:
    """The offensive-language model, applied per sentence of the new text (quotes blanked).

    The model was trained on short texts and L2-normalises its input, so one insult in a
    long, otherwise civil email would be diluted to nothing: each sentence that contains a
    word the model counts against it is scored on its own, and the message takes the worst.
    Weight = scale * (logit(p) - logit(threshold)): the model's own calibrated log-odds
    beyond its decision threshold (capped per kind like every other signal).
    """
    try:
        model = hostility.load_model()
    except hostility.HostilityModelError as exc:
        _warn_once("hostility", str(exc))
        return None
    table, pos_sq = model.table, model.pos_sq
    t = rules.hostility_threshold
    floor = hostility.min_positive_mass(model, t)
    scored = []
    suspect: dict[int, tuple[float, int, int]] = {}  # sentence -> its strongest word
    zeros = itertools.repeat(0.0)
    for idx, (s, e) in enumerate(doc.sentences):
        words = hostility.TOKEN.findall(lowered, s, e)
        if sum(map(pos_sq.get, set(words), zeros)) <= floor:
            continue  # no mix of these words can score above the threshold
        counts: dict[str, int] = {}
        for w in words:
            if w in table:
                counts[w] = counts.get(w, 0) + 1
        p = hostility.probability_of_counts(model, counts)[0]
        if p <= t:
            continue
        scored.append((p, idx))
        best = (0.0, s, s)
        for m in hostility.TOKEN.finditer(lowered, s, e):
            row = table.get(m.group())
            if row is not None and row[-2] > best[0]:
                best = (row[-2], m.start(), m.end())
        suspect[idx] = best
    if not scored:
        return None
    scored.sort(reverse=True)
    p = min(scored[0][0], 1.0 - 1e-12)
    weight = rules.hostility_scale * (math.log(p / (1 - p)) - math.log(t / (1 - t)))
    _, start, end = suspect[scored[0][1]]
    hit = _Hit("hostility", weight, start, end, scored[0][1])
    more = [doc.evidence(suspect[i][1], suspect[i][2], rules.evidence_max_chars)
            for _, i in scored[1: rules.hostility_max_sentences]]
    return hit, more


def _strain(doc: Doc, rules: Rules) -> tuple[_Hit, list[Evidence]] | None:
    """The learned friction model (friction_model.py) over the new text, a few sentences at a time.

    The model learned from whole emails, and sarcasm or a veiled threat often needs its
    neighbour ("Hard-coded prices. Wonderful."), yet a long email must not add up many mild
    words: so windows of ``strain_window`` consecutive sentences are scored and the message
    takes the strongest. Weight = scale * (log-odds - threshold); each quote is the sentence
    holding the n-gram that raised its window most.
    """
    try:
        model = friction_model.load_model()
    except friction_model.FrictionModelError as exc:
        _warn_once("strain", str(exc))
        return None
    t = rules.strain_threshold
    lowered = doc.lower
    sentences = doc.sentences or [(0, len(lowered))]
    last = len(sentences) - 1
    scores = friction_model.score_windows(model, lowered, sentences, rules.strain_window)
    above = sorted(((logit, i) for i, (logit, _) in enumerate(scores) if logit > t),
                   reverse=True)
    picked: dict[int, tuple[float, int, int]] = {}  # quoted sentence -> its best window
    for logit, i in above:  # strongest first: the first window quoting a sentence is its best
        raised = friction_model.raisers(scores[i][1])
        if not raised:
            continue
        s, e = sentences[i][0], sentences[min(i + rules.strain_window - 1, last)][1]
        a, b = _find_gram(lowered, raised, s, e)
        picked.setdefault(doc.sentence_of(a), (logit, a, b))
        if len(picked) >= rules.strain_max_sentences:
            break
    if not picked:
        return None
    ranked = [(v, k) for k, v in picked.items()]
    (logit, a, b), idx = ranked[0]
    hit = _Hit("strain", rules.strain_scale * (logit - t), a, b, idx)
    more = [doc.evidence(x, y, rules.evidence_max_chars) for (_, x, y), _ in ranked[1:]]
    return hit, more


_GRAM_PART = {"<num>": r"\d+(?:[.,:]\d+)*", "!": r"!", "!!": r"!!+", "?": r"\?", "??": r"\?\?+",
              "?!": r"[?!]*(?:\?!|!\?)[?!]*"}


def _find_gram(lowered: str, grams: tuple[tuple[str, float], ...], s: int, e: int
               ) -> tuple[int, int]:
    """Where the strongest n-gram that can be located sits in lowered[s:e] (else its start)."""
    for gram, _ in grams[:5]:
        m = _gram_regex(gram).search(lowered, s, e)
        if m:
            return m.start(), m.end()
    return s, s


@functools.lru_cache(maxsize=4096)
def _gram_regex(gram: str) -> re.Pattern[str]:
    parts = [_GRAM_PART.get(tok) or rf"(?<![\w']){re.escape(tok)}(?![\w'])"
             for tok in gram.split(" ")]
    return re.compile(r"[^a-z0-9!?']*".join(parts))


def _add_model_hit(found: tuple[_Hit, list[Evidence]] | None, hits: list[_Hit],
                   extra: dict[str, list[Evidence]], extra_weight: dict[str, float]) -> None:
    """A model's strongest sentence is a hit; its other sentences are more quotes, not weight."""
    if found is None:
        return
    hit, more = found
    hits.append(hit)
    if more:
        extra[hit.kind] = more
        extra_weight[hit.kind] = 0.0


@functools.cache
def _warn_once(signal: str, message: str) -> None:
    logging.getLogger(__name__).warning("%s signal unavailable: %s", signal, message)


def _combine(doc: Doc, rules: Rules, hits: list[_Hit], extra: dict[str, list[Evidence]],
             extra_weight: dict[str, float], scale: dict[str, float]) -> list[Signal]:
    # healthy hits inside a friction phrase are not healthy ("thanks for nothing"); caps and
    # punctuation over praise ("THE BEST!!!") and a hit that yields to that healthy kind
    # ("You are heroes.") do not count as such a phrase
    friction_spans = [(h.start, h.end, h.unless) for h in hits if h.weight > 0 and not h.enthusiasm]
    if friction_spans:
        hits = [h for h in hits if h.weight > 0
                or not any(s <= h.start and h.end <= e and h.kind not in unless
                           for s, e, unless in friction_spans)]
    if any(h.unless for h in hits):
        kinds_by_sentence: dict[int, set[str]] = {}
        for h in hits:
            kinds_by_sentence.setdefault(h.sentence, set()).add(h.kind)
        hits = [h for h in hits
                if not (h.unless and h.unless & kinds_by_sentence[h.sentence])]

    if any(h.enthusiasm for h in hits):
        hits = _without_enthusiasm(doc, rules, hits)
    if any(h.intensifier for h in hits) and not any(map(_rule_friction, hits)):
        # "We won!!!", "3 already?!" : punctuation sharpens friction, it is not friction
        hits = [h for h in hits if not h.intensifier]

    by_kind: dict[str, list[_Hit]] = {}
    for h in sorted(hits, key=_strength):
        same = by_kind.get(h.kind)
        if same is None:
            by_kind[h.kind] = [h]
        elif not any(o.start < h.end and h.start < o.end for o in same):
            same.append(h)  # overlapping phrases of one kind count once, at the strongest

    signals = []
    limit, most, decay = rules.evidence_max_chars, rules.max_evidence, rules.decay
    for kind in sorted(by_kind.keys() | extra.keys(), key=_KIND_ORDER.__getitem__):
        kind_hits = by_kind.get(kind, [])
        weights = [abs(h.weight) for h in kind_hits]
        if kind in extra:
            weights += [extra_weight.get(kind, 0.0)] * len(extra[kind])
        weights.sort(reverse=True)
        total = sum(w * decay**i for i, w in enumerate(weights)) * scale.get(kind, 1.0)
        total = min(total, rules.caps_by_kind.get(kind, 3.0))
        sign = -1.0 if kind in HEALTHY_KINDS else 1.0
        spans: list[tuple[int, int]] = []
        for h in sorted(kind_hits, key=_start) if len(kind_hits) > 1 else kind_hits:
            span = doc.evidence_span(h.start, h.end, limit)
            if span not in spans:
                spans.append(span)
                if len(spans) >= most:
                    break
        text = doc.text
        evidence = [Evidence(quote=text[s:e], start=s, end=e) for s, e in spans]
        evidence.extend(extra.get(kind, ()))
        signals.append(Signal(kind=kind, weight=round(sign * total, 4),
                              evidence=tuple(evidence[:most])))
    return signals


def _rule_friction(h: _Hit) -> bool:
    """Friction a rule found on its own: not punctuation that only sharpens other friction,
    and not a model's verdict (the models fire early and read "!!!" and "CRYING" too)."""
    return h.weight > 0 and not h.intensifier and h.kind not in _MODEL_KINDS


def _without_enthusiasm(doc: Doc, rules: Rules, hits: list[_Hit]) -> list[_Hit]:
    """Drop "!!!" and caps that read as enthusiasm ("WOW!!! Exactly what we wanted!").

    Only when nothing else in the message is friction and the message is plainly positive
    (a word of the [enthusiasm] list, or a gratitude hit that survived): then the stack is
    excitement, not shouting. Sarcasm ("Great!!! Another delay.") keeps its own hit, so the
    punctuation stays friction there.
    """
    if any(_rule_friction(h) and not h.enthusiasm for h in hits):
        return hits
    # a cheer word inside the hit itself ("Oh wonderful, the site is down.") is the sarcasm,
    # not the evidence of delight; a caps run ("YESSSS PERFECT") shouts the delight itself
    own = [(h.start, h.end) for h in hits
           if h.enthusiasm and not doc.norm[h.start:h.end].isupper()]
    positive = any(h.kind in rules.enthusiasm_kinds for h in hits) or (
        rules.enthusiasm_words is not None and any(
            not any(s < m.end() and m.start() < e for s, e in own)
            for m in rules.enthusiasm_words.finditer(doc.lower)))
    return [h for h in hits if not h.enthusiasm] if positive else hits


_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}


def _strength(h: _Hit) -> float:
    return -abs(h.weight)


def _start(h: _Hit) -> int:
    return h.start


def detect(
    text: str,
    *,
    sent_at: datetime | None = None,
    cc: Sequence[str] = (),
    previous_cc: Sequence[str] = (),
    kinds: Sequence[str] = KINDS,
    assessments: Sequence[Assessment] | None = None,
    rules: Rules | None = None,
) -> list[Signal]:
    """All signals found in ``text`` (friction positive, healthy negative), with evidence.

    ``kinds`` restricts the detectors (the farewell guardrails and staff mail use it);
    ``assessments`` reuses a lexicon pass already made for the tone (one pass per message).
    CC evidence has no span in the text: its offsets are 0.
    """
    return detect_in(Doc(text), sent_at=sent_at, cc=cc, previous_cc=previous_cc, kinds=kinds,
                     assessments=assessments, rules=rules)


def detect_in(
    doc: Doc,
    *,
    sent_at: datetime | None = None,
    cc: Sequence[str] = (),
    previous_cc: Sequence[str] = (),
    kinds: Sequence[str] = KINDS,
    assessments: Sequence[Assessment] | None = None,
    rules: Rules | None = None,
) -> list[Signal]:
    """detect() over an already prepared Doc (analyse_message prepares it once)."""
    rules = rules or load_rules()
    wanted = frozenset(kinds)
    hits = _phrase_hits(doc, rules, wanted)
    if rules.caps.kind in wanted:
        hits.extend(_caps_hits(doc, rules))
    # Benign phrases the lexicon and the model misread are looked for only when one of those
    # detectors would fire (the scan is the costly part and most mail has no such hit).
    exempt: list[tuple[int, int]] | None = None
    if "negative_tone" in wanted:
        if assessments is None:
            assessments = assess(doc.norm)[1]
        tone_hit = _tone_hit(doc, rules, assessments)
        if tone_hit:
            exempt = _exempt_spans(doc, rules)
            if exempt:
                tone_hit = _tone_hit(doc, rules, assess(_masked(doc.norm, exempt))[1])
        if tone_hit:
            hits.append(tone_hit)
    extra: dict[str, list[Evidence]] = {}
    extra_weight: dict[str, float] = {}
    if "hostility" in wanted:
        found = _hostility(doc, rules, doc.lower)
        if found is not None:
            if exempt is None:
                exempt = _exempt_spans(doc, rules)
            if exempt:
                found = _hostility(doc, rules, _masked(doc.lower, exempt))
        _add_model_hit(found, hits, extra, extra_weight)
    if "strain" in wanted:
        _add_model_hit(_strain(doc, rules), hits, extra, extra_weight)
    if "escalation" in wanted:
        senior = _senior_cc(rules, cc, previous_cc)
        if senior:
            extra["escalation"] = senior
            extra_weight["escalation"] = rules.senior_weight
    scale = {}
    if _off_hours(rules, sent_at):
        scale["urgency"] = rules.off_hours_factor
    return _combine(doc, rules, hits, extra, extra_weight, scale)


def friction_score(signals: Sequence[Signal], rules: Rules | None = None) -> float:
    """friction = logistic(bias + sum of signal weights).

    Transparent and monotone: every friction signal raises it, every healthy signal lowers
    it, and a message with no evidence sits at logistic(bias) (0.12 by default).
    """
    rules = rules or load_rules()
    z = rules.bias + sum(s.weight for s in signals)
    return 1.0 / (1.0 + math.exp(-z))

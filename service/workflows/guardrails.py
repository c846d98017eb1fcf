"""Farewell guardrails: is this draft fit to send to a client we are parting with? (pure)

The article the product grew from: part on business grounds, finish pending work first,
never bring up past shortcomings or lay blame, convey gratitude, ask for feedback, keep
the door open. Every draft (template or owner edit or hand-written file) passes here
before it can be approved, and every failure names the rule, quotes the sentence and
says why in plain words.

Two sources of judgement, both reviewable data:

* the client-side friction detectors (``analysis.friction``) run on OUR text, sentence
  by sentence (blame, disrespect, dismissal, revision loops, negative tone), after civil
  farewell idioms they would misread ("thank you once again", "no problem at all") are
  blanked;
* ``resources/guardrails.toml``: phrasing of past shortcomings, sarcasm and cold notices
  that must be absent; gratitude, feedback and open-door cues that must be present; the
  verdict phrasing a conversation request must avoid; leftover template fields.

Negation is handled per clause ("not your fault", "no blame"), quoted history (``> ``
lines) is ignored, and the tone floor ignores courtesy words ("sorry to see this chapter
end" is civil, not negative).
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from service.analysis.friction import Doc, detect, load_rules, phrase_regex
from service.analysis.tone import assess

DEFAULT_RESOURCE = Path(__file__).with_name("resources") / "guardrails.toml"

KINDS = ("farewell", "feedback_request", "conversation_request")

#: Every rule name a result can carry, in report order.
RULES = (
    "placeholders",
    "no_blame",
    "civil",
    "no_verdict",
    "gratitude",
    "feedback_invitation",
    "door_open",
    "meeting_proposed",
    "pending_items",
    "tone",
    "client_name",
    "signature",
)

RULES_BY_KIND: dict[str, tuple[str, ...]] = {
    "farewell": ("placeholders", "no_blame", "civil", "gratitude", "feedback_invitation",
                 "door_open", "pending_items", "tone", "client_name", "signature"),
    "feedback_request": ("placeholders", "no_blame", "civil", "gratitude",
                         "feedback_invitation", "door_open", "tone", "client_name",
                         "signature"),
    # A request to talk: civil, proposes a meeting, announces nothing in writing.
    "conversation_request": ("placeholders", "no_blame", "civil", "no_verdict",
                             "meeting_proposed", "tone", "client_name", "signature"),
}

_REUSE_RULE = {"blame": "no_blame", "revision_loop": "no_blame", "negative_tone": "no_blame",
               "disrespect": "civil", "dismissal": "civil"}
_REUSE_WHY = {
    "blame": "lays blame on the client",
    "revision_loop": "dwells on rework and repeated requests",
    "negative_tone": "sounds dissatisfied or harsh",
    "disrespect": "reads as disrespectful or sarcastic",
    "dismissal": "sounds dismissive",
}
_GREETING = re.compile(
    r"^[ \t]*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|morning|greetings)"
    r"[ \t]+([A-Za-zÀ-ÿ][\w'’.-]*)", re.I | re.M)
_GROUP_ADDRESS = frozenset({"team", "all", "everyone", "there", "both", "folks", "everybody",
                            "friends", "colleagues", "again", "and", "you"})
_CLOSINGS = frozenset({"best", "regards", "kind", "warm", "warmest", "thanks", "thank",
                       "cheers", "sincerely", "yours", "all", "with", "many", "take", "talk",
                       "speak", "see", "ps", "p.s.", "sent", "love", "respectfully"})
_NAME_LINE = re.compile(r"^[-–— ]*([A-ZÀ-Þ][\w.'’-]*(?:\s+[A-ZÀ-Þ][\w.'’-]*){0,3})\s*(?:[,|(].*)?$")
_STRAIGHTEN = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "“": '"', "”": '"',
                             "„": '"', "«": '"', "»": '"', "\u00a0": " "})
_QUOTED_LINE = re.compile(r"(?m)^[ \t]*>.*$")
_CLAUSE_BREAK = re.compile(r"[,;:()\u2013\u2014]|\s-\s|\bbut\b|\bhowever\b|\bthough\b", re.I)
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")
_KEYWORD = re.compile(r"[a-z0-9][a-z0-9'-]*")


@dataclass(frozen=True)
class GuardrailContext:
    """What is known about the recipient and sender; unknown parts are not checked."""

    client_name: str | None = None
    contact_name: str | None = None
    owner_name: str | None = None
    owner_signature: str | None = None
    other_clients: tuple[str, ...] = ()
    pending_items: tuple[str, ...] = ()
    tone_floor: float | None = None  # None: the resource file's default


@dataclass(frozen=True)
class GuardrailResult:
    """One rule's verdict; ``detail`` is written for the owner, ``sentence`` quotes the draft."""

    rule: str
    passed: bool
    detail: str
    sentence: str | None = None


class GuardrailRulesError(ValueError):
    """The guardrails resource file is malformed: names the entry so a reviewer can fix it."""


@dataclass(frozen=True)
class _Phrase:
    regex: re.Pattern[str]
    negatable: bool


@dataclass(frozen=True)
class _Absent:
    rule: str
    why: str
    phrases: tuple[_Phrase, ...]


@dataclass(frozen=True)
class _Rules:
    tone_floor: float
    negators: frozenset[str]
    negation_window: int
    signature_lines: int
    reuse_kinds: tuple[str, ...]
    reuse_min_weight: float
    lexicon_min_weight: float
    reuse_ignore: tuple[re.Pattern[str], ...]
    absent: tuple[_Absent, ...]
    verdict: _Absent
    present: dict[str, tuple[str, tuple[_Phrase, ...]]]
    plan: re.Pattern[str]
    handover: re.Pattern[str]
    stopwords: frozenset[str]
    placeholder_why: str
    placeholders: tuple[re.Pattern[str], ...]
    courtesy_words: frozenset[str] = field(default_factory=frozenset)


def _compile(pattern: str, *, where: str, boundary: bool = True, case: bool = False
             ) -> re.Pattern[str]:
    body = phrase_regex(pattern)  # the same phrase syntax as friction.toml
    if boundary:
        body = rf"(?<![\w'])(?:{body})(?![\w])"
    try:
        return re.compile(body, 0 if case else re.I)
    except re.error as exc:
        raise GuardrailRulesError(f"{where}: bad pattern {pattern!r}: {exc}") from exc


def _phrases(entries: Iterable[object], *, where: str, negatable: bool) -> tuple[_Phrase, ...]:
    out = []
    for i, entry in enumerate(entries):
        spot = f"{where}[{i}]"
        if isinstance(entry, str):
            out.append(_Phrase(_compile(entry, where=spot), negatable))
        elif isinstance(entry, dict) and "p" in entry:
            out.append(_Phrase(_compile(entry["p"], where=spot, boundary=entry.get("b", True)),
                               bool(entry.get("neg", negatable))))
        else:
            raise GuardrailRulesError(f"{spot}: expected a pattern string or {{p = ...}}")
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> _Rules:
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    settings = data.get("settings", {})
    reuse = data.get("reuse", {})
    where = str(path)
    absent = tuple(
        _Absent(rule=entry["rule"], why=entry["why"],
                phrases=_phrases(entry["patterns"], where=f"{where}: absent[{i}]",
                                 negatable=bool(entry.get("neg", False))))
        for i, entry in enumerate(data.get("absent", ()))
    )
    for entry in absent:
        if entry.rule not in RULES:
            raise GuardrailRulesError(f"{where}: absent rule {entry.rule!r} is not one of {RULES}")
    verdict = data.get("verdict", {})
    present = {
        name: (entry["why"], _phrases(entry["patterns"], where=f"{where}: present.{name}",
                                      negatable=True))
        for name, entry in data.get("present", {}).items()
    }
    for needed in ("gratitude", "feedback", "door", "meeting"):
        if needed not in present:
            raise GuardrailRulesError(f"{where}: [present.{needed}] is missing")
    pending = data.get("pending", {})
    ph = data.get("placeholders", {})
    return _Rules(
        tone_floor=float(settings.get("tone_floor", 0.05)),
        negators=frozenset(settings.get("negators", ("not", "no", "never"))),
        negation_window=int(settings.get("negation_window", 4)),
        signature_lines=int(settings.get("signature_lines", 6)),
        reuse_kinds=tuple(reuse.get("kinds", ())),
        reuse_min_weight=float(reuse.get("min_weight", 0.5)),
        lexicon_min_weight=float(reuse.get("lexicon_min_weight", 1.2)),
        reuse_ignore=tuple(_compile(p, where=f"{where}: reuse.ignore")
                           for p in reuse.get("ignore", ())),
        absent=absent,
        verdict=_Absent("no_verdict", verdict.get("why", "announces the end in writing"),
                        _phrases(verdict.get("patterns", ()), where=f"{where}: verdict",
                                 negatable=True)),
        present=present,
        plan=_compile(pending.get("plan", "will"), where=f"{where}: pending.plan"),
        handover=_compile(pending.get("handover", "hand over"), where=f"{where}: pending"),
        stopwords=frozenset(pending.get("stopwords", ())),
        placeholder_why=ph.get("why", "a template field is still in the draft"),
        placeholders=tuple(
            [_compile(p, where=f"{where}: placeholders", boundary=False)
             for p in ph.get("patterns", ())]
            + [_compile(p, where=f"{where}: placeholders", boundary=False, case=True)
               for p in ph.get("case_patterns", ())]),
        courtesy_words=load_rules().courtesy_words,
    )


def load_guardrail_rules(path: Path | None = None) -> _Rules:
    """The reviewed resource file, compiled once per process."""
    return _load(Path(path) if path is not None else DEFAULT_RESOURCE)


# --------------------------------------------------------------------------- text model


class _Draft:
    """The draft prepared once: quotes straightened, quoted history blanked, sentences."""

    def __init__(self, text: str) -> None:
        self.text = text
        norm = text.translate(_STRAIGHTEN)
        self.norm = _QUOTED_LINE.sub(lambda m: " " * len(m.group()), norm)
        self.doc = Doc(self.norm)
        self.sentences = self.doc.sentences

    def sentence_at(self, pos: int) -> int:
        return self.doc.sentence_of(pos)

    def quote(self, index: int) -> str:
        s, e = self.sentences[index]
        return " ".join(self.text[s:e].split())


def _negated(draft: _Draft, rules: _Rules, index: int, hit_start: int, *,
             whole_clause: bool = False) -> bool:
    start = draft.sentences[index][0]
    for m in _CLAUSE_BREAK.finditer(draft.norm, start, hit_start):
        start = m.end()
    tokens = _TOKEN.findall(draft.norm[start:hit_start].lower())
    if not whole_clause:
        tokens = tokens[-rules.negation_window:]
    return any(t in rules.negators or t.endswith("n't") for t in tokens)


def _hits(draft: _Draft, rules: _Rules, phrases: Sequence[_Phrase], *,
          whole_clause: bool = False) -> list[tuple[int, re.Match[str]]]:
    """(sentence index, match) of every non-negated hit.

    ``whole_clause``: any negator earlier in the clause cancels (for cues that must be
    present: "we would not be happy to help in the future" offers nothing).
    """
    out = []
    for phrase in phrases:
        for m in phrase.regex.finditer(draft.norm):
            if m.end() == m.start():
                continue
            idx = draft.sentence_at(m.start())
            if phrase.negatable and _negated(draft, rules, idx, m.start(),
                                             whole_clause=whole_clause):
                continue
            out.append((idx, m))
    return out


# --------------------------------------------------------------------------- rules


def find_placeholders(text: str, rules: _Rules | None = None) -> list[str]:
    """Leftover template fields and unfinished markers, in order of appearance."""
    rules = rules or load_guardrail_rules()
    norm = text.translate(_STRAIGHTEN)
    found = sorted({(m.start(), m.group()) for rx in rules.placeholders
                    for m in rx.finditer(norm) if m.group().strip()})
    out: list[str] = []
    last_end = -1
    for start, value in found:
        if start >= last_end:  # nested matches report once
            out.append(value)
            last_end = start + len(value)
    return out


def _placeholders(draft: _Draft, rules: _Rules) -> list[GuardrailResult]:
    results = []
    seen = set()
    for rx in rules.placeholders:
        for m in rx.finditer(draft.norm):
            idx = draft.sentence_at(m.start())
            if (idx, m.group()) in seen:
                continue
            seen.add((idx, m.group()))
            results.append(GuardrailResult("placeholders", False,
                                           f"{rules.placeholder_why}: {m.group()!r}",
                                           draft.quote(idx)))
    return results or [GuardrailResult("placeholders", True, "no leftover template fields")]


def _absent(draft: _Draft, rules: _Rules, wanted: set[str]) -> dict[int, GuardrailResult]:
    """Offending sentences (index -> first failure) for no_blame and civil."""
    flagged: dict[int, GuardrailResult] = {}
    for group in rules.absent:
        if group.rule not in wanted:
            continue
        for idx, m in _hits(draft, rules, group.phrases):
            if idx not in flagged:
                flagged[idx] = GuardrailResult(group.rule, False,
                                               f"{group.why} ({m.group().strip()!r})",
                                               draft.quote(idx))
    friction = load_rules()
    for idx, (s, e) in enumerate(draft.sentences):
        if idx in flagged:
            continue
        chunk = draft.norm[s:e]
        for rx in rules.reuse_ignore:
            chunk = rx.sub(lambda m: " " * len(m.group()), chunk)
        if not chunk.strip():
            continue
        kinds = [k for k in rules.reuse_kinds if _REUSE_RULE.get(k) in wanted]
        for signal in detect(chunk, kinds=kinds):
            if signal.weight < rules.reuse_min_weight:
                continue
            why = _REUSE_WHY.get(signal.kind, signal.kind.replace("_", " "))
            lowered = chunk.lower()
            rule_why = next((r.why for r in friction.rules
                             if r.kind == signal.kind and r.regex.search(lowered)), None)
            if rule_why is None and signal.weight < rules.lexicon_min_weight:
                continue  # lexicon-only negative tone, too weak to quote as harsh
            detail = f"{why} ({rule_why})" if rule_why else why
            flagged[idx] = GuardrailResult(_REUSE_RULE[signal.kind], False, detail,
                                           draft.quote(idx))
            break
    return flagged


def _present(draft: _Draft, rules: _Rules, name: str, rule: str,
             flagged: dict[int, GuardrailResult], found_label: str) -> GuardrailResult:
    why, phrases = rules.present[name]
    hits = _hits(draft, rules, phrases, whole_clause=True)
    for idx, _m in sorted(hits, key=lambda h: h[1].start()):
        if idx not in flagged:
            return GuardrailResult(rule, True, f"{found_label}: {draft.quote(idx)!r}")
    return GuardrailResult(rule, False, why)


def _stem(word: str) -> str:
    word = word.strip("'-").removesuffix("'s")
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + repl
    return word


def _keywords(text: str, rules: _Rules) -> list[str]:
    words = _KEYWORD.findall(text.lower().translate(_STRAIGHTEN))
    out = []
    for w in words:
        if w in rules.stopwords or (len(w) < 3 and not any(c.isdigit() for c in w)):
            continue
        stem = _stem(w)
        if stem not in out:
            out.append(stem)
    return out


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 5 and long_.startswith(short)


def _pending(draft: _Draft, rules: _Rules, items: Sequence[str]) -> list[GuardrailResult]:
    if not items:
        return [GuardrailResult("pending_items", True, "no open items with this client")]
    sentence_words = [
        {_stem(w) for w in _KEYWORD.findall(draft.norm[s:e].lower())}
        for s, e in draft.sentences
    ]
    has_handover = bool(rules.handover.search(draft.norm))
    results = []
    for item in items:
        keys = _keywords(item, rules)
        if not keys:
            ok = has_handover
            results.append(GuardrailResult(
                "pending_items", ok,
                f"open item {item!r} is covered by the handover sentence" if ok else
                f"open item {item!r} is not mentioned: say how the open work will be "
                "completed or handed over"))
            continue
        needed = max(1, math.ceil(len(keys) * 0.4))
        best, best_idx = 0, -1
        for idx, words in enumerate(sentence_words):
            score = sum(1 for k in keys if any(_same(k, w) for w in words))
            if score > best:
                best, best_idx = score, idx
        if best < needed:
            results.append(GuardrailResult(
                "pending_items", False,
                f"open item {item!r} is not mentioned: name it and say how it will be "
                "completed or handed over"))
            continue
        s, e = draft.sentences[best_idx]
        if not rules.plan.search(draft.norm, s, e):
            results.append(GuardrailResult(
                "pending_items", False,
                f"names open item {item!r} but not how or when it will be completed or "
                "handed over", draft.quote(best_idx)))
            continue
        results.append(GuardrailResult("pending_items", True,
                                       f"open item {item!r} is addressed",
                                       draft.quote(best_idx)))
    return results


def _tone(draft: _Draft, rules: _Rules, floor: float) -> GuardrailResult:
    _tone_all, assessments = assess(draft.norm)
    kept = [a for a in assessments
            if not (a.polarity < 0 and set(a.words) & rules.courtesy_words)]
    polarity = sum(a.polarity for a in kept) / len(kept) if kept else 0.0
    if polarity > floor:
        return GuardrailResult("tone", True, f"overall tone {polarity:+.2f} (floor {floor:+.2f})")
    worst, worst_idx = 0.0, None
    for idx, (s, e) in enumerate(draft.sentences):
        _t, parts = assess(draft.norm[s:e])
        vals = [a.polarity for a in parts
                if not (a.polarity < 0 and set(a.words) & rules.courtesy_words)]
        if vals and sum(vals) / len(vals) < worst:
            worst, worst_idx = sum(vals) / len(vals), idx
    detail = (f"overall tone {polarity:+.2f} is not above the floor {floor:+.2f}: "
              "the draft reads flat or negative; add warmth (what you valued, what you wish "
              "them)")
    return GuardrailResult("tone", False, detail,
                           draft.quote(worst_idx) if worst_idx is not None else None)


def _word_in(name: str, text: str, *, case: bool = False) -> re.Match[str] | None:
    rx = r"(?<![\w])" + r"\s+".join(map(re.escape, name.split())) + r"(?![\w])"
    return re.search(rx, text, 0 if case else re.I)


def _client_name(draft: _Draft, ctx: GuardrailContext) -> list[GuardrailResult]:
    names = [n for n in (ctx.contact_name, ctx.client_name) if n and n.strip()]
    first = ctx.contact_name.split()[0] if ctx.contact_name and ctx.contact_name.split() else None
    if first:
        names.append(first)
    results = []
    if names:
        if any(_word_in(n, draft.norm) for n in names):
            results.append(GuardrailResult("client_name", True,
                                           f"addresses {first or ctx.client_name}"))
        else:
            results.append(GuardrailResult(
                "client_name", False,
                f"neither the contact ({ctx.contact_name or 'unknown'}) nor the client "
                f"({ctx.client_name or 'unknown'}) is named"))
        m = _GREETING.search(draft.norm)
        if m and first:
            greeted = m.group(1).strip(".,'")
            allowed = {n.casefold() for n in names} | {w.casefold() for n in names
                                                       for w in n.split()}
            if greeted.casefold() not in allowed and greeted.casefold() not in _GROUP_ADDRESS:
                results.append(GuardrailResult(
                    "client_name", False,
                    f"greets {greeted!r}, but the contact is {ctx.contact_name}",
                    draft.quote(draft.sentence_at(m.start()))))
    mine = (ctx.client_name or "").casefold()
    for other in ctx.other_clients:
        if not other.strip() or other.casefold() == mine:
            continue
        m = _word_in(other, draft.norm, case=True)
        if m:
            results.append(GuardrailResult(
                "client_name", False,
                f"names another client ({other}): was this draft copied from theirs?",
                draft.quote(draft.sentence_at(m.start()))))
    return results


def _tail(draft: _Draft, rules: _Rules) -> list[str]:
    lines = [ln.strip() for ln in draft.norm.splitlines() if ln.strip()]
    return lines[-rules.signature_lines:]


def _signature(draft: _Draft, rules: _Rules, ctx: GuardrailContext) -> GuardrailResult:
    tail = _tail(draft, rules)
    tail_text = "\n".join(tail)
    wanted = []
    if ctx.owner_name:
        wanted += [ctx.owner_name, ctx.owner_name.split()[0]]
    if ctx.owner_signature:
        first_line = next((ln.strip() for ln in ctx.owner_signature.splitlines()
                           if ln.strip() and ln.strip() not in {"--", "-- "}), None)
        if first_line:
            wanted.append(first_line)
    if wanted:
        if any(_word_in(w, tail_text) for w in wanted):
            return GuardrailResult("signature", True, f"signed by {wanted[0]}")
        return GuardrailResult(
            "signature", False,
            f"the owner's name ({wanted[0]}) is not at the end: sign it as the owner")
    closing_block = []
    for line in reversed(tail):  # the short lines after the body: sign-off, name, title
        if len(line) > 45 or line.endswith("?") or _GREETING.match(line):
            break
        closing_block.append(line)
    for i, line in enumerate(closing_block):
        m = _NAME_LINE.match(line)
        if m and m.group(1).split()[0].lower().strip(",.!") not in _CLOSINGS:
            return GuardrailResult("signature", True, f"signed {m.group(1)!r}")
        words = re.findall(r"[A-Za-z]+", line)
        if words and words[0].lower() in _CLOSINGS and "," in line:  # "Best, Maria"
            rest = line.split(",", 1)[1].strip()
            if rest and _NAME_LINE.match(rest):
                return GuardrailResult("signature", True, f"signed {rest!r}")
        if i == 0 and re.fullmatch(r"[a-z][a-z'.-]{1,19}", line) and line not in _CLOSINGS:
            return GuardrailResult("signature", True, f"signed {line!r}")  # "jo"
    return GuardrailResult("signature", False,
                           "no signature: end with a sign-off and your name")


# --------------------------------------------------------------------------- entry point


def check_draft(text: str, *, kind: str, context: GuardrailContext | None = None,
                rules: _Rules | None = None) -> list[GuardrailResult]:
    """Every applicable rule's verdict on one draft; failures quote the sentence and say why.

    ``kind`` is ``farewell``, ``feedback_request`` or ``conversation_request``. Rules that
    need facts the context lacks (client, owner) fall back to generic checks or are
    skipped. A draft may be approved only when every result passed (see ``passed``).
    """
    if kind not in RULES_BY_KIND:
        raise ValueError(f"unknown draft kind {kind!r} (expected one of {', '.join(KINDS)})")
    ctx = context or GuardrailContext()
    rules = rules or load_guardrail_rules()
    wanted = set(RULES_BY_KIND[kind])
    draft = _Draft(text)
    results: list[GuardrailResult] = []

    results += _placeholders(draft, rules)
    flagged = _absent(draft, rules, wanted & {"no_blame", "civil"})
    for rule in ("no_blame", "civil"):
        if rule in wanted:
            mine = [r for _i, r in sorted(flagged.items()) if r.rule == rule]
            results += mine or [GuardrailResult(rule, True, _PASS_DETAIL[rule])]
    if "no_verdict" in wanted:
        hits = _hits(draft, rules, rules.verdict.phrases)
        seen: set[int] = set()
        for idx, m in sorted(hits, key=lambda h: h[1].start()):
            if idx not in seen:
                seen.add(idx)
                results.append(GuardrailResult(
                    "no_verdict", False, f"{rules.verdict.why} ({m.group().strip()!r})",
                    draft.quote(idx)))
        if not seen:
            results.append(GuardrailResult("no_verdict", True,
                                           "asks to talk without announcing a decision"))
    if "gratitude" in wanted:
        results.append(_present(draft, rules, "gratitude", "gratitude", flagged, "thanks"))
    if "feedback_invitation" in wanted:
        results.append(_present(draft, rules, "feedback", "feedback_invitation", flagged,
                                "asks for feedback"))
    if "door_open" in wanted:
        results.append(_present(draft, rules, "door", "door_open", flagged, "door open"))
    if "meeting_proposed" in wanted:
        results.append(_present(draft, rules, "meeting", "meeting_proposed", flagged,
                                "proposes to talk"))
    if "pending_items" in wanted:
        results += _pending(draft, rules, ctx.pending_items)
    if "tone" in wanted:
        floor = rules.tone_floor if ctx.tone_floor is None else ctx.tone_floor
        results.append(_tone(draft, rules, floor))
    if "client_name" in wanted:
        results += _client_name(draft, ctx)
    if "signature" in wanted:
        results.append(_signature(draft, rules, ctx))
    order = {r: i for i, r in enumerate(RULES)}
    return sorted(results, key=lambda r: order[r.rule])


_PASS_DETAIL = {
    "no_blame": "no blame and no past shortcomings",
    "civil": "no sarcasm, dismissal or cold notice phrasing",
}


def passed(results: Iterable[GuardrailResult]) -> bool:
    """True when every rule passed: only then may a draft be approved."""
    return all(r.passed for r in results)


def failures(results: Iterable[GuardrailResult]) -> list[GuardrailResult]:
    return [r for r in results if not r.passed]

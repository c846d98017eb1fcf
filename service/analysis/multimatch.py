"""Find where many phrase regexes can match in one C-speed pass (Aho-Corasick), exactly.

Trying hundreds of rules at every word of a message costs more than the sentiment pass
itself. Most rules start with, or at least contain, literal words, so:

* the regex's own parse tree (``re._parser``) gives, per rule, the literal strings one of
  which every match *starts* with (``literal_prefixes``; whitespace runs read as one space),
  or else the literal strings every match *contains* (``required_factors``);
* all those strings go into one Aho-Corasick automaton (pyahocorasick, C), run once over
  the lower-cased text with whitespace runs collapsed;
* a rule is then matched only where one of its prefixes starts a word, or, lacking
  prefixes, only when all its required literals occur somewhere in the text.

Both analyses are conservative (a string set is returned only when it is implied by the
regex), so the matcher finds exactly what matching every rule everywhere would find.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from re import _parser as _sre_parser  # type: ignore[attr-defined]

import ahocorasick

_MAX_KEY = 40  # longest prefix kept (longer prefixes only make fewer, dearer keys)
_MAX_KEYS = 256  # per rule: beyond this many alternatives, stop extending
_MAX_EXACT = 64  # literal alternatives a factor may expand to

_State = tuple[str, bool]  # (literal so far, still extendable)


# --------------------------------------------------------------------------- prefixes


def literal_prefixes(pattern: str) -> frozenset[str] | None:
    """Strings one of which starts every match of ``pattern`` (whitespace runs as " ").

    None when some match may start with something not literal (a class, a digit, an empty
    match). Keys are minimal: none is an extension of another.
    """
    try:
        parsed = _sre_parser.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & ~(re.UNICODE | re.VERBOSE):
        return None  # inline global flags (e.g. (?i)) change what a literal matches
    states = _seq_prefixes(list(parsed), {("", True)})
    if states is None or any(s == "" for s, _ in states):
        return None
    keys = sorted({s for s, _ in states}, key=len)
    kept: list[str] = []
    for k in keys:
        if not any(k.startswith(shorter) for shorter in kept):
            kept.append(k)
    return frozenset(kept)


def _seq_prefixes(items: list, states: set[_State] | None) -> set[_State] | None:
    for op, av in items:
        if states is None:
            return None
        if all(not is_open for _, is_open in states):
            return states
        name = str(op)
        if name == "LITERAL":
            states = _extend(states, {chr(av)})
        elif name == "IN":
            chars = {chr(v) for o, v in av if str(o) == "LITERAL"}
            states = _close(states) if len(chars) != len(av) else _extend(states, chars)
        elif name == "SUBPATTERN":
            if av[1] or av[2]:
                return None  # scoped flags
            states = _seq_prefixes(list(av[-1]), states)
        elif name == "BRANCH":
            merged: set[_State] = set()
            for alt in av[1]:
                sub = _seq_prefixes(list(alt), set(states))
                if sub is None:
                    return None
                merged |= sub
            states = merged if len(merged) <= _MAX_KEYS else _close(states)
        elif name in ("MAX_REPEAT", "MIN_REPEAT") and _is_space(av[2]):
            spaced = _extend(states, {" "})
            states = spaced if av[0] >= 1 else states | spaced
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, _hi, sub_items = av
            once = _seq_prefixes(list(sub_items), set(states))
            if once is None:
                return None
            states = _close(once) if lo >= 1 else states | _close(once)
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # zero-width: consumes nothing
        else:
            states = _close(states)
    return states


def _is_space(items: Iterable) -> bool:
    items = list(items)
    if len(items) != 1 or str(items[0][0]) != "IN":
        return False
    return [(str(o), str(v)) for o, v in items[0][1]] == [("CATEGORY", "CATEGORY_SPACE")]


def _extend(states: set[_State], chars: set[str]) -> set[_State]:
    out: set[_State] = set()
    for s, is_open in states:
        if not is_open or len(s) >= _MAX_KEY:
            out.add((s, False))
            continue
        for c in chars:
            if c.isspace():
                # a whitespace run is one " " in the collapsed text; none may start a key
                if not s:
                    return _close(states)
                out.add((s if s.endswith(" ") else s + " ", True))
            else:
                out.add((s + c, True))
    if len(out) > _MAX_KEYS:
        return _close(states)
    return out


def _close(states: set[_State]) -> set[_State]:
    return {(s, False) for s, _ in states}


# --------------------------------------------------------------------------- factors


def required_factors(pattern: str) -> tuple[frozenset[str], ...]:
    """Sets of literals (no whitespace) such that every match contains one of each set.

    Empty when nothing is implied; used as a cheap pre-check for rules without prefixes.
    """
    try:
        parsed = _sre_parser.parse(pattern)
    except re.error:
        return ()
    if parsed.state.flags & ~(re.UNICODE | re.VERBOSE):
        return ()
    return tuple(_seq_factors(list(parsed)))


def _best(factors: Sequence[frozenset[str]]) -> frozenset[str] | None:
    """The most selective set: the one whose shortest member is longest."""
    return max(factors, key=lambda fs: (min(map(len, fs)), -len(fs)), default=None)


def _seq_factors(items: list) -> list[frozenset[str]]:
    factors: list[frozenset[str]] = []
    run: set[str] = {""}

    def flush() -> None:
        nonlocal run
        if run and all(run) and len(run) <= _MAX_EXACT:
            factors.append(frozenset(run))
        run = {""}

    for op, av in items:
        name = str(op)
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # zero-width: the literals on both sides are adjacent
        exact = _exact([(op, av)])
        if exact is not None:
            product = {a + b for a in run for b in exact}
            if len(product) <= _MAX_EXACT:
                run = product
                continue
            flush()
            run = set(exact)
            continue
        if name in ("MAX_REPEAT", "MIN_REPEAT") and av[0] >= 1:
            inner = _exact(list(av[2]))
            if inner is not None and all(inner):
                # s{k>=1}: the first copy follows the run, the last precedes what follows
                run = {a + b for a in run for b in inner}
                flush()
                run = set(inner)
            else:
                flush()
                factors.extend(_seq_factors(list(av[2])))
            continue
        flush()
        if name == "SUBPATTERN" and not (av[1] or av[2]):
            factors.extend(_seq_factors(list(av[-1])))
        elif name == "BRANCH":
            union: set[str] = set()
            for alt in av[1]:
                best = _best(_seq_factors(list(alt)))
                if best is None:
                    union = set()
                    break
                union |= best
            if union and len(union) <= _MAX_EXACT:
                factors.append(frozenset(union))
    flush()
    return factors


def _exact(items: list) -> set[str] | None:
    """The finite set of strings (no whitespace) a sub-pattern matches, if small."""
    out = {""}
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            ch = chr(av)
            if ch.isspace():
                return None
            alts = {ch}
        elif name == "IN":
            alts = {chr(v) for o, v in av if str(o) == "LITERAL"}
            if len(alts) != len(av) or any(c.isspace() for c in alts):
                return None
        elif name == "SUBPATTERN":
            if av[1] or av[2]:
                return None
            sub = _exact(list(av[-1]))
            if sub is None:
                return None
            alts = sub
        elif name == "BRANCH":
            alts = set()
            for alt in av[1]:
                sub = _exact(list(alt))
                if sub is None:
                    return None
                alts |= sub
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        else:
            return None
        out = {a + b for a in out for b in alts}
        if len(out) > _MAX_EXACT:
            return None
    return out


# --------------------------------------------------------------------------- matcher

# Runs of whitespace other than one plain space: collapsed to one space before the pass.
_ODD_SPACE = re.compile(r"[^\S ]\s*| \s+")


@dataclass(frozen=True)
class Scan:
    """One pass over a text: candidate (position, rule) pairs and the literals present."""

    starts: list[tuple[int, int]]  # (offset in the text, rule id), sorted
    present: frozenset[str]  # required literals found anywhere


class PhraseMatcher:
    """One automaton over every rule's prefixes and required literals."""

    def __init__(self, prefixes: dict[int, frozenset[str]],
                 factors: dict[int, tuple[frozenset[str], ...]]) -> None:
        keys: dict[str, tuple[list[int], bool]] = {}
        for rule, keyset in prefixes.items():
            for key in keyset:
                keys.setdefault(key, ([], False))[0].append(rule)
        for sets in factors.values():
            for fs in sets:
                for lit in fs:
                    rules, _ = keys.get(lit, ([], False))
                    keys[lit] = (rules, True)
        self._automaton = ahocorasick.Automaton()
        for key, (rules, is_factor) in keys.items():
            self._automaton.add_word(key, (len(key) - 1, tuple(sorted(rules)), is_factor))
        if keys:
            self._automaton.make_automaton()
        self._empty = not keys

    def scan(self, lowered: str, word_start: re.Pattern[str]) -> Scan:
        """Every (position, rule) where a prefix of the rule starts a word of ``lowered``."""
        if self._empty:
            return Scan([], frozenset())
        runs = [m.span() for m in _ODD_SPACE.finditer(lowered)]
        if runs:
            parts, marks, shifts, pos, shift = [], [], [], 0, 0
            for s, e in runs:
                parts.append(lowered[pos:s])
                parts.append(" ")
                shift += e - s - 1
                marks.append(s - shift + (e - s - 1) + 1)  # first collapsed index after it
                shifts.append(shift)
                pos = e
            parts.append(lowered[pos:])
            collapsed = "".join(parts)
        else:
            collapsed = lowered
        starts: set[tuple[int, int]] = set()
        present: set[str] = set()
        match_at = word_start.match
        for end, (back, rules, is_factor) in self._automaton.iter(collapsed):
            if is_factor:
                present.add(collapsed[end - back:end + 1])
            if not rules:
                continue
            pos = end - back
            if runs:
                i = bisect.bisect_right(marks, pos)
                if i:
                    pos += shifts[i - 1]
            if match_at(lowered, pos):
                starts.update((pos, r) for r in rules)
        return Scan(sorted(starts), frozenset(present))


def gate_passes(sets: tuple[frozenset[str], ...], present: frozenset[str]) -> bool:
    """Whether every required literal set has a member in the text."""
    return all(not fs.isdisjoint(present) for fs in sets)

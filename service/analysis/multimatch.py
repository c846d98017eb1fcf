"""Find where many phrase regexes can match in one C-speed pass (Aho-Corasick), exactly.

Trying hundreds of rules at every word of a message costs more than the sentiment pass
itself. Most rules start with, or at least contain, literal words, so:

* the regex's own parse tree (``re._parser``) gives, per rule, the literal strings one of
  which every match *starts* with (``literal_prefixes``; whitespace runs read as one space),
  or else the literal strings every match *contains* (``required_factors``);
* all the prefixes go into one Aho-Corasick automaton (pyahocorasick, C), run once over
  the lower-cased text with whitespace runs collapsed;
* a rule is then matched only where one of its prefixes starts a word, or, lacking
  prefixes, only when all its required literals occur somewhere in the text.

Both analyses are conservative (a string set is returned only when it is implied by the
regex), so the matcher finds exactly what matching every rule everywhere would find.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from re import _parser as _sre_parser  # type: ignore[attr-defined]

import ahocorasick

_MAX_KEY = 20  # longest prefix kept (longer ones select little more and cost start-up)
_MAX_KEYS = 128  # per rule: beyond this many alternatives, stop extending
_MAX_EXACT = 64  # literal alternatives a factor may expand to

_State = tuple[str, bool]  # (literal so far, still extendable)


# --------------------------------------------------------------------------- prefixes


@functools.lru_cache(maxsize=4096)
def _parse(pattern: str):
    """The regex parse tree (cached: each analysis below reads the same pattern)."""
    return _sre_parser.parse(pattern)



def literal_prefixes(pattern: str, *, ascii_digits: bool = False) -> frozenset[str] | None:
    """Strings one of which starts every match of ``pattern`` (whitespace runs as " ").

    None when some match may start with something not literal (a class, an empty match).
    With ``ascii_digits``, ``\\d`` reads as 0-9: exact for ASCII text only (``\\d`` also
    matches other scripts' digits). Keys are minimal: none is an extension of another.
    """
    try:
        parsed = _parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & ~(re.UNICODE | re.VERBOSE):
        return None  # inline global flags (e.g. (?i)) change what a literal matches
    digits = frozenset("0123456789") if ascii_digits else frozenset()
    states = _seq_prefixes(list(parsed), {("", True)}, digits)
    if states is None or any(s == "" for s, _ in states):
        return None
    kept: set[str] = set()
    for k in sorted({s for s, _ in states}, key=len):
        if not any(k[:n] in kept for n in range(1, len(k))):
            kept.add(k)
    return frozenset(kept)


def _seq_prefixes(items: list, states: set[_State] | None,
                  digits: frozenset[str]) -> set[_State] | None:
    for op, av in items:
        if states is None:
            return None
        if all(not is_open for _, is_open in states):
            return states
        name = str(op)
        if name == "LITERAL":
            states = _extend(states, {chr(av)})
        elif name == "IN":
            chars = _class_chars(av, digits)
            states = _close(states) if chars is None else _extend(states, chars)
        elif name == "SUBPATTERN":
            if av[1] or av[2]:
                return None  # scoped flags
            states = _seq_prefixes(list(av[-1]), states, digits)
        elif name == "BRANCH":
            merged: set[_State] = set()
            for alt in av[1]:
                sub = _seq_prefixes(list(alt), set(states), digits)
                if sub is None:
                    return None
                merged |= sub
            states = merged if len(merged) <= _MAX_KEYS else _close(states)
        elif name in ("MAX_REPEAT", "MIN_REPEAT") and _is_space(av[2]):
            spaced = _extend(states, {" "})
            states = spaced if av[0] >= 1 else states | spaced
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            lo, hi, sub_items = av
            once = _seq_prefixes(list(sub_items), set(states), digits)
            if once is None:
                return None
            if hi != 1:
                once = _close(once)  # another repetition or what follows: unknown
            states = once if lo >= 1 else states | once
            if len(states) > _MAX_KEYS:
                states = _close(states)
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # zero-width: consumes nothing
        else:
            states = _close(states)
    return states


def _class_chars(items: list, digits: frozenset[str]) -> set[str] | None:
    """The characters a class matches, when it is a small literal set."""
    chars: set[str] = set()
    for o, v in items:
        if str(o) == "LITERAL":
            chars.add(chr(v))
        elif str(o) == "CATEGORY" and str(v) == "CATEGORY_DIGIT" and digits:
            chars |= digits
        else:
            return None
    return chars


def _is_space(items: Iterable) -> bool:
    items = list(items)
    if len(items) != 1 or str(items[0][0]) != "IN":
        return False
    return [(str(o), str(v)) for o, v in items[0][1]] == [("CATEGORY", "CATEGORY_SPACE")]


def _extend(states: set[_State], chars: set[str]) -> set[_State]:
    if len(chars) == 1 and not (c := next(iter(chars))).isspace():  # a plain literal: the usual
        return {(s + c, True) if is_open and len(s) < _MAX_KEY else (s, False)
                for s, is_open in states}
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


def min_width(pattern: str) -> int:
    """The length of the shortest match (0 when the pattern can match empty or is bad)."""
    try:
        return _parse(pattern).getwidth()[0]
    except re.error:
        return 0


# --------------------------------------------------------------------------- factors


def required_factors(pattern: str) -> tuple[frozenset[str], ...]:
    """Sets of literals (no whitespace) such that every match contains one of each set.

    Empty when nothing is implied; used as a cheap pre-check for rules without prefixes.
    """
    try:
        parsed = _parse(pattern)
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

# Every character ``\s`` matches (str.isspace; a unit test checks the list against Unicode),
# mapped one for one to a plain space. Listed, not computed: scanning all code points costs
# about a second at every process start.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
              "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_TO_SPACE = {ord(c): " " for c in WHITESPACE if c != " "}
_SPACE_RUN = re.compile("  +")


@dataclass(frozen=True)
class Scan:
    """What one pass over a text found: (offset, rules) pairs sorted by offset, per slot."""

    slots: tuple[list[tuple[int, tuple[int, ...]]], ...]
    present: frozenset[int]  # ids of the literal sets found in the text


class PhraseMatcher:
    r"""One automaton over every rule's literal prefixes and required literals.

    Each slot maps rules to their prefixes, and says whether a prefix counts only where it
    starts a word (``(?<![\w'])``: the rule begins with that boundary or is only ever tried
    at word starts) or wherever it occurs. Each literal set (id -> strings without
    whitespace) is reported present when one of its strings occurs anywhere.
    """

    def __init__(self, slots: Sequence[tuple[dict[int, frozenset[str]], bool]],
                 literal_sets: dict[int, frozenset[str]]) -> None:
        n = len(slots)
        keys: dict[str, tuple[list[list[int]], list[int]]] = {}
        for slot, (table, _word) in enumerate(slots):
            for rule, keyset in table.items():
                for key in keyset:
                    keys.setdefault(key, ([[] for _ in range(n)], []))[0][slot].append(rule)
        for set_id, literals in literal_sets.items():
            for lit in literals:
                keys.setdefault(lit, ([[] for _ in range(n)], []))[1].append(set_id)
        self._word = tuple(word for _table, word in slots)
        self._automaton = ahocorasick.Automaton()
        for key, (by_slot, sets) in keys.items():
            at_word = tuple((slot, tuple(sorted(r))) for slot, r in enumerate(by_slot)
                            if r and self._word[slot])
            anywhere = tuple((slot, tuple(sorted(r))) for slot, r in enumerate(by_slot)
                             if r and not self._word[slot])
            self._automaton.add_word(key, (len(key) - 1, at_word, anywhere,
                                           tuple(sorted(sets))))
        if keys:
            self._automaton.make_automaton()
        self._empty = not keys

    def scan(self, lowered: str) -> Scan:
        """One pass over ``lowered`` (whitespace runs read as one space; offsets into it)."""
        found: tuple[list[tuple[int, tuple[int, ...]]], ...] = tuple([] for _ in self._word)
        if self._empty:
            return Scan(found, frozenset())
        spaced = lowered.translate(_TO_SPACE)
        runs = [m.span() for m in _SPACE_RUN.finditer(spaced)] if "  " in spaced else []
        marks: list[int] = []
        shifts: list[int] = []
        if runs:
            parts, pos, shift = [], 0, 0
            for s, e in runs:
                parts.append(spaced[pos:s + 1])
                marks.append(s - shift + 1)  # first collapsed offset after this run
                shift += e - s - 1
                shifts.append(shift)
                pos = e
            parts.append(spaced[pos:])
            collapsed = "".join(parts)
        else:
            collapsed = spaced
        present: list[tuple[int, ...]] = []
        for end, (back, at_word, anywhere, sets) in self._automaton.iter(collapsed):
            if sets:
                present.append(sets)
            pos = end - back  # in the collapsed text, where a word starts iff it does here
            if at_word and pos:
                before = collapsed[pos - 1]
                if before.isalnum() or before == "_" or before == "'":
                    at_word = ()
            if not (at_word or anywhere):
                continue
            if marks:
                i = bisect.bisect_right(marks, pos)
                if i:
                    pos += shifts[i - 1]
            for slot, rules in at_word:
                found[slot].append((pos, rules))
            for slot, rules in anywhere:
                found[slot].append((pos, rules))
        for pairs in found:
            pairs.sort()
        return Scan(found, frozenset().union(*present))

"""Recall and false positives of the message-level detectors on our own client-email set.

tests/data/friction_dev.json is hand-written client mail (independent of eval/threads and
the demo mailbox), labelled by the friction kind a reader would name first, plus civil mail
that must stay quiet. Run this file with ``-s`` to see the per-kind table.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from service.analysis.message import analyse_message

DEV = Path(__file__).resolve().parent.parent / "data" / "friction_dev.json"
#: Detector families that count as finding a labelled kind.
ACCEPT = {"hostility": {"hostility", "disrespect"}}
#: A civil message counts as a false positive when its friction exceeds this
#: (sigmoid(-2 + 1.15): more than one ordinary cue).
CIVIL_FRICTION_MAX = 0.3


def _friction_kinds(text: str) -> tuple[set[str], float]:
    result = analyse_message(text)
    return {s.kind for s in result.signals if s.weight > 0}, result.friction


@pytest.fixture(scope="module")
def measured() -> dict:
    data = json.loads(DEV.read_text(encoding="utf-8"))
    total: Counter[str] = Counter()
    found: Counter[str] = Counter()
    any_friction = 0
    misses = []
    for item in data["friction"]:
        kind = item["kind"]
        fired, _ = _friction_kinds(item["text"])
        total[kind] += 1
        if fired & ACCEPT.get(kind, {kind}):
            found[kind] += 1
        else:
            misses.append((kind, item["text"], sorted(fired)))
        any_friction += bool(fired)
    civil_fp, civil_fired = [], 0
    for text in data["civil"]:
        fired, friction = _friction_kinds(text)
        civil_fired += bool(fired)
        if friction > CIVIL_FRICTION_MAX:
            civil_fp.append((text, sorted(fired), friction))
    n = sum(total.values())
    out = {
        "recall": {k: found[k] / total[k] for k in total},
        "overall": sum(found.values()) / n,
        "any_friction": any_friction / n,
        "civil_fp": len(civil_fp) / len(data["civil"]),
        "civil_fired": civil_fired / len(data["civil"]),
        "misses": misses,
        "fps": civil_fp,
    }
    print(f"\nfriction dev set: {n} friction passages, {len(data['civil'])} civil")
    for k in sorted(total):
        print(f"  {k:<18} recall {out['recall'][k]:.2f}  ({found[k]}/{total[k]})")
    print(f"  overall kind recall {out['overall']:.3f}, any friction {out['any_friction']:.3f}")
    print(f"  civil: friction > {CIVIL_FRICTION_MAX}: {out['civil_fp']:.3f}, "
          f"any friction cue: {out['civil_fired']:.3f}")
    for miss in misses:
        print("  MISS", miss)
    for fp in civil_fp:
        print("  FP  ", fp)
    return out


def test_set_is_large_enough():
    data = json.loads(DEV.read_text(encoding="utf-8"))
    assert len(data["friction"]) >= 150 and len(data["civil"]) >= 60


def test_overall_recall(measured: dict):
    assert measured["overall"] >= 0.8
    assert measured["any_friction"] >= 0.9


def test_every_kind_is_mostly_found(measured: dict):
    low = {k: round(r, 2) for k, r in measured["recall"].items() if r < 0.6}
    assert not low


def test_civil_mail_stays_quiet(measured: dict):
    assert measured["civil_fp"] <= 0.1
    assert measured["civil_fired"] <= 0.2

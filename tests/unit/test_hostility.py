"""The pure-Python offensive-language score reproduces alt-profanity-check exactly."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from service.analysis import hostility
from service.analysis.friction import detect
from service.analysis.message import analyse_message

DEV = Path(__file__).resolve().parent.parent / "data" / "friction_dev.json"


def _texts() -> list[str]:
    data = json.loads(DEV.read_text(encoding="utf-8"))
    texts = [item["text"] for item in data["friction"]] + list(data["civil"])
    vocab = sorted(hostility.load_model().table)
    rng = random.Random(20240601)
    for _ in range(150):  # random vocabulary mixes: long, short, repeated, mixed case
        words = rng.choices(vocab, k=rng.randint(1, 60))
        if rng.random() < 0.3:
            words += words[: rng.randint(1, 5)]
        text = " ".join(w.upper() if rng.random() < 0.1 else w for w in words)
        texts.append(text)
    texts += ["", "   ", "a", "!!!", "İstanbul ŞEHİR naïve café", "you_are_an_idiot idiot",
              "ümlaut straße 123 456", "don't won't can't", "x" * 5000, "idiot " * 400]
    return texts


@pytest.fixture(scope="module")
def reference():
    profanity_check = pytest.importorskip("profanity_check")
    texts = _texts()
    return texts, [float(p) for p in profanity_check.predict_prob(texts)]


def test_probability_matches_the_package(reference):
    texts, expected = reference
    assert len(texts) >= 300
    ours = [hostility.probability(t) for t in texts]
    worst = max(abs(a - b) for a, b in zip(ours, expected, strict=True))
    assert worst < 1e-6
    assert min(expected) < 0.05 and max(expected) > 0.99  # the sample spans the range


def test_cached_parameters_round_trip(tmp_path, monkeypatch):
    files = hostility._data_files()
    data = hostility.extract_parameters(*files)
    cache = tmp_path / "h.json"
    hostility._write_cache(cache, {"format": 1, "digest": "x", **data})
    again = hostility._from_parameters(json.loads(cache.read_text()), "test")
    assert again.table == hostility.load_model().table
    assert again.a == hostility.load_model().a


def test_explanation_names_the_words():
    result = hostility.score("Thanks for the draft. This is bullshit, you idiots.")
    assert result.probability > 0.99
    assert {"bullshit", "idiots"} <= {w.word for w in result.words}
    assert all(w.logit > 0 for w in result.words)


def test_signal_quotes_the_offensive_sentence():
    text = "Hi Sam,\n\nThanks for the files. Your designer is a moron.\n\nRegards"
    sig = {s.kind: s for s in detect(text)}["hostility"]
    assert sig.weight > 0
    quote = sig.evidence[0]
    assert text[quote.start:quote.end] == quote.quote
    assert "moron" in quote.quote and "Thanks" not in quote.quote


def test_quoted_staff_and_civil_mail_do_not_fire():
    assert "hostility" not in {s.kind for s in detect("Sounds good.\n\n> you stupid moron")}
    staff = analyse_message("This is bullshit, you idiots.", role="staff")
    assert not [s for s in staff.signals if s.kind == "hostility"]
    for civil in ("I hate to chase, but did you see my last email?",
                  "The file is corrupt, could you send it again?",
                  "Thanks, the new homepage looks great."):
        assert "hostility" not in {s.kind for s in detect(civil)}


def test_weight_grows_with_the_models_confidence():
    mild = {s.kind: s.weight for s in detect("Damn, the site is slow.")}.get("hostility", 0.0)
    strong = {s.kind: s.weight for s in detect("You stupid fucking idiots.")}["hostility"]
    assert strong > mild >= 0.0

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
    # needs the `model` extra (alt-profanity-check + scikit-learn), like the extraction tool;
    # without it, test_shipped_parameters_reproduce_the_package checks the shipped copy
    pytest.importorskip("sklearn")
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


# predict_prob of alt-profanity-check 1.9.1 (scikit-learn 1.9.1) for these texts, recorded
# when the shipped parameters were extracted: the shipped copy must reproduce them.
RECORDED = {
    "You are a complete idiot and your work is garbage.": 0.999857238962702,
    "Thanks so much for the lovely design, see you Monday.": 0.010178602459178843,
    "This is stupid, who the hell approved this crap?": 0.9999824344216102,
    "Please find the invoice attached.": 0.008629083043301403,
    "What a pathetic excuse for a website.": 0.922270533586034,
}


def test_shipped_parameters_reproduce_the_package() -> None:
    assert hostility.SHIPPED.is_file()
    model = hostility._load_shipped()
    assert model is not None and "alt-profanity-check 1.9.1" in model.source
    for text, expected in RECORDED.items():
        assert hostility.probability(text, model) == pytest.approx(expected, abs=1e-9)

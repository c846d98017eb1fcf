"""The learned friction model: its features, its arithmetic, its data and the "strain" signal."""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import math
from pathlib import Path

import pytest

from service.analysis import friction, friction_model
from service.analysis.friction import detect
from service.analysis.friction_model import FrictionModel, FrictionModelError
from service.analysis.message import analyse_message

CORPUS = Path(__file__).resolve().parents[2] / "data" / "friction_corpus"


def test_tokens_fold_numbers_and_punctuation_runs() -> None:
    toks = friction_model.tokens("round 3 didn't work!!! why?! 10:30 ok?")
    assert toks == ["round", "<num>", "didn't", "work", "!!", "why", "?!", "<num>", "ok", "?"]


def test_tokens_respect_the_span() -> None:
    text = "fine. this is still wrong."
    assert friction_model.tokens(text, 6, len(text)) == ["this", "is", "still", "wrong"]


def test_grams_are_words_and_neighbouring_pairs() -> None:
    assert friction_model.grams(["no", "rush", "no"]) == {"no", "rush", "no rush", "rush no"}


def test_score_is_intercept_plus_the_weights_present() -> None:
    model = FrictionModel(weights={"still": 0.8, "still wrong": 1.1, "thanks": -0.9},
                          intercept=-1.0, source="test")
    result = friction_model.score_text(model, "this is still wrong, thanks")
    assert result.logit == pytest.approx(-1.0 + 0.8 + 1.1 - 0.9)
    assert result.grams == (("still wrong", 1.1), ("still", 0.8))  # raisers only, strongest first
    assert result.probability == pytest.approx(1 / (1 + math.exp(-result.logit)))


def test_malformed_parameters_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FrictionModelError, match="format"):
        friction_model.parameters_from({"format": 99}, "x.json")
    with pytest.raises(FrictionModelError, match="malformed"):
        friction_model.parameters_from({"format": friction_model.FORMAT, "weights": []}, "x.json")
    bad = tmp_path / "m.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(FrictionModelError, match="cannot read"):
        friction_model.load_model(bad)


def test_shipped_model_is_readable_and_says_where_it_came_from() -> None:
    model = friction_model.load_model()
    assert len(model.weights) > 1000
    assert model.source.startswith("data/friction_corpus sha256:")
    with gzip.open(friction_model.SHIPPED) as fh:
        assert json.load(fh)["format"] == friction_model.FORMAT


def test_corpus_is_well_formed_balanced_and_without_duplicates() -> None:
    seen: set[str] = set()
    labels = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            item = json.loads(line)
            assert set(item) >= {"text", "label", "kind"}, f"{path.name}:{lineno}"
            assert item["label"] in (0, 1), f"{path.name}:{lineno}"
            key = " ".join(item["text"].lower().split())
            assert key not in seen, f"{path.name}:{lineno} duplicates an earlier line"
            seen.add(key)
            labels.append(item["label"])
    assert len(labels) >= 1500
    assert 0.4 <= sum(labels) / len(labels) <= 0.6


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                    reason="training needs the 'model' extra (scikit-learn)")
def test_training_reproduces_the_shipped_model(tmp_path: Path) -> None:
    from tools import train_friction_model

    out = tmp_path / "m.json.gz"
    assert train_friction_model.main(["--out", str(out)]) == 0
    assert out.read_bytes() == friction_model.SHIPPED.read_bytes()


# ----------------------------------------------------------------- the "strain" signal


def _strain(text: str) -> friction.Signal | None:
    return {s.kind: s for s in detect(text)}.get("strain")


@pytest.mark.parametrize("text", [
    "Honestly I expected a lot more for what we are paying you, and my partners feel the same.",
    "I am starting to wonder whether you read my emails at all.",
    "We are paying for a service we are clearly not getting.",
])
def test_strain_fires_on_friction_worded_unlike_any_rule(text: str) -> None:
    signal = _strain(text)
    assert signal is not None and signal.weight > 0
    assert signal.evidence and signal.evidence[0].quote in text


@pytest.mark.parametrize("text", [
    "Garbage collection pauses the app for two seconds; can you look at the heap settings?",
    "Thanks for the quick turnaround, the new menu looks lovely.",
    "No rush at all on the brochure, whenever suits you next week.",
    "The payment went out this morning, let me know if it has not arrived by Friday.",
])
def test_strain_stays_quiet_on_ordinary_mail(text: str) -> None:
    assert _strain(text) is None


def test_strain_ignores_quotes_and_staff_mail() -> None:
    angry = "I am starting to wonder whether you read my emails at all."
    assert _strain(f"Sounds good, thanks!\n\n> {angry}") is None
    staff = analyse_message(angry, role="staff")
    assert "strain" not in {s.kind for s in staff.signals}


def test_missing_model_is_logged_once_and_the_rest_still_works(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def missing() -> FrictionModel:
        raise FrictionModelError("cannot read /nowhere: gone")

    monkeypatch.setattr(friction_model, "load_model", missing)
    friction._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="service.analysis.friction"):
        kinds = {s.kind for s in detect("This is the third time I asked. Unacceptable.")}
        detect("Still wrong.")
    friction._warn_once.cache_clear()
    assert "strain" not in kinds and "revision_loop" in kinds
    assert [r.getMessage() for r in caplog.records].count(
        "strain signal unavailable: cannot read /nowhere: gone") == 1


def test_streamed_score_equals_the_feature_set_score_and_stays_small() -> None:
    import tracemalloc

    model = friction_model.load_model()
    words = ["this", "is", "still", "wrong", "again", "we", "need", "it", "by", "tomorrow",
             "thanks", "no", "rush"]
    text = " ".join(words[(i * 7) % len(words)] for i in range(50_000))
    expected = friction_model.score_grams(model, friction_model.grams(friction_model.tokens(text)))
    tracemalloc.start()
    try:
        result = friction_model.score_text(model, text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result == expected
    assert peak < 1_000_000  # a megabyte-long "sentence" must not build every n-gram


def test_evidence_anchor_finds_number_and_punctuation_grams() -> None:
    text = "fine. round 3 failed!!! why?! ok"
    assert friction._find_gram(text, (("<num> failed", 2.0),), 0, len(text)) == (12, 20)
    assert friction._find_gram(text, (("failed !!", 1.0),), 0, len(text)) == (14, 23)
    assert friction._find_gram(text, (("why ?!", 1.0),), 0, len(text)) == (24, 29)
    assert friction._find_gram(text, (("absent", 1.0),), 6, len(text)) == (6, 6)


def test_strain_reads_neighbouring_sentences_and_quotes_one_of_them() -> None:
    text = ("Morning team. The slides arrived. We are paying for a service we are clearly "
            "not getting. Talk soon.")
    signal = _strain(text)
    assert signal is not None
    quotes = [e.quote for e in signal.evidence]
    assert quotes[0] == "We are paying for a service we are clearly not getting."
    for e in signal.evidence:
        assert text[e.start:e.end] == e.quote


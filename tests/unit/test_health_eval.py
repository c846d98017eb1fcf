"""The evaluation harness itself: metrics, the baseline threshold, thread loading."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from eval.threads_eval import _fallback_new_text, best_threshold, load_threads, main, prf


def test_prf_counts() -> None:
    pred = [True, True, False, False]
    gold = [True, False, True, False]
    assert prf(pred, gold) == pytest.approx((0.5, 0.5, 0.5))
    assert prf([False, False], [True, False]) == (0.0, 0.0, 0.0)


def test_best_threshold_is_the_best_the_baseline_can_do() -> None:
    values = [-0.3, -0.1, 0.05, 0.2, 0.4]
    gold = [True, True, True, False, False]
    cut = best_threshold(values, gold)
    assert prf([v < cut for v in values], gold)[2] == 1.0


def test_fallback_drops_quotes_and_attribution() -> None:
    body = "Fine, ship it.\n\nOn Mon, 4 May 2026, Ana wrote:\n> old text\n> more"
    assert _fallback_new_text(body) == "Fine, ship it."


def test_oracle_run_over_a_tiny_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def thread(name: str, label: str, friction: bool) -> None:
        msgs = []
        for i in range(4):
            msgs.append({"from": "me@agency.example", "role": "staff", "subject": "Re: site",
                         "date": f"2026-05-0{2 * i + 1}T09:00:00+00:00", "body": "Here you go.",
                         "friction": None})
            msgs.append({"from": "c@client.example", "role": "client", "subject": "Re: site",
                         "date": f"2026-05-0{2 * i + 2}T09:00:00+00:00",
                         "body": "Wrong again." if friction else "Lovely, thanks!",
                         "friction": friction})
        doc = {"client": name, "label": label, "reason": "", "monthly_revenue": 100,
               "currency": "EUR", "messages": msgs}
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))

    thread("a", "unhealthy", True)
    thread("b", "healthy", False)
    loaded = load_threads(tmp_path, None, oracle=True)
    assert [t.label for t in loaded] == [True, False]
    assert main([str(tmp_path), "--oracle"]) == 0
    out = capsys.readouterr().out
    assert "all      ours                1.00   1.00   1.00" in out


def test_dev_set_is_well_formed_and_separate_from_the_test_set() -> None:
    from eval.threads_eval import SETS

    dev = {p.name: json.loads(p.read_text()) for p in SETS["dev"].glob("*.json")}
    test = [json.loads(p.read_text()) for p in SETS["test"].glob("*.json")]
    assert len(dev) >= 40
    assert 0.35 <= sum(d["label"] == "unhealthy" for d in dev.values()) / len(dev) <= 0.55
    assert not {d["client"] for d in dev.values()} & {d["client"] for d in test}
    for blind_set in ("blind1", "blind2", "blind3", "blind4", "blind5", "blind6"):
        blind = {p.name: json.loads(p.read_text()) for p in SETS[blind_set].glob("*.json")}
        assert len(blind) >= 40
        assert not {d["client"] for d in blind.values()} & (
            {d["client"] for d in dev.values()} | {d["client"] for d in test})
        dev.update(blind)  # same format checks below
    for name, d in dev.items():
        assert d["label"] in ("healthy", "unhealthy") and d["reason"], name
        dates = [datetime.fromisoformat(m["date"]) for m in d["messages"]]
        assert dates == sorted(dates), name
        for m in d["messages"]:
            assert (m["friction"] is None) == (m["role"] == "staff"), name


def test_set_option_reads_the_dev_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", "dev", "--oracle"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[dev] ") and "baseline_other" in out


def test_message_auc_reads_the_hand_labels() -> None:
    from eval.threads_eval import SETS, load_threads, message_auc

    threads = load_threads(SETS["dev"], None, oracle=True)
    n, with_friction, auc_friction, auc_polarity = message_auc(threads)
    assert n > 300 and 0 < with_friction < n
    assert auc_friction == 1.0  # the oracle's friction is the label itself
    assert 0.5 < auc_polarity < 1.0

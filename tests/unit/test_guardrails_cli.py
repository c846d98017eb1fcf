"""`saygoodbye check`: the design's JSON contract, exit codes, and client-specific rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.cli import main
from service.store.db import Store
from service.store.models import PendingItem

DRAFTS = Path(__file__).parents[1] / "data" / "drafts"
CIVIL = DRAFTS / "civil" / "farewell_formal.txt"
BLAME = DRAFTS / "uncivil" / "past_rounds.txt"


def test_json_contract_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(CIVIL), "--json"]) == 0
    [one] = json.loads(capsys.readouterr().out)
    assert one == {**one, "file": str(CIVIL), "passed": True, "failures": []}

    assert main(["check", str(CIVIL), str(BLAME), "--json"]) == 1
    both = json.loads(capsys.readouterr().out)
    assert [r["passed"] for r in both] == [True, False]
    [failure] = both[1]["failures"]
    assert set(failure) == {"rule", "sentence", "why"}
    assert failure["rule"] == "no_blame"
    assert failure["sentence"].startswith("Given how the last three rounds went")


def test_conversation_request_kind(capsys: pytest.CaptureFixture[str]) -> None:
    verdict = DRAFTS / "uncivil" / "conversation_verdict.txt"
    assert main(["check", "--kind", "conversation_request", str(verdict), "--json"]) == 1
    [one] = json.loads(capsys.readouterr().out)
    assert [f["rule"] for f in one["failures"]] == ["no_verdict"]


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["check"])
    assert exc.value.code == 2


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(CIVIL), str(BLAME)]) == 1
    out = capsys.readouterr().out
    assert "passes" in out and "no blame" in out and "1 of 2 drafts pass" in out


def _config(tmp_path: Path) -> Path:
    db = tmp_path / "sg.db"
    config = tmp_path / "config.toml"
    config.write_text(f"""
[service]
database = "sqlite:///{db}"

[[clients]]
name = "Northwind"
domains = ["northwind.example"]
owner = "maria@studio.example"

[[clients]]
name = "Greenleaf"
domains = ["greenleaf.example"]
owner = "ben@studio.example"

[[owners]]
email = "maria@studio.example"
name = "Maria Keller"
""", encoding="utf-8")
    return config


def test_client_rules_use_config_and_open_pending_items(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'sg.db'}")
    with store.session() as session:
        session.add_all([
            PendingItem(client="Northwind", text="Spring campaign landing pages"),
            PendingItem(client="Northwind", text="Quarterly SEO report",
                        done_at=datetime(2025, 1, 1, tzinfo=UTC)),  # done: not required
            PendingItem(client="Greenleaf", text="Loyalty app icons"),  # another client's
        ])
    store.dispose()
    draft = tmp_path / "draft.txt"
    draft.write_text(CIVIL.read_text(encoding="utf-8"), encoding="utf-8")

    assert main(["--config", str(config), "check", "--client", "northwind", str(draft),
                 "--json"]) == 0
    [one] = json.loads(capsys.readouterr().out)
    rules = {c["rule"] for c in one["checks"]}
    assert {"pending_items", "signature", "client_name"} <= rules

    # forgetting the open item, signing as someone else, naming another client: all caught
    text = CIVIL.read_text(encoding="utf-8")
    text = text.replace("finish the spring campaign landing pages by 14 June and ", "")
    text = text.replace("Maria Keller", "Ben Ortiz").replace("your colleagues",
                                                              "the Greenleaf team")
    draft.write_text(text, encoding="utf-8")
    assert main(["--config", str(config), "check", "--client", "Northwind", str(draft),
                 "--json"]) == 1
    [one] = json.loads(capsys.readouterr().out)
    assert {f["rule"] for f in one["failures"]} == {"pending_items", "signature",
                                                   "client_name"}


def test_unknown_client_is_a_usage_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert main(["--config", str(config), "check", "--client", "Nobody", str(CIVIL)]) == 2
    assert "no client named 'Nobody'" in capsys.readouterr().err

"""`saygoodbye outbox [--json]` and `outbox cancel ID`: the command-line contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service import cli
from service.config import load_settings
from service.mail.compose import compose
from service.store.db import Store
from service.workflows import outbox

pytestmark = pytest.mark.integration

CONFIG = """
[service]
database = "sqlite:///{db}"
send_mode = "live"
own_domains = ["northwind.test"]

[smtp]
host = "127.0.0.1"
port = 2525
security = "none"
from_address = "team@northwind.test"

[schedule]
send_window = "00:00-24:00"
send_days = "mon-sun"

[[clients]]
name = "Acme"
domains = ["acme.test"]
owner = "olga@northwind.test"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(db=tmp_path / "sg.db"))
    return path


def _queue(config: Path, subject: str) -> int:
    settings = load_settings(config)
    store = Store(settings.database_url)
    try:
        msg = compose(from_addr="team@northwind.test", to=["ana@acme.test"], subject=subject,
                      text="Thank you.\n")
        with store.session() as session:
            return outbox.queue(session, settings, msg, kind="farewell", client="Acme").id
    finally:
        store.dispose()


def test_outbox_json_lists_the_contract_fields(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _queue(config, "Goodbye")
    assert cli.main(["--config", str(config), "outbox", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [first]
    row = rows[0]
    assert {"id", "kind", "to", "subject", "message_id", "state", "not_before", "sent_at",
            "error"} <= set(row)
    assert row["kind"] == "farewell" and row["to"] == ["ana@acme.test"]
    assert row["state"] == "scheduled" and row["sent_at"] is None
    assert row["message_id"].endswith("@northwind.test>")


def test_outbox_cancel(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row_id = _queue(config, "Goodbye")
    assert cli.main(["--config", str(config), "outbox", "cancel", str(row_id), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "cancelled"
    assert cli.main(["--config", str(config), "outbox", "cancel", "999"]) == 2
    assert "no outbox message with id 999" in capsys.readouterr().err
    assert cli.main(["--config", str(config), "outbox", "cancel"]) == 2


def test_outbox_table_renders(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(config), "outbox"]) == 0
    assert "empty" in capsys.readouterr().out
    _queue(config, "Goodbye Acme")
    assert cli.main(["--config", str(config), "outbox"]) == 0
    out = capsys.readouterr().out
    assert "farewell" in out and "scheduled" in out

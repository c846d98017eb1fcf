"""The offline path end to end, through the real CLI: mbox and Maildir into a database."""

from __future__ import annotations

import json
import mailbox
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from service.cli import main

pytestmark = pytest.mark.integration
TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)

CONFIG = """
[service]
database = "{url}"
own_domains = ["northwind.studio"]

[[clients]]
name = "Acme"
domains = ["acme.com"]
owner = "maria@northwind.studio"
monthly_revenue = 3000

[[clients]]
name = "Globex"
domains = ["globex.io"]
owner = "jonas@northwind.studio"
monthly_revenue = 200
"""


def message(n: int, sender: str, to: str, body: str, *, day: int, reply_to: int | None = None
            ) -> bytes:
    headers = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {'Re: ' if reply_to else ''}Project {n // 10}",
        f"Message-ID: <msg{n}@test>",
        # Recent dates: health is assessed as of today, and old friction fades.
        "Date: " + format_datetime(TODAY - timedelta(days=30 - day, minutes=60 - n % 60)),
    ]
    if reply_to:
        headers += [f"In-Reply-To: <msg{reply_to}@test>", f"References: <msg{reply_to}@test>"]
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def corpus() -> list[bytes]:
    out = []
    for i in range(1, 13):
        out.append(message(i * 3, "bob@acme.com", "team@northwind.studio",
                           "Thanks a lot, the draft looks great. Could you send the invoice?",
                           day=i))
        out.append(message(i * 3 + 1, "maria@northwind.studio", "bob@acme.com",
                           "Here it is, thank you!", day=i, reply_to=i * 3))
        out.append(message(i * 3 + 2, "ceo@globex.io", "team@northwind.studio",
                           "This is the third time I have asked you to fix this. Unacceptable. "
                           "We will not pay the invoice until it is done, and I want a discount.",
                           day=i + 10))
    out.append(message(900, "someone@gmail.com", "team@northwind.studio", "Do you do logos?",
                       day=3))
    out.append(b"this is not an email at all \xff\xfe")
    return out


@pytest.fixture
def mbox_file(tmp_path: Path) -> Path:
    path = tmp_path / "export.mbox"
    box = mailbox.mbox(path)
    for raw in corpus():
        box.add(raw)
    box.flush()
    box.close()
    return path


@pytest.fixture
def config_file(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(url=database_url))
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_mbox_sync_is_idempotent_and_feeds_the_listings(
    config_file: Path, mbox_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = ["--config", str(config_file)]
    first = run_json(capsys, *cfg, "sync", "--source", f"mbox:{mbox_file}", "--json")
    assert first == {"source": f"mbox:{mbox_file}", "seen": 38, "stored": 38,
                     "duplicates": 0, "defective": first["defective"]}
    assert first["defective"] >= 1  # the garbage message is stored with its defects
    second = run_json(capsys, *cfg, "sync", "--source", f"mbox:{mbox_file}", "--json")
    assert (second["stored"], second["duplicates"]) == (0, 38)

    clients = run_json(capsys, *cfg, "clients", "--json")
    assert [c["name"] for c in clients] == ["Globex", "Acme"]  # worst first
    for row in clients:
        assert {"name", "owner", "score", "state", "trend", "signals"} <= set(row)
        assert 0 <= row["score"] <= 100
        assert row["state"] in {"healthy", "watch", "at_risk", "unhealthy"}
    globex, acme = clients
    assert globex["score"] < acme["score"]
    assert globex["signals"] and globex["signals"][0]["evidence"][0]["quote"]

    unassigned = run_json(capsys, *cfg, "clients", "--unassigned", "--json")
    assert {"sender": "someone@gmail.com"}.items() <= unassigned[0].items()

    status = run_json(capsys, *cfg, "status", "--json")
    assert status["messages"] == 38 and status["clients"] == 2
    assert status["last_sync"] is not None
    assert {"outbox", "next_jobs", "errors"} <= set(status)

    detail = run_json(capsys, *cfg, "client", "globex", "--json")
    assert detail["name"] == "Globex" and detail["messages"] == 12


def test_maildir_source(tmp_path: Path, config_file: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for raw in corpus()[:9]:
        box.add(raw)
    result = run_json(capsys, "--config", str(config_file), "sync", "--source",
                      f"maildir:{tmp_path / 'Maildir'}", "--json")
    assert result["stored"] == 9


@pytest.mark.parametrize("spec", ["mbox:/nonexistent.mbox", "maildir:/tmp", "pop3:x", "mbox"])
def test_bad_source_is_a_usage_error(config_file: Path, spec: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "sync", "--source", spec]) == 2
    err = capsys.readouterr().err.lower()
    assert "error" in err and ("mbox" in err or "maildir" in err)


def test_unknown_client_is_a_usage_error(config_file: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config_file), "client", "Nobody"]) == 2
    assert "Acme" in capsys.readouterr().err

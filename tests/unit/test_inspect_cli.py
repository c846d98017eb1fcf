"""`inspect` needs no database and no server: the design's JSON contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main

ANGRY = (
    b"From: Dana Fox <dana@harbor.example>\r\nTo: team@northwind.studio\r\n"
    b"Subject: =?utf-8?q?Homepage_=E2=80=93_again?=\r\nMessage-ID: <a1@harbor.example>\r\n"
    b"Date: Fri, 06 Nov 2026 23:10:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"This is the third time I have asked you to fix this. Unacceptable.\r\n\r\n"
    b"On Thu, Nov 5, 2026 at 9:00 AM Maria <maria@northwind.studio> wrote:\r\n"
    b"> Thanks so much, here is the new version.\r\n"
)
OOO = (
    b"From: bob@acme.com\r\nTo: team@northwind.studio\r\nSubject: Out of Office: Re: x\r\n"
    b"Auto-Submitted: auto-replied\r\nMessage-ID: <o1@acme.com>\r\n\r\nI am away.\r\n"
)


def test_inspect_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    angry, ooo = tmp_path / "angry.eml", tmp_path / "ooo.eml"
    angry.write_bytes(ANGRY)
    ooo.write_bytes(OOO)
    assert main(["inspect", str(angry), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    for key in ("message_id", "from", "date", "subject", "client", "new_text", "auto_generated",
                "auto_reason", "tone", "friction", "signals", "defects"):
        assert key in one
    assert one["subject"] == "Homepage – again"
    assert "wrote:" not in one["new_text"] and "Unacceptable" in one["new_text"]
    assert one["friction"] > 0.5
    assert set(one["tone"]) == {"polarity", "subjectivity"}

    assert main(["inspect", str(angry), str(ooo), "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert isinstance(both, list) and len(both) == 2
    assert both[1]["auto_generated"] is True and both[1]["friction"] is None


def test_inspect_missing_file_reports_and_fails(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "nope.eml"), "--json"]) == 1
    assert "cannot read" in capsys.readouterr().out

"""The bundled demo mailbox and the labelled eval set keep the properties the demo and
the scorer rely on: reproducible, big enough, threaded, and independent of each other."""

from __future__ import annotations

import email
import json
import mailbox
import tomllib
from datetime import timedelta
from email.policy import default as default_policy
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path

import pytest

from tools.sample_mailbox.build import OUTPUT, build

REPO = Path(__file__).resolve().parents[2]
EVAL = REPO / "eval" / "threads"
DEMO_TOML = REPO / "service" / "demo" / "demo.toml"


@pytest.fixture(scope="module")
def messages() -> list[email.message.EmailMessage]:
    box = mailbox.mbox(OUTPUT, factory=lambda f: email.message_from_binary_file(
        f, policy=default_policy), create=False)
    try:
        return list(box)
    finally:
        box.close()


def test_committed_mbox_matches_fresh_build(tmp_path: Path) -> None:
    fresh = tmp_path / "sample.mbox"
    build(fresh)
    assert fresh.read_bytes() == OUTPUT.read_bytes(), "run: python -m tools.sample_mailbox.build"


def test_size_and_span(messages: list) -> None:
    assert len(messages) >= 400
    dates = [parsedate_to_datetime(str(m["Date"])) for m in messages]
    assert max(dates) - min(dates) >= timedelta(days=180)


def test_clients_and_both_directions(messages: list) -> None:
    config = tomllib.loads(DEMO_TOML.read_text())
    client_domains = {d for c in config["clients"] for d in c["domains"]}
    senders = {parseaddr(str(m["From"]))[1].lower() for m in messages}
    sender_domains = {s.rsplit("@", 1)[-1] for s in senders}
    assert len(client_domains & sender_domains) >= 8
    assert any(d.endswith("northwind.studio") for d in sender_domains)
    to_clients = [m for m in messages if parseaddr(str(m["From"]))[1].endswith(
        "@northwind.studio") and any(d in str(m["To"]) for d in client_domains)]
    assert len(to_clients) >= 100


def test_every_reply_resolves(messages: list) -> None:
    ids = {str(m["Message-ID"]) for m in messages}
    assert len(ids) == len(messages), "Message-IDs must be unique"
    for m in messages:
        if m["In-Reply-To"]:
            assert str(m["In-Reply-To"]) in ids, m["Subject"]
        for ref in str(m["References"] or "").split():
            assert ref in ids, m["Subject"]


def test_mailbox_has_the_awkward_cases(messages: list) -> None:
    assert any(m["Auto-Submitted"] == "auto-replied" and "Automatic" in str(m["Subject"])
               for m in messages)
    assert any(m.get_content_type() == "multipart/report" for m in messages)
    assert any(m["List-Unsubscribe"] and m["Precedence"] == "bulk" for m in messages)
    assert any(m.get_content_type() == "text/html" for m in messages)
    assert any(part.get_content_type() == "application/pdf" for m in messages
               for part in m.walk())
    charsets = {part.get_content_charset() for m in messages for part in m.walk()}
    assert "windows-1252" in charsets
    html = [m.get_body(("html",)).get_content() for m in messages if m.get_body(("html",))]
    assert any("divRplyFwdMsg" in h for h in html) and any("gmail_quote" in h for h in html)


def test_eval_set_loads() -> None:
    files = sorted(EVAL.glob("*.json"))
    threads = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    assert len(threads) >= 40
    labels = [t["label"] for t in threads]
    assert set(labels) == {"healthy", "unhealthy"}
    assert 0.35 <= labels.count("unhealthy") / len(labels) <= 0.55
    demo_domains = {d for c in tomllib.loads(DEMO_TOML.read_text())["clients"]
                    for d in c["domains"]}
    for path, t in zip(files, threads, strict=True):
        assert t["reason"] and t["client"] and t["messages"], path.name
        assert any(m["role"] == "client" for m in t["messages"]), path.name
        for m in t["messages"]:
            assert m["role"] in ("client", "staff"), path.name
            assert (m["friction"] is None) == (m["role"] == "staff"), path.name
            assert m["from"].rsplit("@", 1)[1] not in demo_domains, path.name
            assert m["body"].strip(), path.name

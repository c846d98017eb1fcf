"""Composing and freezing outgoing mail: ids, threading, plus-addresses, CRLF, MIME."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from service.mail.compose import (
    MAX_REFERENCES,
    Attachment,
    compose,
    domain_of,
    freeze,
    plus_address,
    thread_headers,
    token_reference,
)


def _parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def test_message_id_uses_our_domain_and_date_is_set() -> None:
    msg = compose(from_addr="Northwind <team@northwind.test>", to=["ana@acme.test"],
                  subject="Hi", text="Hello", date=datetime(2026, 11, 25, 9, tzinfo=UTC))
    assert msg["Message-ID"].endswith("@northwind.test>")
    assert msg["Date"] == "Wed, 25 Nov 2026 09:00:00 +0000"
    other = compose(from_addr="team@northwind.test", to=["a@b.test"], subject="x", text="y",
                    domain="mail.northwind.test")
    assert other["Message-ID"].endswith("@mail.northwind.test>")
    assert other["Message-ID"] != msg["Message-ID"]


def test_frozen_bytes_are_crlf_only_and_round_trip() -> None:
    text = "Dear Ana,\n.\nline with dot\r\nlast line without newline"
    raw = freeze(compose(from_addr="team@northwind.test", to=["ana@acme.test"],
                         subject="Grüße – ciao", text=text))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    parsed = _parse(raw)
    assert parsed["Subject"] == "Grüße – ciao"
    body = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert body == "Dear Ana,\n.\nline with dot\nlast line without newline\n"


def test_non_ascii_body_is_quoted_printable_and_decodes() -> None:
    raw = freeze(compose(from_addr="t@n.test", to=["a@b.test"], subject="s",
                         text="Schöne Grüße, Ana – bis bald\n"))
    assert raw.isascii()
    assert "Schöne Grüße" in _parse(raw).get_body(("plain",)).get_content()


def test_alternative_html_and_attachment() -> None:
    msg = compose(from_addr="t@n.test", to=["a@b.test"], subject="s", text="plain",
                  html="<p>html</p>", attachments=[Attachment("handover.pdf", b"%PDF-1.4")])
    parsed = _parse(freeze(msg))
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed.get_body(("html",)).get_content().strip() == "<p>html</p>"
    (att,) = list(parsed.iter_attachments())
    assert att.get_filename() == "handover.pdf"
    assert att.get_content_type() == "application/pdf"
    assert att.get_content() == b"%PDF-1.4"


def test_threading_headers_continue_the_thread() -> None:
    parent, refs = thread_headers("<p@acme.test>", ["<root@acme.test> <mid@acme.test>"])
    assert parent == "<p@acme.test>"
    assert refs == ["<root@acme.test>", "<mid@acme.test>", "<p@acme.test>"]
    msg = compose(from_addr="t@n.test", to=["a@b.test"], subject="Re: x", text="y",
                  in_reply_to=parent, references=[*refs, token_reference("tok", "N.test")])
    assert msg["In-Reply-To"] == "<p@acme.test>"
    assert msg["References"].split()[-1] == "<tok@token.n.test>"


def test_long_reference_chains_keep_root_and_newest() -> None:
    chain = [f"<m{i}@x.test>" for i in range(60)]
    _, refs = thread_headers("<last@x.test>", chain)
    assert len(refs) == MAX_REFERENCES
    assert refs[0] == "<m0@x.test>" and refs[-1] == "<last@x.test>"


def test_no_parent_means_no_in_reply_to() -> None:
    assert thread_headers(None, []) == (None, [])


def test_plus_address_and_domain() -> None:
    assert plus_address("Team <team@northwind.test>", "abc") == "team+abc@northwind.test"
    assert plus_address("team+old@northwind.test", "new") == "team+new@northwind.test"
    assert domain_of("Team <team@NorthWind.test>") == "northwind.test"
    with pytest.raises(ValueError):
        plus_address("nobody", "x")


def test_bcc_is_never_in_the_frozen_bytes() -> None:
    msg = compose(from_addr="t@n.test", to=["a@b.test"], subject="s", text="x")
    msg["Bcc"] = "secret@n.test"
    raw = freeze(msg)
    assert b"secret@n.test" not in raw
    assert msg["Bcc"] == "secret@n.test"  # the caller's message is untouched


def test_recipients_required() -> None:
    with pytest.raises(ValueError):
        compose(from_addr="t@n.test", to=[], subject="s", text="x")

"""Forwarded messages (message/rfc822) inline versus attached."""

from __future__ import annotations

from service.mail.parse import parse_message

INNER = (
    b"From: \"Dr. Sender\" <sender@example.net>\r\n"
    b"To: Recipient <recipient@example.com>\r\n"
    b"Subject: =?utf-8?q?Budget_f=C3=BCr_Q3?=\r\n"
    b"Date: Mon, 01 Feb 2010 12:18:40 +0100\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"The budget is approved.\r\n"
)


def _outer(disposition: bytes, preface: bytes) -> bytes:
    return (
        b"From: Ana <ana@client.example>\r\nTo: team@agency.example\r\nSubject: Fwd: Budget\r\n"
        b"Message-ID: <fwd-1@client.example>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\n" + preface + b"\r\n"
        b"--XX\r\nContent-Type: message/rfc822\r\n" + disposition + b"\r\n" + INNER +
        b"--XX--\r\n"
    )


def test_whole_message_forward_keeps_the_forwarded_text_as_history() -> None:
    raw = (
        b"From: Ana <ana@client.example>\r\nTo: team@agency.example\r\nSubject: Fwd\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n" + INNER
    )
    parsed = parse_message(raw)
    assert "The budget is approved." in parsed.text
    assert "Subject: Budget für Q3" in parsed.text  # inner headers decoded
    assert parsed.new_text == ""  # nothing the sender wrote; the forward is history
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822"]


def test_inline_forward_after_a_note_keeps_only_the_note_as_new_text() -> None:
    parsed = parse_message(_outer(b"", b"See below, can you act on this?"))
    assert "The budget is approved." in parsed.text
    assert "can you act on this?" in parsed.new_text
    assert "budget is approved" not in parsed.new_text


def test_forward_as_attachment_stays_an_attachment() -> None:
    parsed = parse_message(_outer(b"Content-Disposition: attachment; filename=fwd.eml\r\n",
                                  b"Attached, FYI."))
    assert "budget is approved" not in parsed.text
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("fwd.eml", "message/rfc822")]


def test_cpython_email_test_corpus_parses_without_loss() -> None:
    """CPython's own email test messages (odd MIME from real mailers, 2001-2010) as an
    outside corpus: every one parses, keeps an id and a thread key, and loses no text
    that the standard library itself can read from a text/plain body."""
    import email
    import email.policy
    from pathlib import Path

    import pytest

    test_email = pytest.importorskip("test.test_email")
    files = sorted((Path(test_email.__file__).parent / "data").glob("msg_*.txt"))
    assert len(files) > 40
    for path in files:
        raw = path.read_bytes()
        parsed = parse_message(raw)
        assert parsed.message_id.startswith("<") and parsed.thread_key, path.name
        reference = email.message_from_bytes(raw, policy=email.policy.compat32)
        if reference.get_content_type() == "text/plain" and not reference.defects:
            body = reference.get_payload(decode=True) or b""
            words = body.decode("latin-1").split()[:5]
            assert all(w in parsed.text for w in words), path.name

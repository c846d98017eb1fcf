"""Property: parse_message never raises, on arbitrary bytes or on damaged real messages."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.mail.parse import ParsedMessage, parse_message

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"
SAMPLES = [p.read_bytes() for p in sorted(DATA.glob("*/*.eml"))]

# `make fuzz` raises the count and draws fresh random inputs (see tests/conftest.py).
EXAMPLES = 5000 if os.environ.get("SAYGOODBYE_FUZZ") else 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(p: ParsedMessage, raw: bytes) -> None:
    assert p.size == len(raw)
    assert p.message_id.startswith("<") and p.message_id.endswith(">")
    assert p.thread_key
    assert isinstance(p.text, str) and isinstance(p.new_text, str)
    assert p.date is None or p.date.utcoffset() is not None
    assert all(isinstance(d, str) and d for d in p.defects)
    assert (p.from_addr is None) or p.from_addr == p.from_addr.lower()


@FUZZ
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(parse_message(raw), raw)


header_line = st.sampled_from(
    [
        b"From: ",
        b"To: ",
        b"Cc: ",
        b"Date: ",
        b"Subject: ",
        b"Message-ID: ",
        b"References: ",
        b"Content-Type: multipart/mixed; boundary=",
        b"Content-Type: text/plain; charset=",
        b"Content-Transfer-Encoding: ",
        b"Content-Disposition: attachment; filename*=",
        b"Auto-Submitted: ",
        b"--",
        b"=?utf-8?q?",
        b"=?",
        b"\r\n",
        b"\n\n",
        b"\t",
        b"<",
        b">",
    ]
)


@FUZZ
@given(st.lists(st.tuples(header_line, st.binary(max_size=60)), max_size=40))
def test_header_shaped_garbage(chunks: list[tuple[bytes, bytes]]) -> None:
    raw = b"".join(a + b + b"\n" for a, b in chunks)
    check(parse_message(raw), raw)


@FUZZ
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "cut", "insert", "dup"]),
            st.floats(0, 1),
            st.binary(min_size=1, max_size=30),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_mutated_real_messages(sample: bytes, edits: list[tuple[str, float, bytes]]) -> None:
    raw = bytearray(sample)
    for op, where, junk in edits:
        i = int(where * len(raw)) if raw else 0
        if op == "flip" and raw:
            raw[min(i, len(raw) - 1)] ^= junk[0] or 0xFF
        elif op == "cut":
            del raw[i : i + len(junk) * 10]
        elif op == "insert":
            raw[i:i] = junk
        else:
            raw[i:i] = raw[i : i + 200]
    check(parse_message(bytes(raw)), bytes(raw))


def test_nul_inside_an_encoded_word_charset() -> None:
    """Found by the fuzzer in CI: codecs.lookup raises ValueError on an embedded NUL."""
    raw = (
        b"From: a@example.com\r\nSubject: Re: =?utf-8\x00?q?Campa=C3=B1a?= de verano\r\n"
        b"Content-Type: text/plain; charset=\"utf-8\x00\"\r\n\r\nHola\r\n"
    )
    parsed = parse_message(raw)
    check(parsed, raw)
    assert "Hola" in parsed.text

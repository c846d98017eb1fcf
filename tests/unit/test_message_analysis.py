"""analyse_message: the contract other modules code against."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from service.analysis.message import analyse_message
from service.analysis.types import MessageAnalysis

EMAIL = (
    "Hi Tom,\n\nThanks for sending the new homepage draft over. I had a look this morning and "
    "there are a few things we need to change before it goes live: the hero image is still the "
    "old one, the pricing table is missing the enterprise tier, and the contact form doesn't "
    "send anything. Could you please fix these by Thursday? We have the board meeting on "
    "Friday and I would like to show them the new site. Also, can you send me the invoice for "
    "October again, I can't find it. Speak soon and have a good week.\n\nThanks,\nAnna"
)


def test_returns_message_analysis_with_bounded_friction():
    result = analyse_message(EMAIL, subject="Homepage draft",
                             sent_at=datetime(2026, 11, 25, 10, tzinfo=UTC))
    assert isinstance(result, MessageAnalysis)
    assert 0.0 <= result.friction <= 1.0
    assert result.friction < 0.3  # a normal working email with a polite request
    assert -1.0 <= result.tone.polarity <= 1.0


def test_staff_role_keeps_tone_and_drops_friction_signals():
    text = "This is unacceptable, you people are incompetent. Fix it ASAP!!!"
    client = analyse_message(text, role="client")
    staff = analyse_message(text, role="staff")
    assert staff.tone == client.tone
    assert {s.kind for s in client.signals} >= {"urgency", "disrespect"}
    assert not [s for s in staff.signals if s.weight > 0]
    assert staff.friction < client.friction


def test_unassigned_role_runs_every_detector():
    text = "Your team dropped the ball again. Unacceptable."
    assert analyse_message(text, role="unassigned").signals == \
        analyse_message(text, role="client").signals


def test_evidence_quotes_are_exact_spans():
    text = "Hello,\n\nI already told you twice. This is the third time I ask for the logo!!!"
    result = analyse_message(text)
    assert result.signals
    for signal in result.signals:
        for ev in signal.evidence:
            if ev.quote.startswith("Cc: "):
                continue
            assert text[ev.start:ev.end] == ev.quote


def test_empty_and_whitespace_text():
    for text in ("", "   \n\n  ", "> only quoted history\n> nothing new"):
        result = analyse_message(text)
        assert not [s for s in result.signals if s.weight > 0]
        assert result.friction < 0.2


def test_speed_of_a_650_character_email():
    text = (EMAIL * 2)[:650]
    analyse_message(text)  # load rules and lexicon once
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        analyse_message(text)
    per_message = (time.perf_counter() - start) / n
    assert per_message < 0.01  # generous bound for a shared CI box; ~1 ms measured

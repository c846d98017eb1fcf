"""One message in, its tone, friction score and quoted signals out (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from service.analysis.friction import (
    HEALTHY_KINDS,
    KINDS,
    Doc,
    detect_in,
    friction_score,
    load_rules,
)
from service.analysis.language import is_english
from service.analysis.tone import assess
from service.analysis.types import MessageAnalysis, Tone

_STAFF_KINDS = HEALTHY_KINDS


def analyse_message(
    text: str,
    *,
    role: str = "client",
    subject: str = "",
    sent_at: datetime | None = None,
    cc: Sequence[str] = (),
    previous_cc: Sequence[str] = (),
) -> MessageAnalysis:
    """Tone, friction (0..1) and signals of the NEW text of one message.

    Staff mail gets its tone and healthy signals but never friction signals: the health of
    a client is about what the client writes. ``subject`` is accepted but not scored:
    replies repeat the thread's subject, so one "URGENT" subject would count again on every
    message of the thread. Evidence offsets always point into ``text``; CC evidence has none.
    Text that is not English is left neutral (``language="other"``).
    """
    rules = load_rules()
    if not is_english(text):
        # The lexicons are English: other languages get a neutral reading, not a wrong one.
        return MessageAnalysis(tone=Tone(0.0, 0.0), friction=round(friction_score([], rules), 4),
                               signals=(), language="other")
    doc = Doc(text)
    tone, assessments = assess(doc.norm)
    kinds = _STAFF_KINDS if role == "staff" else KINDS
    signals = detect_in(doc, sent_at=sent_at, cc=cc, previous_cc=previous_cc, kinds=kinds,
                        assessments=assessments, rules=rules)
    return MessageAnalysis(tone=tone, friction=round(friction_score(signals, rules), 4),
                           signals=tuple(signals))

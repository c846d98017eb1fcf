"""Plain data shared by the pure analysis modules.

These dataclasses are the seam between I/O (store, mail) and analysis: the
store turns rows into them, analysis turns them into scores. Nothing here
touches a database or the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Role = Literal["client", "staff", "unassigned"]


@dataclass(frozen=True)
class Evidence:
    """The exact span a detector fired on, so every score can quote its reasons."""

    quote: str
    start: int = 0
    end: int = 0
    message_id: str | None = None
    date: datetime | None = None
    subject: str | None = None
    sender: str | None = None


@dataclass(frozen=True)
class Signal:
    """One named observation with its weight (positive = friction, negative = healthy)."""

    kind: str
    weight: float
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class Tone:
    polarity: float
    subjectivity: float


@dataclass(frozen=True)
class MessageAnalysis:
    """What one message says about the relationship."""

    tone: Tone
    friction: float  # 0..1, higher is more hostile, dismissive, demanding
    signals: tuple[Signal, ...] = ()
    language: str = "en"  # "other": not English, so not judged by the English lexicons


@dataclass(frozen=True)
class MessageFacts:
    """A stored message reduced to what client-level analysis needs."""

    message_id: str
    date: datetime
    role: Role
    thread_key: str
    subject: str
    sender: str
    recipients: tuple[str, ...] = ()
    auto_generated: bool = False
    analysis: MessageAnalysis | None = None
    new_text: str = ""


@dataclass(frozen=True)
class ClientEconomics:
    monthly_revenue: float | None = None
    currency: str = "EUR"
    hours_per_month: float | None = None
    revenue_history: tuple[tuple[datetime, float], ...] = field(default_factory=tuple)


def signal_to_row(signal: Signal) -> dict[str, Any]:
    """A message's signal as stored: kind, weight, and evidence offsets into its new text."""
    return {
        "kind": signal.kind,
        "weight": round(float(signal.weight), 4),
        "evidence": [{"quote": e.quote, "start": e.start, "end": e.end} for e in signal.evidence],
    }


def signal_from_row(item: Mapping[str, Any]) -> Signal:
    evidence = tuple(
        Evidence(quote=e.get("quote", ""), start=e.get("start", 0), end=e.get("end", 0))
        for e in item.get("evidence", ())
    )
    return Signal(kind=item["kind"], weight=float(item["weight"]), evidence=evidence)

"""Behavioural metrics of a client relationship: who answers whom, how fast, how often.

Tone only tells part of the story. A client who stops answering after we
deliver, or who sends three demands for every message of ours, is a business
signal even when every sentence is polite. These metrics are pure
aggregation over stored messages (no text is read again), one linear pass per
window, so a full recompute stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from service.analysis.types import MessageFacts

#: A client message counts as "negative" for the share metric at this friction.
NEGATIVE_FRICTION = 0.35
#: ... or at this TextBlob polarity (clearly negative wording).
NEGATIVE_POLARITY = -0.2
#: Replies later than this are not replies but a new conversation; they would
#: otherwise turn a quarterly check-in into a "90-day latency".
MAX_REPLY_GAP = timedelta(days=21)


@dataclass(frozen=True)
class WindowMetrics:
    """Metrics of one rolling window; latencies are medians in hours (None if no pair)."""

    days: int
    client_messages: int
    staff_messages: int
    threads: int
    client_reply_latency_h: float | None
    our_reply_latency_h: float | None
    demand_ratio: float
    revision_rounds: int
    revision_rounds_per_thread: float
    negative_share: float

    def as_dict(self) -> dict[str, float]:
        """Flat keys such as ``negative_share_30d`` for ClientHealth.metrics."""
        s = f"_{self.days}d"
        out = {
            "client_messages" + s: float(self.client_messages),
            "staff_messages" + s: float(self.staff_messages),
            "threads" + s: float(self.threads),
            "demand_ratio" + s: self.demand_ratio,
            "revision_rounds_per_thread" + s: self.revision_rounds_per_thread,
            "negative_share" + s: self.negative_share,
        }
        if self.client_reply_latency_h is not None:
            out["client_reply_latency_h" + s] = self.client_reply_latency_h
        if self.our_reply_latency_h is not None:
            out["our_reply_latency_h" + s] = self.our_reply_latency_h
        return out


def is_negative(m: MessageFacts) -> bool:
    """Whether a client message counts towards the negative share."""
    a = m.analysis
    if a is None:
        return False
    return a.friction >= NEGATIVE_FRICTION or a.tone.polarity <= NEGATIVE_POLARITY


def has_signal(m: MessageFacts, kind: str) -> bool:
    a = m.analysis
    return a is not None and any(s.kind == kind and s.weight > 0 for s in a.signals)


def window_metrics(messages: Sequence[MessageFacts], *, now: datetime, days: int) -> WindowMetrics:
    """Metrics over messages dated in ``(now - days, now]``.

    ``messages`` must be sorted by date and free of auto-generated mail. Reply
    pairs are taken within a thread: a message answers the latest message of
    the other side in the same thread (if it came within MAX_REPLY_GAP).
    """
    start = now - timedelta(days=days)
    last: dict[str, MessageFacts] = {}
    client_lat: list[float] = []
    our_lat: list[float] = []
    n_client = n_staff = n_negative = 0
    threads: set[str] = set()
    revisions: dict[str, int] = {}
    for m in messages:
        if m.date > now:
            break
        if m.role not in ("client", "staff"):
            continue
        prev = last.get(m.thread_key)
        last[m.thread_key] = m
        if m.date <= start:
            continue
        threads.add(m.thread_key)
        if m.role == "client":
            n_client += 1
            n_negative += is_negative(m)
            revisions.setdefault(m.thread_key, 0)
            if has_signal(m, "revision_loop"):
                revisions[m.thread_key] += 1
        else:
            n_staff += 1
        if prev is not None and prev.role != m.role:
            gap = m.date - prev.date
            if timedelta(0) <= gap <= MAX_REPLY_GAP:
                hours = gap.total_seconds() / 3600.0
                (client_lat if m.role == "client" else our_lat).append(hours)
    return WindowMetrics(
        days=days,
        client_messages=n_client,
        staff_messages=n_staff,
        threads=len(threads),
        client_reply_latency_h=median(client_lat) if client_lat else None,
        our_reply_latency_h=median(our_lat) if our_lat else None,
        demand_ratio=n_client / max(1, n_staff),
        revision_rounds=sum(revisions.values()),
        revision_rounds_per_thread=(sum(revisions.values()) / len(revisions)) if revisions else 0.0,
        negative_share=n_negative / n_client if n_client else 0.0,
    )


def silence_after_work_days(messages: Sequence[MessageFacts], *, now: datetime) -> float:
    """Days since our last message when the client has not written since.

    "We delivered and heard nothing" is the quiet way relationships end; it
    is 0 whenever the client wrote after our latest message.
    """
    last_staff: datetime | None = None
    last_client: datetime | None = None
    for m in messages:
        if m.date > now:
            break
        if m.role == "staff":
            last_staff = m.date
        elif m.role == "client":
            last_client = m.date
    if last_staff is None or (last_client is not None and last_client >= last_staff):
        return 0.0
    return max(0.0, (now - last_staff).total_seconds() / 86400.0)

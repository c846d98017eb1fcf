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
    return windows_metrics(messages, now=now, days=(days,))[days]


class _Acc:
    """Running counts of one window."""

    __slots__ = (
        "client_lat",
        "n_client",
        "n_negative",
        "n_staff",
        "our_lat",
        "revisions",
        "threads",
    )

    def __init__(self) -> None:
        self.client_lat: list[float] = []
        self.our_lat: list[float] = []
        self.n_client = self.n_staff = self.n_negative = 0
        self.threads: set[str] = set()
        self.revisions: dict[str, int] = {}


def windows_metrics(
    messages: Sequence[MessageFacts], *, now: datetime, days: Sequence[int]
) -> dict[int, WindowMetrics]:
    """``window_metrics`` for several windows in one pass (the health recompute needs 2-3)."""
    spans = sorted(set(days), reverse=True)
    starts = [now - timedelta(days=d) for d in spans]
    accs = [_Acc() for _ in spans]
    last: dict[str, MessageFacts] = {}
    for m in messages:
        if m.date > now:
            break
        if m.role not in ("client", "staff"):
            continue
        prev = last.get(m.thread_key)
        last[m.thread_key] = m
        if m.date <= starts[0]:
            continue
        client = m.role == "client"
        negative = client and is_negative(m)
        revision = client and has_signal(m, "revision_loop")
        hours = None
        if prev is not None and prev.role != m.role:
            gap = m.date - prev.date
            if timedelta(0) <= gap <= MAX_REPLY_GAP:
                hours = gap.total_seconds() / 3600.0
        for start, acc in zip(starts, accs, strict=True):
            if m.date <= start:
                continue
            acc.threads.add(m.thread_key)
            if client:
                acc.n_client += 1
                acc.n_negative += negative
                acc.revisions[m.thread_key] = acc.revisions.get(m.thread_key, 0) + revision
            else:
                acc.n_staff += 1
            if hours is not None:
                (acc.client_lat if client else acc.our_lat).append(hours)
    out: dict[int, WindowMetrics] = {}
    for d, acc in zip(spans, accs, strict=True):
        rounds = sum(acc.revisions.values())
        out[d] = WindowMetrics(
            days=d,
            client_messages=acc.n_client,
            staff_messages=acc.n_staff,
            threads=len(acc.threads),
            client_reply_latency_h=median(acc.client_lat) if acc.client_lat else None,
            our_reply_latency_h=median(acc.our_lat) if acc.our_lat else None,
            demand_ratio=acc.n_client / max(1, acc.n_staff),
            revision_rounds=rounds,
            revision_rounds_per_thread=(rounds / len(acc.revisions)) if acc.revisions else 0.0,
            negative_share=acc.n_negative / acc.n_client if acc.n_client else 0.0,
        )
    return out


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

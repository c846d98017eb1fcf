"""Client health aggregation: thin evidence, the current mood, economics as a loss."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from service.analysis.health import HealthSettings, assess_client
from service.analysis.responsiveness import window_metrics, windows_metrics
from service.analysis.types import (
    ClientEconomics,
    Evidence,
    MessageAnalysis,
    MessageFacts,
    Signal,
    Tone,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
S = HealthSettings()
FLAGGED = ("at_risk", "unhealthy")


def msg(n: int, role: str, days_ago: float, bad: float = 0.0, thread: str = "site") -> MessageFacts:
    """A message; ``bad`` > 0 gives a client message one blame signal of that weight."""
    sig = (Signal("blame", bad, (Evidence(f"complaint {n}"),)),) if bad > 0 else ()
    return MessageFacts(
        message_id=f"<{n}@x>",
        date=NOW - timedelta(days=days_ago),
        role=role,  # type: ignore[arg-type]
        thread_key=thread,
        subject=f"Re: {thread}",
        sender="c@client.example" if role == "client" else "me@agency.example",
        analysis=MessageAnalysis(Tone(0.1, 0.4), min(1.0, bad), sig),
        new_text=f"message {n}",
    )


def exchange(days_ago: float, n: int, bad: float = 0.0) -> list[MessageFacts]:
    """Our message, then the client's answer half a day later."""
    return [msg(2 * n, "staff", days_ago + 0.5), msg(2 * n + 1, "client", days_ago, bad)]


# ------------------------------------------------------------------ thin evidence


def test_two_hostile_messages_from_a_new_client_are_judged() -> None:
    msgs = exchange(3, 0, bad=0.9) + exchange(1, 1, bad=0.9)
    h = assess_client(msgs, now=NOW, settings=S)
    assert h.state in FLAGGED and h.metrics["insufficient_data"] == 0.0
    # With the override switched off the old rule holds: too few messages to judge.
    strict = replace(S, thin_evidence_messages=S.min_messages)
    assert assess_client(msgs, now=NOW, settings=strict).state == "healthy"


def test_a_first_hostile_email_is_never_an_episode() -> None:
    h = assess_client(exchange(1, 0, bad=1.5), now=NOW, settings=S)
    assert h.state == "healthy" and h.metrics["insufficient_data"] == 1.0


def test_thin_evidence_does_not_enter_watch() -> None:
    # Two messages, mildly negative: a score in the watch band is not enough on thin data.
    msgs = exchange(3, 0, bad=0.15) + exchange(1, 1, bad=0.15)
    h = assess_client(msgs, now=NOW, settings=S)
    assert S.enter["at_risk"] <= h.score < S.enter["watch"]
    assert h.state == "healthy" and h.metrics["insufficient_data"] == 1.0


# ------------------------------------------------------------------ current mood


def _long_calm_history(n: int = 24) -> list[MessageFacts]:
    out: list[MessageFacts] = []
    for i in range(n):
        out += exchange(12 + 4 * i, 100 + i)
    return out


def test_client_souring_after_a_long_calm_history_is_flagged() -> None:
    msgs = _long_calm_history() + exchange(6, 0, bad=1.2) + exchange(2, 1, bad=1.2)
    h = assess_client(msgs, now=NOW, settings=S)
    assert h.state in FLAGGED
    # The decayed mean alone dilutes the two recent messages among the calm ones.
    mean_only = assess_client(msgs, now=NOW, settings=replace(S, recent_weight=0.0))
    assert mean_only.state not in FLAGGED and mean_only.score > h.score + 10
    assert h.signals[0].kind == "blame"


def test_one_bad_email_among_recent_calm_mail_is_not_an_episode() -> None:
    msgs = _long_calm_history() + exchange(6, 0) + exchange(4, 1, bad=1.5) + exchange(2, 2)
    assert assess_client(msgs, now=NOW, settings=S).state in ("healthy", "watch")


def test_bad_week_followed_by_calm_mail_is_not_an_episode() -> None:
    bad_week = exchange(40, 0, bad=1.2) + exchange(38, 1, bad=1.2)
    calm_after = [m for i in range(4) for m in exchange(30 - 7 * i, 10 + i)]
    h = assess_client(_long_calm_history() + bad_week + calm_after, now=NOW, settings=S)
    assert h.state in ("healthy", "watch")


# ------------------------------------------------------------------ economics


def _demanding() -> list[MessageFacts]:
    """A polite client with many requests in many threads over the last month."""
    out: list[MessageFacts] = []
    for i in range(10):
        out += [msg(2 * i, "staff", 28 - 3 * i, thread=f"t{i % 5}"),
                msg(2 * i + 1, "client", 27 - 3 * i, thread=f"t{i % 5}")]
    return out


def test_non_revenue_client_that_demands_much_is_at_risk_with_the_reason() -> None:
    h = assess_client(_demanding(), now=NOW, settings=S, economics=ClientEconomics(0.0))
    assert h.economics.flag and h.state == "at_risk"
    assert h.metrics["loss_economics"] == 50.0
    econ = [s for s in h.signals if s.kind == "economics"]
    assert econ and "no revenue" in econ[0].evidence[0].quote


def test_economics_alone_never_makes_a_client_unhealthy() -> None:
    h = assess_client(_demanding(), now=NOW, settings=S, economics=ClientEconomics(0.0))
    assert h.score >= S.enter["unhealthy"]


def test_paying_or_unknown_revenue_client_with_the_same_demands_is_healthy() -> None:
    for economics in (ClientEconomics(2000.0), ClientEconomics(None), None):
        h = assess_client(_demanding(), now=NOW, settings=S, economics=economics)
        assert not h.economics.flag and h.state == "healthy"
        assert h.metrics["loss_economics"] == 0.0


def test_falling_revenue_while_demanding_shows_in_the_trend() -> None:
    history = ((NOW - timedelta(days=120), 1500.0), (NOW - timedelta(days=10), 300.0))
    older = [m for i in range(6) for m in exchange(70 - 5 * i, 50 + i)]
    h = assess_client(older + _demanding(), now=NOW, settings=S,
                      economics=ClientEconomics(300.0, revenue_history=history))
    assert h.economics.flag and "fell" in h.economics.reason
    assert h.trend < -30
    assert h.history[-1][1] == h.score


def test_one_pass_windows_match_single_windows() -> None:
    msgs = sorted(
        _long_calm_history(10) + exchange(5, 0, bad=0.9) + _demanding(), key=lambda m: m.date
    )
    many = windows_metrics(msgs, now=NOW, days=(30, 90, 7))
    assert many == {d: window_metrics(msgs, now=NOW, days=d) for d in (30, 90, 7)}

"""Client health: score, hysteresis, alert episodes, decay, baseline, explanation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.analysis.health import (
    AlertMemory,
    HealthSettings,
    assess_client,
    next_state,
    raw_state,
    should_alert,
)
from service.analysis.types import Evidence, MessageAnalysis, MessageFacts, Signal, Tone

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
S = HealthSettings()


def msg(
    n: int,
    role: str,
    days_ago: float,
    *,
    friction: float = 0.0,
    polarity: float = 0.1,
    signals: tuple[Signal, ...] = (),
    thread: str = "site",
    text: str = "",
    auto: bool = False,
) -> MessageFacts:
    return MessageFacts(
        message_id=f"<{n}@x>",
        date=NOW - timedelta(days=days_ago),
        role=role,  # type: ignore[arg-type]
        thread_key=thread,
        subject=f"Re: {thread}",
        sender="ana@client.example" if role == "client" else "me@agency.example",
        analysis=MessageAnalysis(Tone(polarity, 0.5), friction, signals),
        new_text=text or f"message {n}",
        auto_generated=auto,
    )


def blame(quote: str = "This is your fault.", w: float = 0.8) -> Signal:
    return Signal("blame", w, (Evidence(quote, 0, len(quote)),))


def conversation(
    client_friction: list[float], *, start_days: float = 40, step: float = 3, **kw: object
) -> list[MessageFacts]:
    """Alternating staff/client messages; client i has the given friction."""
    out: list[MessageFacts] = []
    day = start_days
    for i, f in enumerate(client_friction):
        out.append(msg(2 * i, "staff", day))
        sig = (blame(f"complaint {i}"),) if f > 0 else ()
        out.append(msg(2 * i + 1, "client", day - 1, friction=f, signals=sig, **kw))  # type: ignore[arg-type]
        day -= step
    return out


# ----------------------------------------------------------------- hysteresis


def test_raw_state_uses_enter_thresholds() -> None:
    assert [raw_state(s, S) for s in (90, 69.9, 54.9, 39.9)] == [
        "healthy",
        "watch",
        "at_risk",
        "unhealthy",
    ]


def test_worsening_is_immediate_recovery_needs_leave_threshold() -> None:
    assert next_state("healthy", 50, S) == "at_risk"
    # 58 is above enter(at_risk)=55 but below leave(at_risk)=62: stays at_risk.
    assert next_state("at_risk", 58, S) == "at_risk"
    assert next_state("at_risk", 63, S) == "watch"
    assert next_state("at_risk", 80, S) == "healthy"
    # From unhealthy, 50 passes leave(unhealthy)=48 but not leave(at_risk)=62.
    assert next_state("unhealthy", 50, S) == "at_risk"


def test_score_oscillating_around_threshold_does_not_flap() -> None:
    state = "healthy"
    seen = []
    for score in (54, 57, 53, 58, 56, 54, 60):
        state = next_state(state, score, S)
        seen.append(state)
    assert seen == ["at_risk"] * 7


def test_unknown_previous_state_falls_back_to_enter_thresholds() -> None:
    assert next_state(None, 58, S) == "watch"
    assert next_state("bogus", 30, S) == "unhealthy"


# ----------------------------------------------------------------- alerts


def test_one_alert_per_episode_until_recovered() -> None:
    mem = AlertMemory()
    d = should_alert("at_risk", mem, now=NOW, settings=S)
    assert d.alert and d.memory.episode_open and d.memory.last_alert_at == NOW
    # Worse, still the same episode: no second alert.
    d2 = should_alert("unhealthy", d.memory, now=NOW + timedelta(days=30), settings=S)
    assert not d2.alert and "episode" in d2.reason
    # Recovery (healthy/watch) closes the episode ...
    d3 = should_alert("watch", d2.memory, now=NOW + timedelta(days=40), settings=S)
    assert not d3.alert and not d3.memory.episode_open
    # ... and a new fall after the cooldown alerts again.
    d4 = should_alert("at_risk", d3.memory, now=NOW + timedelta(days=60), settings=S)
    assert d4.alert


def test_cooldown_defers_a_new_episode() -> None:
    mem = AlertMemory(episode_open=False, last_alert_at=NOW - timedelta(days=2))
    d = should_alert("unhealthy", mem, now=NOW, settings=S)
    assert not d.alert and d.reason.startswith("cooldown") and not d.memory.episode_open
    later = should_alert("unhealthy", d.memory, now=NOW + timedelta(days=13), settings=S)
    assert later.alert


def test_backfill_opens_episode_silently_unless_opted_in() -> None:
    d = should_alert("unhealthy", AlertMemory(), now=NOW, settings=S, backfill=True)
    assert not d.alert and d.memory.episode_open and d.reason == "initial backfill"
    # The episode being open, the first live run does not alert either.
    assert not should_alert("unhealthy", d.memory, now=NOW, settings=S).alert
    opted = should_alert(
        "unhealthy", AlertMemory(), now=NOW, settings=S, backfill=True, alert_on_backfill=True
    )
    assert opted.alert


def test_snooze_suppresses_until_it_ends() -> None:
    mem = AlertMemory(snoozed_until=NOW + timedelta(days=3))
    d = should_alert("at_risk", mem, now=NOW, settings=S)
    assert not d.alert and "snoozed" in d.reason
    after = should_alert("at_risk", d.memory, now=NOW + timedelta(days=4), settings=S)
    assert after.alert and after.memory.snoozed_until is None


def test_non_alerting_states_never_alert() -> None:
    for state in ("healthy", "watch"):
        assert not should_alert(state, AlertMemory(), now=NOW, settings=S).alert


# ----------------------------------------------------------------- scoring


def test_calm_client_is_healthy_and_hostile_client_is_flagged() -> None:
    calm = assess_client(conversation([0, 0, 0, 0, 0]), now=NOW, settings=S)
    assert calm.score >= 90 and calm.state == "healthy"
    hostile = assess_client(conversation([0.6, 0.7, 0.5, 0.6, 0.8]), now=NOW, settings=S)
    assert hostile.state in ("at_risk", "unhealthy")
    assert hostile.score < calm.score - 40


def test_one_bad_email_is_not_an_episode() -> None:
    h = assess_client(conversation([0, 0, 0.7, 0, 0, 0]), now=NOW, settings=S)
    assert h.state in ("healthy", "watch")


def test_old_bad_month_fades_with_time_decay() -> None:
    bad = [0.7, 0.6, 0.8, 0.7]
    recent = assess_client(conversation(bad, start_days=14), now=NOW, settings=S)
    old_then_calm = conversation(bad, start_days=200) + [
        msg(100 + i, "client", 60 - 10 * i) for i in range(5)
    ]
    old = assess_client(old_then_calm, now=NOW, settings=S)
    assert recent.state in ("at_risk", "unhealthy")
    assert old.state == "healthy" and old.score > recent.score + 30


def test_shorter_half_life_forgets_faster() -> None:
    msgs = conversation([0.7, 0.7, 0.7], start_days=70) + conversation([0, 0, 0], start_days=20)
    slow = assess_client(msgs, now=NOW, settings=HealthSettings(half_life_days=90))
    fast = assess_client(msgs, now=NOW, settings=HealthSettings(half_life_days=7))
    assert fast.score > slow.score


def test_terse_but_happy_client_is_not_punished_for_style() -> None:
    # Six months of short neutral messages (polarity 0, no friction).
    terse = [msg(i, "client", 180 - 6 * i, polarity=0.0) for i in range(30)]
    h = assess_client(terse, now=NOW, settings=S)
    assert h.state == "healthy" and h.metrics["loss_tone_drop"] == 0
    # The same recent tone is a drop for a client whose own baseline was warm.
    warm_then_cold = [msg(i, "client", 180 - 6 * i, polarity=0.5) for i in range(25)] + [
        msg(100 + i, "client", 25 - 5 * i, polarity=0.0) for i in range(5)
    ]
    soured = assess_client(warm_then_cold, now=NOW, settings=S)
    assert soured.metrics["loss_tone_drop"] > 0 and soured.score < h.score


def test_friction_signals_weigh_more_than_negative_wording() -> None:
    def client(kind: str) -> float:
        sig = (Signal(kind, 0.8, (Evidence("x"),)),)
        msgs = [msg(i, "client", 20 - 4 * i, friction=0.5, signals=sig) for i in range(5)]
        return assess_client(msgs, now=NOW, settings=S).score

    assert client("blame") < client("negative_tone")


def test_configured_weight_overrides_default() -> None:
    sig = (Signal("urgency", 0.8, (Evidence("ASAP"),)),)
    msgs = [msg(i, "client", 20 - 4 * i, friction=0.5, signals=sig) for i in range(5)]
    default = assess_client(msgs, now=NOW, settings=S).score
    muted = assess_client(msgs, now=NOW, settings=HealthSettings(weights={"urgency": 0.1})).score
    assert muted > default


def test_gratitude_softens_but_does_not_cancel_friction() -> None:
    base = (blame(),)
    thanks = (*base, Signal("gratitude", -0.8, (Evidence("Thanks"),)))
    plain = [msg(i, "client", 20 - 4 * i, friction=0.6, signals=base) for i in range(5)]
    kind = [msg(i, "client", 20 - 4 * i, friction=0.6, signals=thanks) for i in range(5)]
    p, k = assess_client(plain, now=NOW, settings=S), assess_client(kind, now=NOW, settings=S)
    assert p.score < k.score < 90


def test_insufficient_data_stays_healthy() -> None:
    msgs = [msg(1, "client", 2, friction=0.9, signals=(blame(),))]
    h = assess_client(msgs, now=NOW, settings=S, previous_state="unhealthy")
    assert h.state == "healthy" and h.metrics["insufficient_data"] == 1.0


def test_auto_replies_and_future_messages_are_ignored() -> None:
    msgs = conversation([0, 0, 0, 0])
    noisy = [
        *msgs,
        *(msg(50 + i, "client", 1, friction=0.9, auto=True) for i in range(5)),
        msg(99, "client", -3, friction=0.9),
    ]
    assert assess_client(noisy, now=NOW, settings=S).score == assess_client(
        msgs, now=NOW, settings=S
    ).score


def test_trend_and_history_show_souring() -> None:
    msgs = conversation([0, 0, 0, 0, 0, 0], start_days=80, step=8) + conversation(
        [0.7, 0.6, 0.8], start_days=20, step=5
    )
    h = assess_client(msgs, now=NOW, settings=S)
    assert h.trend < -20
    assert len(h.history) == 12 and h.history[-1] == (NOW.date(), h.score)
    assert h.history[0][1] > h.history[-1][1]


def test_previous_state_applies_hysteresis() -> None:
    msgs = conversation([0.25, 0.3, 0.2, 0.25, 0.3])
    fresh = assess_client(msgs, now=NOW, settings=S)
    kept = assess_client(msgs, now=NOW, settings=S, previous_state="unhealthy")
    assert fresh.state == raw_state(fresh.score, S)
    assert kept.state == next_state("unhealthy", fresh.score, S)


# ----------------------------------------------------------------- explanation


def test_explanation_quotes_evidence_with_source() -> None:
    msgs = conversation([0.6, 0.7, 0.5, 0.6, 0.8])
    h = assess_client(msgs, now=NOW, settings=S)
    top = h.signals[0]
    assert top.kind == "blame" and top.weight > 10
    assert 1 <= len(top.evidence) <= 3
    ids = {m.message_id: m for m in msgs}
    for ev in top.evidence:
        assert ev.quote.startswith("complaint")
        src = ids[ev.message_id]
        assert (ev.date, ev.subject, ev.sender) == (src.date, src.subject, src.sender)
    # The strongest (most recent, highest friction) message is quoted first.
    assert top.evidence[0].quote == "complaint 4"
    # Weights are score points: together they explain the loss.
    assert sum(s.weight for s in h.signals) == pytest.approx(100 - h.score, abs=1.5)


def test_silence_after_our_work_is_explained_with_our_message() -> None:
    msgs = [*conversation([0, 0, 0, 0], start_days=120), msg(90, "staff", 70, text="Delivered v2")]
    h = assess_client(msgs, now=NOW, settings=S)
    assert h.metrics["silence_after_work_days"] == pytest.approx(70)
    sil = [s for s in h.signals if s.kind == "silence_after_work"]
    assert sil and sil[0].evidence[0].quote == "Delivered v2"
    assert h.state in ("healthy", "watch")  # behaviour alone never makes a client at risk


# ----------------------------------------------------------------- metrics


def test_window_metrics_latency_demand_and_revisions() -> None:
    rev = (Signal("revision_loop", 0.6, (Evidence("again"),)),)
    msgs = [
        msg(1, "staff", 10),
        msg(2, "client", 9.5, signals=rev, friction=0.4),  # 12 h after ours
        msg(3, "staff", 9),  # 12 h after theirs
        msg(4, "client", 8, signals=rev, friction=0.4),  # 24 h
        msg(5, "client", 7.5, thread="other"),
        msg(6, "client", 60, thread="old"),
    ]
    m = assess_client(msgs, now=NOW, settings=S).metrics
    assert m["client_messages_30d"] == 3 and m["staff_messages_30d"] == 2
    assert m["client_reply_latency_h_30d"] == pytest.approx(18)
    assert m["our_reply_latency_h_30d"] == pytest.approx(12)
    assert m["demand_ratio_30d"] == pytest.approx(1.5)
    assert m["revision_rounds_per_thread_30d"] == pytest.approx(1.0)  # 2 in site, 0 in other
    assert m["negative_share_30d"] == pytest.approx(2 / 3)
    assert m["client_messages_90d"] == 4
    assert m["negative_share_trend"] == pytest.approx(2 / 3 - 2 / 4)


# ----------------------------------------------------------------- resolution


def _week(after: list[MessageFacts]) -> list[MessageFacts]:
    """Two angry messages in one week, then whatever follows."""
    angry = [msg(1, "staff", 30), msg(2, "client", 29, friction=0.9, signals=(blame(w=1.5),)),
             msg(3, "staff", 28),
             msg(4, "client", 27, friction=0.8, signals=(blame("Still wrong.", 1.2),))]
    return angry + after


def _thanks(n: int, days_ago: float) -> MessageFacts:
    return msg(n, "client", days_ago, polarity=0.5,
               signals=(Signal("gratitude", -0.7, (Evidence("Thanks, all sorted.", 0, 19),)),))


def test_a_bad_week_closed_warmly_counts_less_than_one_left_open() -> None:
    open_ = assess_client(_week([msg(5, "staff", 20), msg(6, "client", 19, polarity=0.0),
                                 msg(7, "staff", 10), msg(8, "client", 9, polarity=0.0)]),
                          now=NOW, settings=S)
    closed = assess_client(_week([msg(5, "staff", 20), _thanks(6, 19),
                                  msg(7, "staff", 10), _thanks(8, 9)]), now=NOW, settings=S)
    assert closed.score > open_.score
    assert closed.state not in ("at_risk", "unhealthy")
    off = assess_client(_week([msg(5, "staff", 20), _thanks(6, 19),
                               msg(7, "staff", 10), _thanks(8, 9)]),
                        now=NOW, settings=HealthSettings(recovery=1.0))
    assert off.score < closed.score


def test_praise_that_comes_with_friction_is_not_a_resolution() -> None:
    stall = Signal("payment_friction", 0.8, (Evidence("Paying next month.", 0, 18),))
    praise_and_stall = msg(6, "client", 19, polarity=0.6, friction=0.4, signals=(
        Signal("gratitude", -0.7, (Evidence("Love it!", 0, 8),)), stall))
    with_stall = assess_client(_week([msg(5, "staff", 20), praise_and_stall]), now=NOW,
                               settings=S)
    without = assess_client(_week([msg(5, "staff", 20), praise_and_stall]), now=NOW,
                            settings=HealthSettings(recovery=1.0))
    assert with_stall.score == without.score


def test_souring_at_the_end_is_not_softened_by_earlier_warmth() -> None:
    early_warm = [msg(1, "staff", 40), _thanks(2, 39), msg(3, "staff", 30), _thanks(4, 29)]
    late_bad = [msg(5, "staff", 10), msg(6, "client", 9, friction=0.9, signals=(blame(w=1.5),)),
                msg(7, "staff", 5), msg(8, "client", 4, friction=0.9, signals=(blame(w=1.5),))]
    on = assess_client(early_warm + late_bad, now=NOW, settings=S)
    off = assess_client(early_warm + late_bad, now=NOW, settings=HealthSettings(recovery=1.0))
    assert on.score == off.score

"""What the weekly digest says: plain facts in, a ready-to-render digest model out.

Pure (no database, no network, no clock): the workflow gathers one owner's
facts from the store into :class:`DigestInput`; :func:`build_digest` decides
the order (worst client first, decisions before news), what "changed this
week" means, and the wording; templates only lay it out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "STATE_LABELS",
    "AlertInput",
    "AlertLine",
    "Change",
    "ClientInput",
    "ClientSection",
    "Decision",
    "DigestInput",
    "DigestModel",
    "DraftInput",
    "DraftLine",
    "FeedbackInput",
    "OffboardingInput",
    "OutgoingInput",
    "ProblemInput",
    "build_digest",
    "iso_week",
    "one_line",
    "signal_label",
]

STATE_LABELS: Mapping[str, str] = {
    "healthy": "Healthy",
    "watch": "Watch",
    "at_risk": "At risk",
    "unhealthy": "Unhealthy",
}
_STATE_RANK = {"healthy": 0, "watch": 1, "at_risk": 2, "unhealthy": 3}
_ALERT_STATES = frozenset({"at_risk", "unhealthy"})

_SIGNAL_LABELS: Mapping[str, str] = {
    "revision_loop": "Revision loop",
    "price_pressure": "Pressure on price",
    "urgency": "Urgency",
    "blame": "Blame",
    "escalation": "Escalation",
    "dismissal": "Dismissive replies",
    "payment_friction": "Payment friction",
    "disrespect": "Disrespect",
    "negative_tone": "Negative tone",
    "hostility": "Hostile language",
    "strain": "Strained wording",
    "tone_drop": "Tone has cooled",
    "silence_after_work": "Silence after our work",
    "demand_volume": "Many requests per reply of ours",
    "friction": "Friction",
    "gratitude": "Gratitude",
    "politeness": "Politeness",
}

_KIND_LABELS: Mapping[str, str] = {
    "conversation_request": "conversation request",
    "farewell": "farewell",
    "feedback_request": "feedback request",
}

_OFFBOARDING_LABELS: Mapping[str, str] = {
    "proposed": "proposed",
    "conversation_requested": "conversation requested, waiting for the meeting",
    "met": "met; the farewell is being drafted",
    "drafted": "drafted",
    "awaiting_approval": "waiting for your approval",
    "approved": "approved",
    "scheduled": "farewell scheduled",
    "sent": "farewell sent",
    "feedback_requested": "feedback requested",
    "closed": "closed",
    "cancelled": "cancelled",
}

#: Offboardings that are over: not "in progress".
_OFFBOARDING_DONE = frozenset({"closed", "cancelled"})
#: Days after a conversation request before the digest asks whether the meeting happened.
MEETING_NUDGE_DAYS = 7
QUOTE_CHARS = 160


# -- input ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientInput:
    """One client as stored: the latest assessment and what the week looked like."""

    name: str
    score: float | None
    state: str
    trend: float | None  # score change over 30 days
    history: tuple[tuple[date, float], ...] = ()  # weekly scores, oldest first
    signals: tuple[Mapping[str, Any], ...] = ()  # `clients --json` signal objects
    economics: Mapping[str, Any] | None = None
    monthly_revenue: float | None = None
    currency: str = "EUR"
    state_week_ago: str | None = None
    score_week_ago: float | None = None
    messages_this_week: int = 0
    insufficient_data: bool = False
    snoozed_until: datetime | None = None
    acknowledged_at: datetime | None = None


@dataclass(frozen=True)
class AlertInput:
    """An alert email about a client, and the owner's answer to it if any."""

    client: str
    sent_at: datetime
    subject: str
    state: str | None = None  # the client state the alert reported
    response: str | None = None  # the accepted command, e.g. "OFFBOARD"
    response_at: datetime | None = None


@dataclass(frozen=True)
class OffboardingInput:
    client: str
    state: str
    started_at: datetime
    updated_at: datetime | None = None
    held_reason: str | None = None
    met_at: datetime | None = None


@dataclass(frozen=True)
class DraftInput:
    """A draft waiting for the owner's reply, with the request email it was sent in."""

    client: str
    kind: str
    version: int
    subject: str
    created_at: datetime
    failed_rules: tuple[str, ...] = ()
    request_subject: str | None = None
    request_sent_at: datetime | None = None
    scheduled_for: datetime | None = None


@dataclass(frozen=True)
class OutgoingInput:
    """An outbox email: scheduled (not_before) or sent (sent_at)."""

    kind: str
    client: str | None
    to: tuple[str, ...]
    subject: str
    not_before: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class FeedbackInput:
    client: str
    received_at: datetime
    text: str


@dataclass(frozen=True)
class ProblemInput:
    """An email of this owner's that failed or may not have arrived."""

    kind: str
    subject: str
    state: str  # failed | uncertain
    to: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class DigestInput:
    owner: str
    now: datetime
    timezone: str = "UTC"
    owner_name: str | None = None
    signature: str | None = None
    clients: tuple[ClientInput, ...] = ()
    alerts: tuple[AlertInput, ...] = ()
    offboardings: tuple[OffboardingInput, ...] = ()
    drafts: tuple[DraftInput, ...] = ()
    scheduled: tuple[OutgoingInput, ...] = ()
    farewells: tuple[OutgoingInput, ...] = ()
    feedback: tuple[FeedbackInput, ...] = ()
    problems: tuple[ProblemInput, ...] = ()
    period_days: int = 7
    reply_address: str | None = None  # where command replies go (for the how-to line)


# -- output -----------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    client: str | None
    text: str  # what is waiting
    how: str  # how to decide (reply word or command)
    urgency: int  # lower first


@dataclass(frozen=True)
class Change:
    label: str
    kind: str
    points: float  # score points this signal costs (negative: it helps)
    quote: str | None
    when: str | None  # short local date of the quote
    new: bool  # evidence from this week

    @property
    def points_text(self) -> str:
        """The effect on the score: '-12 points', '+1 point', 'under 1 point'."""
        if abs(self.points) < 0.5:
            return "under 1 point"
        sign = "-" if self.points > 0 else "+"
        return sign + _points(abs(self.points))


@dataclass(frozen=True)
class ClientSection:
    name: str
    score: float | None
    score_text: str
    state: str
    state_label: str
    trend_text: str
    week_text: str  # how the week moved it, in words
    worse: bool
    better: bool
    values: tuple[float | None, ...]  # weekly scores for the sparkline, oldest first
    changes: tuple[Change, ...]
    economics_text: str | None
    economics_flag: bool
    note: str | None  # snoozed, offboarding, too little mail


@dataclass(frozen=True)
class AlertLine:
    client: str
    when: str
    subject: str
    state_label: str | None
    action: str
    answered: bool


@dataclass(frozen=True)
class DraftLine:
    client: str
    kind_label: str
    version: int
    subject: str
    request_subject: str | None
    waiting: str
    failed_rules: tuple[str, ...]
    send_at: str | None


@dataclass(frozen=True)
class ItemLine:
    """A generic dated line: offboarding, scheduled or sent email, feedback."""

    client: str | None
    when: str | None
    text: str
    quote: str | None = None


@dataclass(frozen=True)
class DigestModel:
    owner: str
    greeting: str
    subject: str
    week: str  # ISO week, e.g. 2026-W48
    period_text: str
    timezone: str
    summary: str
    decisions: tuple[Decision, ...]
    clients: tuple[ClientSection, ...]
    alerts: tuple[AlertLine, ...]
    offboardings: tuple[ItemLine, ...]
    drafts: tuple[DraftLine, ...]
    approve_help: str | None
    scheduled: tuple[ItemLine, ...]
    farewells: tuple[ItemLine, ...]
    feedback: tuple[ItemLine, ...]
    signature: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)


# -- helpers ------------------------------------------------------------------------


def iso_week(day: date) -> str:
    """'2026-W05': the key of one digest per owner per ISO week."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def signal_label(kind: str) -> str:
    return _SIGNAL_LABELS.get(kind, kind.replace("_", " ").capitalize())


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state.replace("_", " ").capitalize())


def one_line(text: str | None, limit: int = QUOTE_CHARS) -> str | None:
    """The first meaningful line of a quote, shortened at a word boundary."""
    if not text:
        return None
    lines = [ln.strip().lstrip(">").strip() for ln in text.replace("\r", "\n").split("\n")]
    line = next((ln for ln in lines if ln), "")
    line = " ".join(line.split())
    if not line:
        return None
    if len(line) > limit:
        cut = line[: limit - 1]
        if " " in cut[limit // 2 :]:
            cut = cut[: cut.rfind(" ")]
        line = cut.rstrip(",;:.- ") + "…"
    return line


def offboarding_label(state: str) -> str:
    return _OFFBOARDING_LABELS.get(state, state.replace("_", " "))


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return value.astimezone(tz)


def _day(value: datetime | None, tz: ZoneInfo) -> str | None:
    if value is None:
        return None
    local = _local(value, tz)
    return f"{local:%a} {local.day} {local:%b}"


def _day_time(value: datetime | None, tz: ZoneInfo) -> str | None:
    if value is None:
        return None
    local = _local(value, tz)
    return f"{local:%a} {local.day} {local:%b} {local:%H:%M}"


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _money(amount: float | None, currency: str) -> str | None:
    if amount is None:
        return None
    return f"{amount:,.0f} {currency}".strip()


def _points(value: float) -> str:
    shown = f"{value:.0f}"
    return f"{shown} point" if shown in ("1", "-1") else f"{shown} points"


def _signed(value: float) -> str:
    return f"{value:+.0f}"


# -- clients ----------------------------------------------------------------------


def _changes(client: ClientInput, since: datetime, tz: ZoneInfo) -> tuple[Change, ...]:
    """Each signal with one quoted line: this week's evidence first, else the latest."""
    changes: list[Change] = []
    for signal in client.signals:
        kind = str(signal.get("kind", "friction"))
        points = float(signal.get("weight", 0.0))
        evidence = []
        for item in signal.get("evidence", ()) or ():
            quote = one_line(item.get("quote"))
            if quote:
                evidence.append((_parse_time(item.get("date")), quote))
        recent = [(d, q) for d, q in evidence if d is not None and d >= since]
        pool = recent or evidence
        pool.sort(key=lambda dq: dq[0] or datetime.min.replace(tzinfo=since.tzinfo),
                  reverse=True)
        when, quote = pool[0] if pool else (None, None)
        changes.append(Change(signal_label(kind), kind, round(points, 1), quote,
                              _day(when, tz), bool(recent)))
    # new evidence first, then by how much it costs; healthy signals last
    changes.sort(key=lambda c: (not c.new, c.points <= 0, -abs(c.points)))
    return tuple(changes)


def _week_ago_score(client: ClientInput) -> float | None:
    if client.score_week_ago is not None:
        return client.score_week_ago
    if len(client.history) >= 2:
        return client.history[-2][1]
    return None


def _week_text(client: ClientInput) -> tuple[str, bool, bool]:
    before = client.state_week_ago
    now_rank = _STATE_RANK.get(client.state, 0)
    if before is not None and before != client.state:
        worse = now_rank > _STATE_RANK.get(before, 0)
        verb = "Worsened" if worse else "Improved"
        return f"{verb} from {state_label(before)} to {state_label(client.state)}", worse, not worse
    old = _week_ago_score(client)
    if client.score is None or old is None:
        return "No earlier score to compare", False, False
    delta = client.score - old
    if abs(delta) < 1:
        return f"Steady at {state_label(client.state)}", False, False
    direction = "down" if delta < 0 else "up"
    return (f"{state_label(client.state)}, {direction} {_points(abs(delta))} this week",
            delta <= -5, delta >= 5)


def _economics_text(client: ClientInput) -> tuple[str | None, bool]:
    econ = client.economics or {}
    revenue = econ.get("revenue", client.monthly_revenue)
    currency = str(econ.get("currency") or client.currency)
    effort = econ.get("effort_units")
    parts: list[str] = []
    money = _money(revenue, currency)
    parts.append(f"{money}/month" if money else "no revenue on record")
    if effort is not None:
        parts.append(f"{float(effort):.0f} effort units in 30 days")
        per = econ.get("revenue_per_effort")
        if per is not None:
            parts.append(f"{float(per):,.0f} {currency} per unit")
    change = econ.get("revenue_change")
    if change is not None and abs(float(change)) >= 0.05:
        parts.append(f"revenue {float(change) * 100:+.0f}% over 90 days")
    if not econ and money is None:
        return None, False
    text = "; ".join(parts)
    flag = bool(econ.get("flag"))
    reason = econ.get("reason")
    if flag and reason:
        text += f" — {reason}"
    return text, flag


def _client_section(
    client: ClientInput, since: datetime, now: datetime, tz: ZoneInfo,
    offboarding: OffboardingInput | None,
) -> ClientSection:
    week_text, worse, better = _week_text(client)
    economics_text, flag = _economics_text(client)
    notes = []
    if offboarding is not None:
        notes.append(f"Offboarding: {offboarding_label(offboarding.state)}")
    if client.snoozed_until is not None and client.snoozed_until > now:
        notes.append(f"Alerts snoozed until {_day(client.snoozed_until, tz)}")
    if client.insufficient_data:
        notes.append("Too little mail yet for a firm judgement")
    if client.messages_this_week == 0:
        notes.append("No mail this week")
    trend = "–" if client.trend is None else f"{_signed(client.trend)} in 30 days"
    return ClientSection(
        name=client.name,
        score=client.score,
        score_text="–" if client.score is None else f"{client.score:.0f}",
        state=client.state,
        state_label=state_label(client.state),
        trend_text=trend,
        week_text=week_text,
        worse=worse,
        better=better,
        values=tuple(score for _, score in client.history),
        changes=_changes(client, since, tz),
        economics_text=economics_text,
        economics_flag=flag,
        note="; ".join(notes) or None,
    )


def _client_order(client: ClientInput) -> tuple[float, float, str]:
    score = client.score if client.score is not None else 101.0
    return (-_STATE_RANK.get(client.state, 0), score, client.name.casefold())


# -- decisions ----------------------------------------------------------------------


def _approve_how(draft: DraftInput) -> str:
    where = f'the email "{draft.request_subject}"' if draft.request_subject else (
        "the approval request email"
    )
    if draft.failed_rules:
        return (f"reply to {where} with EDIT and the new text on the following lines "
                f"(it fails: {', '.join(draft.failed_rules)}), or REJECT")
    return f"reply to {where} with APPROVE (or EDIT with new text, or REJECT)"


def _decisions(
    data: DigestInput, tz: ZoneInfo, active: Mapping[str, OffboardingInput]
) -> list[Decision]:
    out: list[Decision] = []
    for problem in data.problems:
        to = ", ".join(problem.to)
        if problem.state == "uncertain":
            out.append(Decision(None, f'"{problem.subject}" to {to} may not have arrived',
                                "reply RESEND or DROP to our question about it", 0))
        else:
            out.append(Decision(None, f'"{problem.subject}" to {to} was not delivered'
                                + (f" ({problem.error})" if problem.error else ""),
                                "check the address, then queue it again", 1))
    for off in active.values():
        if off.held_reason:
            out.append(Decision(off.client, f"The {off.client} farewell is on hold: "
                                f"{one_line(off.held_reason)}",
                                "reply to our question about it to send or cancel", 1))
    for draft in data.drafts:
        label = _KIND_LABELS.get(draft.kind, draft.kind.replace("_", " "))
        waiting = _day(draft.request_sent_at or draft.created_at, tz)
        out.append(Decision(draft.client,
                            f"Approve the {label} to {draft.client} (version {draft.version}, "
                            f"waiting since {waiting})", _approve_how(draft), 2))
    alerted: set[str] = set()
    for alert in data.alerts:
        if alert.response is None and alert.client not in active:
            alerted.add(alert.client)
    by_name = {c.name: c for c in data.clients}
    for name in sorted(alerted):
        client = by_name.get(name)
        if client is not None and client.state not in _ALERT_STATES:
            continue  # recovered since the alert
        state = state_label(client.state) if client else "flagged"
        out.append(Decision(name, f"{name} is {state} and the alert is unanswered",
                            "reply to the alert with OFFBOARD, SNOOZE or OK", 3))
    for client in data.clients:
        if client.name in alerted or client.name in active:
            continue
        if client.state not in _ALERT_STATES or client.insufficient_data:
            continue
        if client.snoozed_until is not None and client.snoozed_until > data.now:
            continue
        if client.acknowledged_at is not None:
            continue  # the owner already said this is fine
        out.append(Decision(client.name, f"{client.name} is {state_label(client.state)} "
                            f"(score {client.score:.0f})" if client.score is not None
                            else f"{client.name} is {state_label(client.state)}",
                            f"keep going, or start parting ways: saygoodbye offboard "
                            f'"{client.name}"', 4))
    for off in active.values():
        if off.state == "conversation_requested" and off.met_at is None:
            since = off.updated_at or off.started_at
            if data.now - since >= timedelta(days=MEETING_NUDGE_DAYS):
                out.append(Decision(off.client, f"Did you meet {off.client}? The conversation "
                                    f"was requested on {_day(since, tz)}",
                                    f'reply MET to the request, or saygoodbye offboard '
                                    f'"{off.client}" --met', 5))
    out.sort(key=lambda d: d.urgency)
    return out


# -- the digest ---------------------------------------------------------------------


def _alert_line(alert: AlertInput, tz: ZoneInfo, active: Mapping[str, OffboardingInput],
                clients: Mapping[str, ClientInput], now: datetime) -> AlertLine:
    client = clients.get(alert.client)
    if alert.response:
        action = f"You replied {alert.response}" + (
            f" on {_day(alert.response_at, tz)}" if alert.response_at else "")
        answered = True
    elif alert.client in active:
        action = "Offboarding started"
        answered = True
    elif client is not None and client.snoozed_until is not None and client.snoozed_until > now:
        action = f"Snoozed until {_day(client.snoozed_until, tz)}"
        answered = True
    elif client is not None and client.acknowledged_at is not None and (
        client.acknowledged_at >= alert.sent_at
    ):
        action = f"Marked OK on {_day(client.acknowledged_at, tz)}"
        answered = True
    else:
        action = "No answer yet"
        answered = False
    return AlertLine(alert.client, _day_time(alert.sent_at, tz) or "", alert.subject,
                     state_label(alert.state) if alert.state else None, action, answered)


def _subject(week: str, decisions: int, clients: Sequence[ClientSection]) -> str:
    bad = [c for c in clients if c.state in _ALERT_STATES]
    parts = []
    if decisions:
        parts.append(f"{decisions} decision{'s' if decisions != 1 else ''} for you")
    if bad:
        parts.append(f"{len(bad)} client{'s' if len(bad) != 1 else ''} at risk or worse")
    if not parts:
        parts.append("all calm")
    return f"Your clients this week ({week}): " + ", ".join(parts)


def build_digest(data: DigestInput) -> DigestModel:
    """The digest for one owner; the caller skips owners without clients."""
    tz = ZoneInfo(data.timezone)
    since = data.now - timedelta(days=data.period_days)
    local_now = _local(data.now, tz)
    week = iso_week(local_now.date())
    start = _local(since, tz)
    period = f"{start.day} {start:%b} – {local_now.day} {local_now:%b %Y}"
    active = {
        o.client: o
        for o in sorted(data.offboardings, key=lambda o: o.started_at)
        if o.state not in _OFFBOARDING_DONE
    }
    clients_by_name = {c.name: c for c in data.clients}
    sections = tuple(
        _client_section(c, since, data.now, tz, active.get(c.name))
        for c in sorted(data.clients, key=_client_order)
    )
    decisions = tuple(_decisions(data, tz, active))
    alerts = tuple(
        _alert_line(a, tz, active, clients_by_name, data.now)
        for a in sorted(data.alerts, key=lambda a: a.sent_at)
    )
    offboardings = tuple(
        ItemLine(o.client, _day(o.started_at, tz),
                 f"{offboarding_label(o.state)} (started {_day(o.started_at, tz)})",
                 one_line(o.held_reason) if o.held_reason else None)
        for o in active.values()
    )
    drafts = tuple(
        DraftLine(
            client=d.client,
            kind_label=_KIND_LABELS.get(d.kind, d.kind.replace("_", " ")),
            version=d.version,
            subject=d.subject,
            request_subject=d.request_subject,
            waiting=_day(d.request_sent_at or d.created_at, tz) or "",
            failed_rules=d.failed_rules,
            send_at=_day_time(d.scheduled_for, tz),
        )
        for d in sorted(data.drafts, key=lambda d: d.created_at)
    )
    approve_help = None
    if drafts:
        to = f" (it goes to {data.reply_address})" if data.reply_address else ""
        approve_help = (
            "To approve, reply to the approval request email from your own address with "
            f"APPROVE on the first line{to}. EDIT followed by the new text sends a new "
            "version for checking; REJECT drops the draft. No links to click: replies are "
            "checked for your address and a one-time token."
        )
    scheduled = tuple(
        ItemLine(m.client, _day_time(m.not_before, tz),
                 f"{_KIND_LABELS.get(m.kind, m.kind.replace('_', ' ')).capitalize()}: "
                 f'"{m.subject}" to {", ".join(m.to)}')
        for m in sorted(data.scheduled, key=lambda m: m.not_before or data.now)
    )
    farewells = tuple(
        ItemLine(m.client, _day_time(m.sent_at, tz), f'"{m.subject}" to {", ".join(m.to)}')
        for m in sorted(data.farewells, key=lambda m: m.sent_at or data.now)
    )
    feedback = tuple(
        ItemLine(f.client, _day(f.received_at, tz), f"Feedback from {f.client}",
                 one_line(f.text, 400))
        for f in sorted(data.feedback, key=lambda f: f.received_at)
    )
    bad = sum(1 for c in sections if c.state in _ALERT_STATES)
    worse = sum(1 for c in sections if c.worse)
    summary_parts = [f"{len(sections)} client{'s' if len(sections) != 1 else ''}"]
    if bad:
        summary_parts.append(f"{bad} at risk or unhealthy")
    if worse:
        summary_parts.append(f"{worse} worse than last week")
    if decisions:
        summary_parts.append(f"{len(decisions)} waiting for your decision")
    name = data.owner_name or data.owner.split("@", 1)[0].split(".")[0].capitalize()
    return DigestModel(
        owner=data.owner,
        greeting=f"Hello {name},",
        subject=_subject(week, len(decisions), sections),
        week=week,
        period_text=period,
        timezone=data.timezone,
        summary=", ".join(summary_parts) + ".",
        decisions=decisions,
        clients=sections,
        alerts=alerts,
        offboardings=offboardings,
        drafts=drafts,
        approve_help=approve_help,
        scheduled=scheduled,
        farewells=farewells,
        feedback=feedback,
        signature=data.signature,
        counts={"clients": len(sections), "decisions": len(decisions), "at_risk": bad,
                "worse": worse},
    )

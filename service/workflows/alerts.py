"""Owner alerts: one email per episode when a client's state worsens.

The decision is pure (analysis.health.should_alert); this module remembers
the episode in client_states, renders the alert from templates/, queues it in
the outbox with a reply token, and handles the owner's reply commands
(SNOOZE 30d, OK; OFFBOARD is registered by the offboarding workflow).

The first assessment of a client is its backfill: a year of history must not
fire forty alerts at once, so clients already in trouble are listed in one
summary email per owner instead (unless `[service] backfill_alerts`).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ..analysis.health import AlertMemory, should_alert
from ..config import Settings
from ..mail.compose import compose, domain_of
from ..store.models import ClientState
from ..templating import render
from .approvals import (
    CommandContext,
    CommandResult,
    issue_token,
    register_command,
    reply_headers,
)
from .health_update import Assessment, health_settings
from .outbox import queue

log = logging.getLogger(__name__)

PURPOSE = "alert"


@dataclass(frozen=True)
class AlertOutcome:
    client: str
    alerted: bool
    reason: str
    outbox_id: int | None = None


def _memory(state: ClientState | None) -> AlertMemory:
    if state is None:
        return AlertMemory()
    return AlertMemory(
        episode_open=bool(state.episode_open),
        last_alert_at=state.last_alert_at,
        snoozed_until=state.snoozed_until,
    )


def _reasons(signals: Sequence[Any]) -> list[dict[str, Any]]:
    """Friction signals with their quotes, dates kept as dates for the template."""
    return [
        {
            "kind": signal.kind,
            "weight": signal.weight,
            "evidence": [
                {"date": e.date, "subject": e.subject, "sender": e.sender, "quote": e.quote}
                for e in signal.evidence
            ],
        }
        for signal in signals
        if signal.weight > 0
    ]


def _economics(assessment: Assessment, settings: Settings) -> dict[str, Any]:
    client = settings.client(assessment.client)
    econ = assessment.health.economics
    lines = []
    if econ.revenue is not None:
        lines.append(f"Revenue: {econ.revenue:,.0f} {econ.currency} per month.")
    else:
        lines.append("Revenue: not configured for this client.")
    lines.append(f"Effort: {econ.effort_units:.0f} units in the last 30 days.")
    if econ.revenue_per_effort is not None:
        lines.append(f"Revenue per effort unit: {econ.revenue_per_effort:,.0f} {econ.currency}.")
    if econ.flag:
        lines.append(econ.reason)
    return {
        "monthly_revenue": client.monthly_revenue if client else None,
        "currency": econ.currency,
        "lines": lines,
    }


def _send_alert(
    session: Session, settings: Settings, assessment: Assessment, now: datetime
) -> int | None:
    if settings.smtp is None:
        log.warning("event=alert_not_sent client=%s reason=no_smtp_configured", assessment.client)
        return None
    owner = settings.owner(assessment.owner)
    health = assessment.health
    context = {
        "owner_name": owner.name or owner.email,
        "client_name": assessment.client,
        "state": health.state,
        "score": round(health.score),
        "trend": round(health.trend) if health.trend is not None else None,
        "reasons": _reasons(health.signals),
        "economics": _economics(assessment, settings),
    }
    email = render("alert", "default", context, templates_dir=settings.service.templates_dir)
    token = issue_token(session, settings, owner=owner.email, purpose=PURPOSE,
                        subject_id=assessment.client, now=now)
    msg = compose(
        from_addr=settings.smtp.from_address,
        to=[owner.email],
        subject=email.subject,
        text=email.text,
        html=email.html,
        domain=domain_of(settings.smtp.from_address),
        headers={"Auto-Submitted": "auto-generated"},
        **reply_headers(settings, token),
    )
    row = queue(session, settings, msg, kind="alert", client=assessment.client,
                owner=owner.email, now=now)
    return row.id


def _send_backfill_summary(
    session: Session, settings: Settings, owner_email: str, items: list[Assessment],
    now: datetime,
) -> int | None:
    """One plain summary instead of an alert per client on the first assessment."""
    if settings.smtp is None or not items:
        return None
    owner = settings.owner(owner_email)
    lines = [
        f"Hello {owner.name or owner.email},",
        "",
        "saygoodbye has read the mailbox history for the first time. Rather than one alert",
        "per client, here is where things stand. You will be alerted by email when a",
        "client's state worsens from now on.",
        "",
    ]
    for item in sorted(items, key=lambda a: a.health.score):
        top = ", ".join(s.kind.replace("_", " ") for s in item.health.signals if s.weight > 0)
        lines.append(f"- {item.client}: {item.health.state.replace('_', ' ')}, "
                     f"score {item.health.score:.0f}" + (f" ({top})" if top else ""))
    lines += ["", "See `saygoodbye client NAME` for the quoted evidence.", ""]
    msg = compose(
        from_addr=settings.smtp.from_address,
        to=[owner.email],
        subject=f"saygoodbye: {len(items)} client(s) to look at after the first read",
        text="\n".join(lines),
        domain=domain_of(settings.smtp.from_address),
        headers={"Auto-Submitted": "auto-generated"},
    )
    return queue(session, settings, msg, kind="alert_summary", owner=owner.email, now=now).id


def process_assessments(
    session: Session,
    settings: Settings,
    assessments: Sequence[Assessment],
    *,
    now: datetime | None = None,
) -> list[AlertOutcome]:
    """Decide and queue alerts for freshly assessed clients (in the caller's transaction).

    Must run before the assessments' states are read back as "previous":
    a client whose stored state did not exist before is in its backfill.
    """
    now = now or datetime.now(UTC)
    hs = health_settings(settings.health)
    outcomes: list[AlertOutcome] = []
    summaries: dict[str, list[Assessment]] = defaultdict(list)
    for assessment in assessments:
        row = session.get(ClientState, assessment.client)
        if row is None:  # save_assessments stores states; nothing to remember without one
            continue
        backfill = assessment.previous_state is None
        decision = should_alert(
            assessment.health.state, _memory(row), now=now, settings=hs,
            backfill=backfill, alert_on_backfill=settings.service.backfill_alerts,
        )
        row.episode_open = decision.memory.episode_open
        row.last_alert_at = decision.memory.last_alert_at
        row.snoozed_until = decision.memory.snoozed_until
        outbox_id = None
        if decision.alert:
            outbox_id = _send_alert(session, settings, assessment, now)
            log.info("event=alert client=%s state=%s score=%.0f outbox=%s", assessment.client,
                     assessment.health.state, assessment.health.score, outbox_id)
        elif decision.reason == "initial backfill":
            summaries[assessment.owner].append(assessment)
        outcomes.append(AlertOutcome(assessment.client, decision.alert, decision.reason,
                                     outbox_id))
    for owner, items in summaries.items():
        _send_backfill_summary(session, settings, owner, items, now)
    return outcomes


# -- reply commands --------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d{1,3})\s*(d|day|days|w|wk|week|weeks)?\s*$", re.IGNORECASE)


def parse_snooze(args: str) -> timedelta | None:
    """'30d', '2 weeks', '' (default 30 days) -> timedelta; None when unreadable."""
    if not args.strip():
        return timedelta(days=30)
    match = _DURATION.match(args)
    if not match:
        return None
    amount = int(match.group(1))
    unit = (match.group(2) or "d").lower()
    days = amount * 7 if unit.startswith("w") else amount
    if not 1 <= days <= 365:
        return None
    return timedelta(days=days)


def _cmd_snooze(ctx: CommandContext) -> CommandResult:
    span = parse_snooze(ctx.args)
    if span is None:
        return CommandResult(False, f"SNOOZE needs a duration such as '30d' or '2 weeks' "
                                    f"(1 to 365 days); got {ctx.args!r}.")
    row = ctx.session.get(ClientState, ctx.subject_id)
    if row is None:
        return CommandResult(False, f"No client named {ctx.subject_id!r} is being tracked.")
    row.snoozed_until = ctx.now + span
    row.acknowledged_at = ctx.now
    return CommandResult(True, f"Alerts for {ctx.subject_id} are snoozed until "
                               f"{row.snoozed_until:%Y-%m-%d}.")


def _cmd_ok(ctx: CommandContext) -> CommandResult:
    row = ctx.session.get(ClientState, ctx.subject_id)
    if row is None:
        return CommandResult(False, f"No client named {ctx.subject_id!r} is being tracked.")
    row.acknowledged_at = ctx.now
    return CommandResult(True, f"Noted: you have seen the alert about {ctx.subject_id}. "
                               "You will hear again only if it recovers and then worsens.")


register_command("SNOOZE", _cmd_snooze, purposes=[PURPOSE])
register_command("OK", _cmd_ok, purposes=[PURPOSE])

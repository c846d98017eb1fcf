"""Is this relationship worth the effort? Revenue against the work it takes.

A client can be perfectly pleasant and still cost more than they bring, or
bring nothing at all while demanding a lot. The owner decides; this module
only puts the numbers side by side and raises a flag with a plain reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from service.analysis.types import ClientEconomics

#: Effort units per item over a 30-day window: each of our messages is one
#: unit, each active thread (a deliverable) two, each revision round three.
EFFORT_PER_STAFF_MESSAGE = 1.0
EFFORT_PER_CLIENT_MESSAGE = 0.5
EFFORT_PER_THREAD = 2.0
EFFORT_PER_REVISION = 3.0


@dataclass(frozen=True)
class EconomicsSettings:
    """Thresholds for the economics flag (the ``[health]`` table, ``economics_*`` keys)."""

    #: Effort units per 30 days from which a non-revenue client "demands much".
    high_effort_units: float = 20.0
    #: Revenue drop (fraction over ~90 days) that counts as falling revenue.
    falling_revenue_drop: float = 0.2
    #: Optional floor: flag when monthly revenue per effort unit is below it.
    min_revenue_per_effort: float | None = None


@dataclass(frozen=True)
class EconomicsSummary:
    revenue: float | None  # monthly, in ``currency``; None when unknown
    currency: str
    effort_units: float  # per 30 days (see EFFORT_* weights)
    revenue_per_effort: float | None
    hours_per_month: float | None
    revenue_per_hour: float | None
    revenue_change: float | None  # fractional change over ~90 days, e.g. -0.3
    flag: bool
    reason: str


def effort_units(
    *, staff_messages: int, client_messages: int, threads: int, revision_rounds: float
) -> float:
    """Work a client caused in a window, in comparable units."""
    return (
        EFFORT_PER_STAFF_MESSAGE * staff_messages
        + EFFORT_PER_CLIENT_MESSAGE * client_messages
        + EFFORT_PER_THREAD * threads
        + EFFORT_PER_REVISION * revision_rounds
    )


def revenue_change(economics: ClientEconomics, *, now: datetime) -> float | None:
    """Fractional change of revenue between ~90 days ago and now, from revenue_history.

    The current figure is ``monthly_revenue`` when set, else the latest
    history point; the old figure is the latest history point at least 60
    days old (so one late invoice does not count as a trend).
    """
    history = sorted((d, v) for d, v in economics.revenue_history if d <= now)
    if not history:
        return None
    current = economics.monthly_revenue if economics.monthly_revenue is not None else history[-1][1]
    old = [v for d, v in history if d <= now - timedelta(days=60)]
    if not old or old[-1] <= 0:
        return None
    return (current - old[-1]) / old[-1]


def summarize(
    economics: ClientEconomics | None,
    *,
    now: datetime,
    staff_messages: int,
    client_messages: int,
    threads: int,
    revision_rounds: float,
    settings: EconomicsSettings | None = None,
) -> EconomicsSummary:
    """Effort against revenue over the last 30 days, with a flag and its reason."""
    settings = settings or EconomicsSettings()
    economics = economics or ClientEconomics()
    effort = effort_units(
        staff_messages=staff_messages,
        client_messages=client_messages,
        threads=threads,
        revision_rounds=revision_rounds,
    )
    revenue = economics.monthly_revenue
    per_effort = revenue / effort if revenue is not None and effort > 0 else None
    hours = economics.hours_per_month
    per_hour = revenue / hours if revenue is not None and hours else None
    change = revenue_change(economics, now=now)
    demanding = effort >= settings.high_effort_units

    reasons: list[str] = []
    if revenue is not None and revenue <= 0 and demanding:
        reasons.append(f"no revenue but {effort:.0f} effort units in 30 days")
    if change is not None and change <= -settings.falling_revenue_drop and demanding:
        reasons.append(
            f"revenue fell {-change:.0%} in ~90 days while effort stays high ({effort:.0f} units)"
        )
    if (
        settings.min_revenue_per_effort is not None
        and per_effort is not None
        and revenue is not None
        and revenue > 0
        and per_effort < settings.min_revenue_per_effort
    ):
        reasons.append(
            f"{per_effort:.0f} {economics.currency} per effort unit, "
            f"below {settings.min_revenue_per_effort:.0f}"
        )
    return EconomicsSummary(
        revenue=revenue,
        currency=economics.currency,
        effort_units=effort,
        revenue_per_effort=per_effort,
        hours_per_month=hours,
        revenue_per_hour=per_hour,
        revenue_change=change,
        flag=bool(reasons),
        reason="; ".join(reasons),
    )

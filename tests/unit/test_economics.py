"""Economics: effort against revenue, and the flags with their reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.analysis.economics import EconomicsSettings, effort_units, revenue_change, summarize
from service.analysis.types import ClientEconomics

NOW = datetime(2026, 6, 1, tzinfo=UTC)
BUSY = {"staff_messages": 20, "client_messages": 30, "threads": 4, "revision_rounds": 3}
QUIET = {"staff_messages": 2, "client_messages": 2, "threads": 1, "revision_rounds": 0}


def test_effort_units_weigh_revisions_and_threads() -> None:
    assert effort_units(**QUIET) == pytest.approx(2 + 1 + 2)
    assert effort_units(**BUSY) == pytest.approx(20 + 15 + 8 + 9)


def test_non_revenue_client_that_demands_much_is_flagged() -> None:
    s = summarize(ClientEconomics(monthly_revenue=0), now=NOW, **BUSY)
    assert s.flag and "no revenue" in s.reason
    quiet = summarize(ClientEconomics(monthly_revenue=0), now=NOW, **QUIET)
    assert not quiet.flag


def test_unknown_revenue_is_not_called_non_revenue() -> None:
    s = summarize(None, now=NOW, **BUSY)
    assert not s.flag and s.revenue is None and s.revenue_per_effort is None


def test_falling_revenue_with_high_effort_is_flagged() -> None:
    history = ((NOW - timedelta(days=120), 3000.0), (NOW - timedelta(days=90), 3000.0))
    eco = ClientEconomics(monthly_revenue=1500, revenue_history=history)
    assert revenue_change(eco, now=NOW) == pytest.approx(-0.5)
    s = summarize(eco, now=NOW, **BUSY)
    assert s.flag and "fell 50%" in s.reason
    assert not summarize(eco, now=NOW, **QUIET).flag


def test_recent_history_points_are_not_a_trend() -> None:
    recent = ((NOW - timedelta(days=10), 4000.0),)
    eco = ClientEconomics(monthly_revenue=1000, revenue_history=recent)
    assert revenue_change(eco, now=NOW) is None


def test_revenue_per_effort_and_per_hour() -> None:
    eco = ClientEconomics(monthly_revenue=2600, currency="USD", hours_per_month=13)
    s = summarize(eco, now=NOW, **BUSY)
    assert s.revenue_per_effort == pytest.approx(2600 / 52)
    assert s.revenue_per_hour == pytest.approx(200)
    assert s.currency == "USD" and not s.flag


def test_optional_floor_on_revenue_per_effort() -> None:
    eco = ClientEconomics(monthly_revenue=500)
    s = summarize(eco, now=NOW, settings=EconomicsSettings(min_revenue_per_effort=20), **BUSY)
    assert s.flag and "per effort unit" in s.reason

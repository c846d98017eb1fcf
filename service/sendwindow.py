"""When a message may go out: the send window, in the recipient's own time zone.

Pure: plain values in, an aware datetime out. A farewell written in Berlin at
18:00 for a client in New York may go at once (it is noon there); one due on a
Saturday waits for Monday's opening. Wall-clock times are resolved with
``zoneinfo`` each day, so a window stays "09:00 local" across DST changes: an
opening that falls in a spring-forward gap moves later by the gap's length,
and an ambiguous autumn time takes its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["SendWindow", "holiday_calendar", "window_from_schedule"]

# Longer than any run of closed days a sane configuration can produce
# (a one-day-a-week window over a cluster of holidays).
_MAX_DAYS_AHEAD = 800


@lru_cache(maxsize=32)
def holiday_calendar(spec: str) -> Any:
    """A python-holidays calendar for 'DE', 'DE-BY' or 'US-CA' (country, optional subdivision).

    Raises ValueError for unknown codes, so a typo fails at start, not at send time.
    """
    import holidays

    country, _, subdiv = spec.strip().partition("-")
    try:
        return holidays.country_holidays(country.upper(), subdiv=subdiv.upper() or None)
    except (NotImplementedError, KeyError) as exc:
        raise ValueError(f"unknown holiday calendar {spec!r}: {exc}") from None


def _local(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The instant a wall-clock time happens on `day` in `tz`.

    fold=0 gives the first of two ambiguous autumn times, and moves a time in
    a spring-forward gap later by the gap's length (02:30 becomes 03:30), as
    calendar programs do.
    """
    return datetime.combine(day, wall).replace(tzinfo=tz, fold=0).astimezone(UTC).astimezone(tz)


@dataclass(frozen=True)
class SendWindow:
    """Open on `days` (Monday is 0) from `start` to `end` local time, except holidays."""

    start: time
    end: time
    days: frozenset[int]
    holidays: str | None = None
    _calendar: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("the send window must end after it starts")
        if not self.days:
            raise ValueError("at least one send day is needed")
        if self.holidays:
            object.__setattr__(self, "_calendar", holiday_calendar(self.holidays))

    def is_send_day(self, day: date) -> bool:
        if day.weekday() not in self.days:
            return False
        return not (self._calendar is not None and day in self._calendar)

    def is_open(self, when: datetime, tz: ZoneInfo) -> bool:
        """Whether `when` (aware) falls inside the window in `tz`."""
        local = when.astimezone(tz)
        if not self.is_send_day(local.date()):
            return False
        return _local(local.date(), self.start, tz) <= local < _local(local.date(), self.end, tz)

    def next_opening(self, when: datetime, tz: ZoneInfo) -> datetime:
        """`when` itself if the window is open then, else the next opening; aware UTC."""
        if when.tzinfo is None:
            raise ValueError("next_opening needs an aware datetime")
        local = when.astimezone(tz)
        day = local.date()
        for offset in range(_MAX_DAYS_AHEAD):
            current = day + timedelta(days=offset)
            if not self.is_send_day(current):
                continue
            opens = _local(current, self.start, tz)
            closes = _local(current, self.end, tz)
            if offset == 0:
                if local < opens:
                    return opens.astimezone(UTC)
                if local < closes:
                    return when.astimezone(UTC)
                continue
            return opens.astimezone(UTC)
        raise ValueError("the send window never opens (check send_days and holidays)")

    def closes_at(self, when: datetime, tz: ZoneInfo) -> datetime | None:
        """End of the window `when` is in (aware UTC), or None when it is closed."""
        if not self.is_open(when, tz):
            return None
        return _local(when.astimezone(tz).date(), self.end, tz).astimezone(UTC)


def window_from_schedule(schedule: Any) -> SendWindow:
    """The window of a ``[schedule]`` table (``config.ScheduleSettings``)."""
    start, end = schedule.window
    return SendWindow(start=start, end=end, days=schedule.days, holidays=schedule.holidays)

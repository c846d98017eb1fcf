"""Send windows: local business hours per recipient time zone, DST, holidays."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.config import ScheduleSettings
from service.sendwindow import SendWindow, window_from_schedule

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
WEEKDAYS = frozenset(range(5))


def window(days: frozenset[int] = WEEKDAYS, holidays: str | None = None) -> SendWindow:
    return SendWindow(start=time(9), end=time(17), days=days, holidays=holidays)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_inside_the_window_sends_now() -> None:
    when = datetime(2026, 11, 25, 10, 30, tzinfo=BERLIN)  # Wednesday
    assert window().next_opening(when, BERLIN) == when.astimezone(UTC)
    assert window().is_open(when, BERLIN)


def test_before_opening_waits_for_nine_local() -> None:
    when = datetime(2026, 11, 25, 7, 0, tzinfo=BERLIN)
    assert window().next_opening(when, BERLIN) == datetime(2026, 11, 25, 9, 0, tzinfo=BERLIN)


def test_after_closing_waits_for_next_day() -> None:
    when = datetime(2026, 11, 25, 17, 0, tzinfo=BERLIN)  # the end is exclusive
    assert not window().is_open(when, BERLIN)
    assert window().next_opening(when, BERLIN) == datetime(2026, 11, 26, 9, tzinfo=BERLIN)


def test_friday_evening_waits_for_monday() -> None:
    when = datetime(2026, 11, 27, 18, 0, tzinfo=BERLIN)
    assert window().next_opening(when, BERLIN) == datetime(2026, 11, 30, 9, tzinfo=BERLIN)


def test_window_is_evaluated_in_the_recipients_zone() -> None:
    # 18:00 in Berlin is noon in New York: a New York client may get it now...
    when = datetime(2026, 11, 25, 18, 0, tzinfo=BERLIN)
    assert window().next_opening(when, NEW_YORK) == when.astimezone(UTC)
    # ...while a Tokyo client (02:00 Thursday there) waits for 09:00 Tokyo time.
    assert window().next_opening(when, TOKYO) == datetime(2026, 11, 26, 9, tzinfo=TOKYO)


def test_weekend_in_the_recipients_zone_not_the_senders() -> None:
    # Monday 08:00 in Berlin is still Sunday 23:00 in Los Angeles.
    la = ZoneInfo("America/Los_Angeles")
    when = datetime(2026, 11, 30, 8, 0, tzinfo=BERLIN)
    assert when.astimezone(la).weekday() == 6
    assert window().next_opening(when, la) == datetime(2026, 11, 30, 9, tzinfo=la)


def test_spring_forward_keeps_nine_local() -> None:
    # Europe switches to summer time on Sunday 2026-03-29; Monday 09:00 is 07:00 UTC.
    friday_evening = datetime(2026, 3, 27, 18, tzinfo=BERLIN)
    opening = window().next_opening(friday_evening, BERLIN)
    assert opening == utc(2026, 3, 30, 7, 0)
    # the Friday before was still winter time: 09:00 was 08:00 UTC
    assert window().next_opening(datetime(2026, 3, 27, 6, tzinfo=BERLIN), BERLIN) == utc(
        2026, 3, 27, 8, 0
    )


def test_fall_back_keeps_nine_local() -> None:
    # US switches back on Sunday 2026-11-01: Monday 09:00 EST is 14:00 UTC.
    saturday = datetime(2026, 10, 31, 12, tzinfo=NEW_YORK)
    assert window().next_opening(saturday, NEW_YORK) == utc(2026, 11, 2, 14, 0)


def test_window_through_a_dst_gap_and_overlap() -> None:
    night = SendWindow(start=time(2, 30), end=time(4, 0), days=frozenset(range(7)))
    # 02:30 does not exist in Berlin on 2026-03-29: the opening moves to 03:30 CEST
    opening = night.next_opening(datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN), BERLIN)
    assert opening == utc(2026, 3, 29, 1, 30)
    assert opening.astimezone(BERLIN).hour == 3
    # 02:30 happens twice on 2026-10-25: the first one counts
    opening = night.next_opening(datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN), BERLIN)
    assert opening == utc(2026, 10, 25, 0, 30)


def test_public_holidays_are_skipped_when_configured() -> None:
    christmas_eve = datetime(2026, 12, 24, 18, tzinfo=BERLIN)  # Thursday
    # Dec 25 and 26 are German holidays; 26th is Saturday anyway -> Monday 28th
    assert window(holidays="DE").next_opening(christmas_eve, BERLIN) == datetime(
        2026, 12, 28, 9, tzinfo=BERLIN
    )
    assert window().next_opening(christmas_eve, BERLIN) == datetime(
        2026, 12, 25, 9, tzinfo=BERLIN
    )


def test_subdivision_holidays() -> None:
    # Epiphany (Jan 6) is a holiday in Bavaria, not in Berlin
    morning = datetime(2026, 1, 6, 8, tzinfo=BERLIN)
    assert window(holidays="DE-BY").next_opening(morning, BERLIN).date().day == 7
    assert window(holidays="DE-BE").next_opening(morning, BERLIN).date().day == 6


def test_unknown_holiday_calendar_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown holiday calendar"):
        window(holidays="XX")


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError):
        window().next_opening(datetime(2026, 1, 1, 9), BERLIN)


def test_from_schedule_settings() -> None:
    sched = ScheduleSettings(send_window="08:30-12:00", send_days="mon,wed", holidays=None)
    w = window_from_schedule(sched)
    when = datetime(2026, 11, 24, 10, tzinfo=BERLIN)  # Tuesday
    assert w.next_opening(when, BERLIN) == datetime(2026, 11, 25, 8, 30, tzinfo=BERLIN)


@settings(max_examples=120, deadline=None)
@given(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
    st.sampled_from([BERLIN, NEW_YORK, TOKYO, ZoneInfo("Australia/Lord_Howe")]),
    st.frozensets(st.integers(0, 6), min_size=1),
)
def test_opening_is_the_first_open_instant(
    naive: datetime, tz: ZoneInfo, days: frozenset[int]
) -> None:
    w = window(days=days)
    when = naive.replace(tzinfo=UTC)
    opening = w.next_opening(when, tz)
    assert opening >= when
    assert w.is_open(opening, tz)
    local = opening.astimezone(tz)
    assert local.weekday() in days and time(9) <= local.time() < time(17)
    if opening > when:  # nothing open in between: probe every half hour before
        probe = when
        while probe < opening - timedelta(minutes=1):
            assert not w.is_open(probe, tz)
            probe += timedelta(minutes=30)

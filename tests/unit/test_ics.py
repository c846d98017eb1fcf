"""The conversation request's calendar invitation: RFC 5545 fields a calendar program needs."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from service.ics import Invitation, build_invitation

BERLIN = ZoneInfo("Europe/Berlin")


def invite(**changes: object) -> Invitation:
    values: dict[str, object] = dict(
        uid="conv-1@northwind.test",
        start=datetime(2024, 5, 14, 10, 0, tzinfo=BERLIN),
        minutes=30,
        timezone="Europe/Berlin",
        summary="Acme and Northwind: the future of our work together",
        description="A call, as proposed in my email.",
        organizer_email="olga@northwind.test",
        organizer_name="Olga",
        attendee_email="ana@acme.test",
        attendee_name="Ana Lopez",
        stamp=datetime(2024, 5, 2, 8, 0, tzinfo=UTC),
    )
    values.update(changes)
    return Invitation(**values)  # type: ignore[arg-type]


def parsed(data: bytes) -> Calendar:
    return Calendar.from_ical(data)


def test_request_with_organizer_attendee_and_zone() -> None:
    data = build_invitation(invite())
    assert b"\r\n" in data and data.startswith(b"BEGIN:VCALENDAR")
    cal = parsed(data)
    assert str(cal["method"]) == "REQUEST"
    [event] = cal.walk("VEVENT")
    assert str(event["organizer"]) == "mailto:olga@northwind.test"
    assert event["organizer"].params["CN"] == "Olga"
    attendee = event["attendee"]
    assert str(attendee) == "mailto:ana@acme.test"
    assert attendee.params["RSVP"] == "TRUE" and attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    start = event.decoded("dtstart")
    assert start == datetime(2024, 5, 14, 10, 0, tzinfo=BERLIN)
    assert event["dtstart"].params["TZID"] == "Europe/Berlin"
    assert (event.decoded("dtend") - start).total_seconds() == 30 * 60
    [tz] = cal.walk("VTIMEZONE")
    assert str(tz["tzid"]) == "Europe/Berlin"
    assert str(event["uid"]) == "conv-1@northwind.test"


def test_start_given_in_another_zone_is_written_in_the_clients_zone() -> None:
    start = datetime(2024, 5, 14, 8, 0, tzinfo=UTC)  # 10:00 in Berlin (CEST)
    cal = parsed(build_invitation(invite(start=start)))
    [event] = cal.walk("VEVENT")
    assert b"DTSTART;TZID=Europe/Berlin:20240514T100000" in cal.to_ical()
    assert event.decoded("dtstart").utcoffset().total_seconds() == 7200


def test_new_york_winter_offset() -> None:
    start = datetime(2025, 1, 7, 15, 0, tzinfo=ZoneInfo("America/New_York"))
    data = build_invitation(invite(start=start, timezone="America/New_York"))
    assert b"DTSTART;TZID=America/New_York:20250107T150000" in data
    assert b"TZOFFSETTO:-0500" in data


def test_names_with_commas_and_non_ascii_survive() -> None:
    data = build_invitation(invite(attendee_name="López, Ana", summary="Café ☕ talk"))
    [event] = parsed(data).walk("VEVENT")
    assert event["attendee"].params["CN"] == "López, Ana"
    assert str(event["summary"]) == "Café ☕ talk"


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError):
        build_invitation(invite(start=datetime(2024, 5, 14, 10, 0)))

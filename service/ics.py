"""Calendar invitations (iCalendar, RFC 5545/5546) for the conversation request (pure).

A conversation request proposes a few slots and carries one invitation (METHOD:REQUEST)
for the first of them, so the client can accept it in one click from any calendar
program; the other slots are offered in the text. Times are written in the client's own
zone with a matching VTIMEZONE (TZID-correct, so Outlook and Apple Calendar show the
same wall time the email names), never as floating times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vText

__all__ = ["PRODID", "Invitation", "build_invitation"]

PRODID = "-//saygoodbye//conversation request//EN"


@dataclass(frozen=True)
class Invitation:
    """One meeting proposal; `start` is aware, `timezone` the zone it is shown in."""

    uid: str
    start: datetime
    minutes: int
    timezone: str
    summary: str
    description: str
    organizer_email: str
    attendee_email: str
    organizer_name: str | None = None
    attendee_name: str | None = None
    stamp: datetime | None = None  # DTSTAMP; the time the invitation was made
    sequence: int = 0


def _address(email: str, name: str | None, **params: str) -> vCalAddress:
    value = vCalAddress(f"mailto:{email}")
    if name:
        value.params["CN"] = vText(name)
    for key, param in params.items():
        value.params[key] = param
    return value


def build_invitation(invite: Invitation) -> bytes:
    """The .ics bytes (CRLF, folded) of one METHOD:REQUEST event with its VTIMEZONE."""
    if invite.start.tzinfo is None:
        raise ValueError("an invitation needs an aware start time")
    if invite.minutes <= 0:
        raise ValueError("a meeting lasts at least one minute")
    zone = ZoneInfo(invite.timezone)
    start = invite.start.astimezone(zone)
    end = start + timedelta(minutes=invite.minutes)
    # Wall-clock arithmetic across a DST change: re-resolve the end in the zone.
    end = end.replace(tzinfo=None).replace(tzinfo=zone)

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "REQUEST")

    event = Event()
    event.add("uid", invite.uid)
    event.add("dtstamp", (invite.stamp or datetime.now(UTC)).astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("sequence", invite.sequence)
    event.add("summary", invite.summary)
    event.add("description", invite.description)
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    event["organizer"] = _address(invite.organizer_email, invite.organizer_name)
    event.add("attendee", _address(invite.attendee_email, invite.attendee_name,
                                   CUTYPE="INDIVIDUAL", ROLE="REQ-PARTICIPANT",
                                   PARTSTAT="NEEDS-ACTION", RSVP="TRUE"))
    cal.add_component(event)
    # Only the transitions around the meeting: a short VTIMEZONE that still covers it.
    first = date(start.year - 1, 1, 1)
    last = date(end.year + 2, 1, 1)
    cal.add_missing_timezones(first_date=first, last_date=last)
    return bytes(cal.to_ical())

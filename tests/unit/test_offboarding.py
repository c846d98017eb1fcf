"""Offboarding's pure parts: state edges, slots, names, projects, open threads, edits."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.sendwindow import SendWindow
from service.workflows.guardrails import check_draft, passed
from service.workflows.offboarding import (
    edited_text,
    first_name,
    propose_slots,
    text_to_html,
    top_projects,
    transition,
)
from service.workflows.pending import (
    ThreadMessage,
    asks_for_something,
    awaiting_answer,
    clean_subject,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = SendWindow(start=time(9), end=time(17), days=frozenset(range(5)))


# -- state machine ----------------------------------------------------------------


@pytest.mark.parametrize(("state", "new"), [
    ("proposed", "conversation_requested"), ("conversation_requested", "met"),
    ("met", "drafted"), ("drafted", "awaiting_approval"), ("awaiting_approval", "approved"),
    ("approved", "scheduled"), ("scheduled", "sent"), ("sent", "feedback_requested"),
    ("feedback_requested", "closed"), ("proposed", "drafted"), ("scheduled", "cancelled"),
])
def test_allowed_edges(state: str, new: str) -> None:
    assert transition(state, new) == new


@pytest.mark.parametrize(("state", "new"), [
    ("proposed", "scheduled"), ("awaiting_approval", "sent"), ("sent", "cancelled"),
    ("closed", "proposed"), ("cancelled", "awaiting_approval"), ("drafted", "scheduled"),
])
def test_forbidden_edges(state: str, new: str) -> None:
    with pytest.raises(ValueError):
        transition(state, new)


# -- slots -------------------------------------------------------------------------


def test_three_slots_on_following_business_days_inside_the_window() -> None:
    friday_afternoon = datetime(2024, 5, 10, 13, 0, tzinfo=UTC)
    slots = propose_slots(friday_afternoon, WEEKDAYS, BERLIN)
    assert len(slots) == 3
    days = [s.astimezone(BERLIN).date() for s in slots]
    assert len(set(days)) == 3 and all(d.weekday() < 5 for d in days)
    for s in slots:
        local = s.astimezone(BERLIN)
        assert time(9) <= local.time() and (local + timedelta(minutes=30)).time() <= time(17)
        assert s >= friday_afternoon + timedelta(hours=18)
    assert slots == sorted(slots)
    hours = {s.astimezone(BERLIN).hour for s in slots}
    assert len(hours) > 1  # morning and afternoon offered


def test_slots_respect_holidays() -> None:
    window = SendWindow(start=time(9), end=time(17), days=frozenset(range(5)), holidays="DE")
    # Wednesday before Ascension Day (Thursday 9 May 2024, a German holiday)
    slots = propose_slots(datetime(2024, 5, 8, 6, 0, tzinfo=UTC), window, BERLIN)
    assert datetime(2024, 5, 9).date() not in {s.astimezone(BERLIN).date() for s in slots}


def test_slots_prefer_hours_the_owner_also_works() -> None:
    slots = propose_slots(datetime(2024, 5, 6, 8, 0, tzinfo=UTC), WEEKDAYS, NEW_YORK,
                          owner_tz=BERLIN)
    for s in slots:
        assert WEEKDAYS.is_open(s, NEW_YORK)
        assert WEEKDAYS.is_open(s, BERLIN)  # 09:00-11:00 New York is 15:00-17:00 Berlin


def test_slots_across_the_spring_dst_change_keep_wall_time() -> None:
    slots = propose_slots(datetime(2024, 3, 28, 12, 0, tzinfo=UTC), WEEKDAYS, BERLIN)
    for s in slots:
        assert WEEKDAYS.is_open(s, BERLIN)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        propose_slots(datetime(2024, 5, 6, 8, 0), WEEKDAYS, BERLIN)


# -- personalisation -----------------------------------------------------------------


@pytest.mark.parametrize(("display", "expected"), [
    ("Ana López", "Ana"), ("López, Ana", "Ana"), ('"Ana López"', "Ana"), ("ana lopez", "Ana"),
    ("JOHN SMITH", "John"), ("Dr. Maria Weber", "Maria"), ("Acme Support", None),
    ("accounts@acme.test", None), ("", None), (None, None), ("Support Team", None),
    ("Billing", None), ("Jean-Luc Picard", "Jean-Luc"), ("Zoë Hart", "Zoë"),
])
def test_first_name(display: str | None, expected: str | None) -> None:
    assert first_name(display, client_name="Acme") == expected


def test_projects_are_the_busiest_clean_subjects() -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        ("a", "Website relaunch", t), ("a", "Re: Website relaunch", t + timedelta(days=1)),
        ("a", "RE: Website relaunch", t + timedelta(days=2)),
        ("b", "Fwd: Spring brochure", t), ("b", "Re: Spring brochure", t),
        ("c", "Invoice 2024-03 overdue", t), ("c", "Re: Invoice 2024-03 overdue", t),
        ("c", "Re: Invoice 2024-03 overdue", t), ("c", "Re: Invoice", t),
        ("d", "[Acme] Logo refresh", t), ("e", "Urgent: still broken", t),
        ("f", "website relaunch", t + timedelta(days=30)),
    ]
    assert top_projects(rows) == ["Website relaunch", "Spring brochure", "Logo refresh"]


def test_subjects_cleaned() -> None:
    assert clean_subject("Re: AW: Fwd: [Acme] Logo") == "Logo"
    assert clean_subject("RE[2]: Budget") == "Budget"
    assert clean_subject("Research results") == "Research results"


# -- open threads ------------------------------------------------------------------------


def msg(i: int, thread: str, role: str, days_ago: float, text: str, *, auto: bool = False
        ) -> ThreadMessage:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    return ThreadMessage(i, thread, role, now - timedelta(days=days_ago), f"Subject {thread}",
                         text, auto)


def test_threads_awaiting_our_answer() -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    messages = [
        msg(1, "t1", "client", 5, "Could you send the final logo files?"),
        msg(2, "t2", "client", 6, "Can we move the launch?"),
        msg(3, "t2", "staff", 5, "Yes, Tuesday works."),
        msg(4, "t3", "client", 3, "Thanks, looks great!"),
        msg(5, "t4", "client", 200, "Any update on the invoice?"),
        msg(6, "t5", "staff", 4, "Here are the files."),
        msg(7, "t5", "client", 2, "When will the rest be ready"),
        msg(8, "t5", "client", 1, "I am out of the office.", auto=True),
        msg(9, "t6", "client", 2, "Please review the draft."),
    ]
    found = awaiting_answer(messages, now=now, exclude_threads={"t6"})
    assert [t.thread_key for t in found] == ["t1", "t5"]
    assert found[0].text.startswith("Answer to the message \u201cSubject t1\u201d")


@pytest.mark.parametrize(("text", "asks"), [
    ("Could you send the files?", True), ("Please review by Friday.", True),
    ("We still haven't received the invoice", True), ("Thanks!", False),
    ("Great work, thank you.", False), ("Sounds good", False), ("", False),
])
def test_asks_for_something(text: str, asks: bool) -> None:
    assert asks_for_something(text) is asks


# -- owner edits --------------------------------------------------------------------------


def test_edit_subject_line_and_signature_restored() -> None:
    subject, text = edited_text("", "Subject: Thank you\nHi Ana,\n\nThanks.\n\nWarm regards,",
                                signature="Olga Berg\nNorthwind Studio")
    assert subject == "Thank you"
    assert text.endswith("Warm regards,\nOlga Berg\nNorthwind Studio\n")
    _, kept = edited_text("Hi Ana,", "Thanks.\n\nBest,\nOlga Berg", signature="Olga Berg")
    assert kept == "Hi Ana,\nThanks.\n\nBest,\nOlga Berg\n"


def test_edit_html_escapes_and_marks_content() -> None:
    html = text_to_html("Hi <Ana>,\n\nLine one\nline two")
    assert "&lt;Ana&gt;" in html and "Line one<br>line two" in html
    assert "<!--content-->" in html and "<!--/content-->" in html


def test_rendered_templates_pass_the_guardrails_with_pending_plans() -> None:
    from service.templating import render
    from service.workflows.guardrails import GuardrailContext

    items = ["Hand over the CMS admin access",
             "Answer to the message \u201cLogo files\u201d of 5 March 2030"]
    email = render("farewell", "warm", {
        "contact_first_name": "Ana", "client_name": "Acme", "owner_name": "Olga",
        "today": datetime(2030, 3, 6).date(), "worked_since": datetime(2028, 1, 5).date(),
        "projects": ["Website relaunch"], "agreed": "we finish the brochure in March",
        "pending": [{"text": items[0], "plan": None},
                    {"text": items[1], "plan": "you will have our answer before we close"}],
    })
    results = check_draft(email.text, kind="farewell", context=GuardrailContext(
        client_name="Acme", contact_name="Ana", owner_name="Olga", pending_items=tuple(items)))
    assert passed(results), [r for r in results if not r.passed]

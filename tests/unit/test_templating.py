"""Templates render every variant, personalised, and every client-facing one passes the
guardrails it will be held to."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from service.templating import (
    CLIENT_FACING,
    KINDS,
    RenderedEmail,
    TemplateError,
    leftover_placeholders,
    render,
    slot,
    variants,
    worked_together,
)
from service.workflows.guardrails import (
    GuardrailContext,
    GuardrailResult,
    check_draft,
    failures,
)

TODAY = date(2025, 5, 12)

CLIENT = {
    "contact_first_name": "Anna",
    "client_name": "Northwind & Co",
    "owner_name": "Maria Keller",
    "agency_name": "Studio North",
    "today": TODAY,
    "worked_since": date(2023, 3, 6),
    "projects": ["the spring campaign", "the new booking site", "monthly newsletters"],
    "pending": [
        {"text": "Booking site: payment page fixes",
         "plan": "we will deliver the payment page fixes by Friday 23 May."},
        {"text": "Newsletter templates",
         "plan": "handed over to your marketing team with a short guide on 26 May."},
    ],
    "last_day": date(2025, 6, 30),
    "met_on": date(2025, 5, 6),
    "reason": "we are focusing the studio on brand strategy work",
    "agreed": "we stay available for questions about the booking site until the end of July.",
    "referral": "Clara Weiss at Meridian Partners",
    "slots": [datetime(2025, 5, 20, 8, 0, tzinfo=UTC), datetime(2025, 5, 22, 13, 30, tzinfo=UTC)],
    "timezone": "America/New_York",
    "meeting_minutes": 30,
    "feedback_questions": [],
}

GUARD_CONTEXT = GuardrailContext(
    client_name="Northwind & Co", contact_name="Anna Fischer", owner_name="Maria Keller",
    other_clients=("Greenleaf", "Harbor Logistics"),
    pending_items=("Booking site: payment page fixes", "Newsletter templates"),
)

CASES = [(kind, v) for kind in CLIENT_FACING for v in variants(kind)]


def test_every_client_facing_kind_has_several_variants() -> None:
    for kind in CLIENT_FACING:
        assert len(variants(kind)) >= 2, kind
    assert variants("approval_request") == ["default"]
    assert variants("alert") == ["default"]


@pytest.mark.parametrize(("kind", "variant"), CASES)
@pytest.mark.parametrize("minimal", [False, True], ids=["full", "minimal"])
def test_rendered_variants_pass_the_guardrails(kind: str, variant: str, minimal: bool) -> None:
    context = dict(CLIENT)
    guard = GUARD_CONTEXT
    if minimal:  # no optional facts, no pending work: still a complete, civil email
        for key in ("agency_name", "reason", "agreed", "met_on", "last_day", "worked_since",
                    "referral", "pending", "projects"):
            context.pop(key)
        guard = GuardrailContext(client_name="Northwind & Co", contact_name="Anna Fischer",
                                 owner_name="Maria Keller")
    email = render(kind, variant, context)
    assert email.subject and "\n" not in email.subject
    assert leftover_placeholders(email) == []
    results = check_draft(email.text, kind=kind, context=guard)
    assert not failures(results), [(r.rule, r.detail, r.sentence) for r in failures(results)]
    # the HTML says the same thing: its visible text passes too
    results = check_draft(_visible(email.html), kind=kind, context=guard)
    assert not failures(results), [(r.rule, r.detail, r.sentence) for r in failures(results)]


@pytest.mark.parametrize(("kind", "variant"), CASES)
def test_personalised_from_context(kind: str, variant: str) -> None:
    email = render(kind, variant, CLIENT)
    assert "Anna" in email.text and "Maria Keller" in email.text
    assert "Northwind &amp; Co" in email.html or "Anna" in email.html  # escaped, not raw
    assert "Northwind & Co" not in email.html
    if kind == "farewell":
        assert "payment page fixes" in email.text and "Newsletter templates" in email.text
        assert "30 June 2025" in email.text
    if kind == "conversation_request":
        # 08:00 UTC on 20 May is 04:00 in New York (EDT)
        assert "Tuesday 20 May, 04:00–04:30 (America/New_York)" in email.text
    if kind == "feedback_request":
        assert re.search(r"(?m)^(1\.|-) .+\?$", email.text)


def _visible(html: str) -> str:
    text = re.sub(r"(?s)<(head|style)\b.*?</\1>", " ", html)
    text = re.sub(r"<br\s*/?>|</p>|</tr>|</li>|</h3>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    for entity, char in (("&amp;", "&"), ("&#39;", "'"), ("&#34;", '"'), ("&ldquo;", '"'),
                         ("&rdquo;", '"'), ("&#8226;", "-"), ("&middot;", "·")):
        text = text.replace(entity, char)
    return "\n".join(line.strip() for line in text.splitlines())


ALL = [(kind, v) for kind in KINDS for v in variants(kind)]


def _owner_context() -> dict:
    draft = render("farewell", "warm", CLIENT)
    return {
        **CLIENT,
        "draft_kind": "farewell",
        "draft_version": 2,
        "draft": draft,
        "guardrails": [GuardrailResult("gratitude", True, "thanks found"),
                       GuardrailResult("no_blame", False, "brings up a past shortcoming",
                                       "Given how the last <three> rounds went")],
        "pending": [{"id": 7, "text": "Booking site: payment page fixes"}],
        "send_at": datetime(2025, 7, 1, 13, 0, tzinfo=UTC),
        "expires_at": None,
        "state": "unhealthy",
        "score": 31.4,
        "trend": -18.0,
        "reasons": [{"kind": "blame", "weight": 1.7, "evidence": [
            {"date": date(2025, 4, 2), "subject": "Re: booking site", "sender": "anna@nw.example",
             "quote": "This is the third time <b>we</b> asked."}]}],
        "economics": {"monthly_revenue": 1200.0, "currency": "EUR",
                      "lines": ["Effort: 84 messages and 5 revision rounds in 30 days"]},
    }


@pytest.mark.parametrize(("kind", "variant"), ALL)
def test_html_is_safe_for_email_clients(kind: str, variant: str) -> None:
    email = render(kind, variant, _owner_context())
    html = email.html.lower()
    assert "<script" not in html and "javascript:" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)  # nothing remote
    assert "<link" not in html and "@import" not in html and "<style" not in html
    assert 'role="presentation"' in html  # table layout
    assert "<!--content-->" in email.html


def test_approval_request_shows_draft_checks_pending_and_commands() -> None:
    email = render("approval_request", "default", _owner_context())
    for needle in ("Thank you for taking the time", "[FAIL] no blame", "#7 Booking site",
                   "APPROVE ANYWAY", "REJECT", "CANCEL", "EDIT", "Tuesday 1 July, 09:00"):
        assert needle in email.text, needle
    assert "Thank you for taking the time" in email.html  # the HTML draft, inline
    assert "&lt;three&gt;" in email.html  # quoted sentence escaped
    assert "http" not in email.text.lower()  # no approve links


def test_alert_shows_score_trend_evidence_economics_and_replies() -> None:
    email = render("alert", "default", _owner_context())
    assert email.subject == "Northwind & Co: relationship unhealthy (score 31, -18 in 30 days)"
    for needle in ("score 31 of 100", "-18", "Wednesday 2 April 2025 | Re: booking site | "
                   "anna@nw.example", "third time", "1,200 EUR", "84 messages", "SNOOZE 30d",
                   "OK ", "OFFBOARD", "Renegotiate"):
        assert needle in email.text, needle
    assert "&lt;b&gt;we&lt;/b&gt;" in email.html


def test_missing_context_value_is_named() -> None:
    context = dict(CLIENT)
    del context["owner_name"]
    with pytest.raises(TemplateError, match="owner_name"):
        render("farewell", "warm", context)


def test_unknown_variant_lists_the_known_ones() -> None:
    with pytest.raises(TemplateError, match="formal"):
        render("farewell", "nope", CLIENT)


def test_override_folder_comes_first_and_can_add_variants(tmp_path: Path) -> None:
    (tmp_path / "farewell").mkdir()
    (tmp_path / "farewell" / "warm.subject.j2").write_text("Ours, {{ contact_first_name }}")
    for part in ("subject", "txt", "html"):
        (tmp_path / "farewell" / f"mine.{part}.j2").write_text(
            "[CLIENT NAME] {{ client_name }}" if part != "html" else "<p>{{ client_name }}</p>")
    email = render("farewell", "warm", CLIENT, templates_dir=tmp_path)
    assert email.subject == "Ours, Anna"
    assert email.text == render("farewell", "warm", CLIENT).text  # the rest falls through
    assert "mine" in variants("farewell", templates_dir=tmp_path)
    mine = render("farewell", "mine", CLIENT, templates_dir=tmp_path)
    assert mine.html == "<p>Northwind &amp; Co</p>"
    assert set(leftover_placeholders(mine)) == {"[CLIENT NAME]"}


def test_worked_together_phrases() -> None:
    assert worked_together(date(2024, 3, 1), date(2025, 5, 12)) == "since March 2024"
    assert worked_together(date(2022, 9, 1), date(2025, 5, 12)) == "over the past two years"
    assert worked_together(date(2021, 1, 1), date(2025, 5, 12)) == "over the past four years"
    assert worked_together(None, date(2025, 5, 12)) == "over the past months"


def test_slot_is_in_the_clients_zone_across_dst() -> None:
    winter = datetime(2025, 1, 14, 9, 0, tzinfo=UTC)
    summer = datetime(2025, 7, 15, 9, 0, tzinfo=UTC)
    assert slot(winter, "Europe/Berlin", 45) == "Tuesday 14 January, 10:00–10:45 (Europe/Berlin)"
    assert slot(summer, "Europe/Berlin") == "Tuesday 15 July, 11:00 (Europe/Berlin)"
    with pytest.raises(TemplateError):
        slot(datetime(2025, 1, 14, 9, 0), "Europe/Berlin")


def test_html_body_extracts_the_content_block() -> None:
    email = RenderedEmail("s", "t", "<html><!--content--><p>x</p><!--/content--></html>")
    assert email.html_body == "<p>x</p>"

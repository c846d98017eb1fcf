"""The digest model from plain facts: order, changes with quotes, decisions, wording."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from service.digest_content import (
    AlertInput,
    ClientInput,
    DigestInput,
    DraftInput,
    FeedbackInput,
    OffboardingInput,
    OutgoingInput,
    ProblemInput,
    build_digest,
    iso_week,
    one_line,
)

NOW = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # Monday 08:00 in Berlin
OWNER = "olga@northwind.test"


def signal(kind: str, weight: float, *quotes: tuple[str, datetime]) -> dict:
    return {
        "kind": kind,
        "weight": weight,
        "evidence": [{"message_id": f"<{i}@x>", "date": d.isoformat(), "quote": q}
                     for i, (q, d) in enumerate(quotes)],
    }


def client(name: str, score: float | None, state: str, **kw: object) -> ClientInput:
    return ClientInput(name=name, score=score, state=state, trend=kw.pop("trend", 0.0),
                       **kw)  # type: ignore[arg-type]


def digest(**kw: object) -> DigestInput:
    return DigestInput(owner=OWNER, now=NOW, timezone="Europe/Berlin", **kw)  # type: ignore[arg-type]


def test_iso_week_key_handles_year_boundaries() -> None:
    assert iso_week(date(2026, 3, 9)) == "2026-W11"
    assert iso_week(date(2027, 1, 1)) == "2026-W53"
    assert iso_week(date(2024, 12, 30)) == "2025-W01"


def test_clients_worst_first_by_state_then_score() -> None:
    model = build_digest(digest(clients=(
        client("Calm", 95, "healthy"),
        client("Shaky", 68, "watch"),
        client("Bad", 30, "unhealthy"),
        client("Risky", 50, "at_risk"),
        client("Also calm", 80, "healthy"),
        client("New", None, "healthy"),
    )))
    assert [c.name for c in model.clients] == ["Bad", "Risky", "Shaky", "Also calm", "Calm", "New"]
    assert model.clients[0].state_label == "Unhealthy"
    assert model.clients[-1].score_text == "–"


def test_changes_quote_one_line_per_signal_preferring_this_weeks_evidence() -> None:
    old = NOW - timedelta(days=40)
    fresh = NOW - timedelta(days=2)
    model = build_digest(digest(clients=(
        client("Acme", 45, "at_risk", signals=(
            signal("price_pressure", 12.0, ("Too expensive.", old)),
            signal("blame", 20.0, ("You broke it again.", old),
                   ("This is the third time I have asked.\nSecond line.", fresh)),
            signal("gratitude", -3.0, ("Thanks for the quick fix", fresh)),
        )),
    )))
    changes = model.clients[0].changes
    assert [c.kind for c in changes] == ["blame", "gratitude", "price_pressure"]
    blame = changes[0]
    assert blame.new and blame.quote == "This is the third time I have asked."
    assert blame.when == "Sat 7 Mar"
    assert blame.points_text == "-20 points"
    assert changes[1].points_text == "+3 points"
    assert not changes[2].new and changes[2].quote == "Too expensive."


def test_week_movement_in_words() -> None:
    model = build_digest(digest(clients=(
        client("Down", 50, "at_risk", state_week_ago="watch"),
        client("Up", 80, "healthy", state_week_ago="watch"),
        client("Slide", 72, "watch", score_week_ago=80.0),
        client("Flat", 90, "healthy", history=((date(2026, 3, 2), 90.4), (date(2026, 3, 9), 90))),
        client("Unknown", 90, "healthy"),
    )))
    text = {c.name: (c.week_text, c.worse, c.better) for c in model.clients}
    assert text["Down"] == ("Worsened from Watch to At risk", True, False)
    assert text["Up"] == ("Improved from Watch to Healthy", False, True)
    assert text["Slide"] == ("Watch, down 8 points this week", True, False)
    assert text["Flat"][0] == "Steady at Healthy"
    assert text["Unknown"][0] == "No earlier score to compare"


def test_economics_line_with_flag_reason() -> None:
    model = build_digest(digest(clients=(
        client("Acme", 60, "watch", economics={
            "revenue": 500.0, "currency": "EUR", "effort_units": 31.6,
            "revenue_per_effort": 15.8, "revenue_change": -0.3, "flag": True,
            "reason": "low revenue for the effort"}),
        client("Unknown money", 90, "healthy"),
    )))
    acme = model.clients[0]
    assert acme.economics_flag
    assert acme.economics_text == (
        "500 EUR/month; 32 effort units in 30 days; 16 EUR per unit; revenue -30% over 90 days"
        " — low revenue for the effort"
    )
    assert model.clients[1].economics_text is None


def test_decisions_come_first_and_in_order_of_urgency() -> None:
    sent = NOW - timedelta(days=3)
    model = build_digest(digest(
        clients=(
            client("Acme", 35, "unhealthy"),
            client("Globex", 50, "at_risk"),
            client("Initech", 52, "at_risk", acknowledged_at=sent),
            client("Umbrella", 50, "at_risk", snoozed_until=NOW + timedelta(days=3)),
            client("Hooli", 48, "at_risk"),
            client("Recovered", 90, "healthy"),
        ),
        alerts=(AlertInput("Acme", sent, "Acme looks unhealthy"),
                AlertInput("Recovered", sent, "Recovered looks at risk")),
        offboardings=(
            OffboardingInput("Hooli", "conversation_requested", NOW - timedelta(days=10)),
        ),
        drafts=(DraftInput("Vandelay", "farewell", 2, "Thank you", sent,
                           request_subject="Approve: farewell to Vandelay (v2)",
                           request_sent_at=sent),),
        problems=(ProblemInput("farewell", "Goodbye", "uncertain", ("ana@acme.test",)),),
    ))
    texts = [d.text for d in model.decisions]
    assert texts[0] == '"Goodbye" to ana@acme.test may not have arrived'
    assert texts[1] == "Approve the farewell to Vandelay (version 2, waiting since Fri 6 Mar)"
    assert 'reply to the email "Approve: farewell to Vandelay (v2)" with APPROVE' in (
        model.decisions[1].how)
    assert texts[2] == "Acme is Unhealthy and the alert is unanswered"
    assert texts[3] == "Globex is At risk (score 50)"
    assert texts[4].startswith("Did you meet Hooli?")
    assert len(texts) == 5  # acknowledged, snoozed, recovered and offboarding clients wait
    assert model.subject == "Your clients this week (2026-W11): 5 decisions for you, " \
        "5 clients at risk or worse"


def test_alert_actions_are_reported() -> None:
    sent = NOW - timedelta(days=4)
    model = build_digest(digest(
        clients=(client("A", 40, "at_risk"), client("B", 40, "at_risk",
                 snoozed_until=NOW + timedelta(days=7)), client("C", 40, "at_risk")),
        alerts=(AlertInput("A", sent, "A at risk", response="OFFBOARD",
                           response_at=sent + timedelta(hours=2)),
                AlertInput("B", sent, "B at risk"),
                AlertInput("C", sent, "C at risk")),
    ))
    actions = {a.client: (a.action, a.answered) for a in model.alerts}
    assert actions["A"] == ("You replied OFFBOARD on Thu 5 Mar", True)
    assert actions["B"] == ("Snoozed until Mon 16 Mar", True)
    assert actions["C"] == ("No answer yet", False)


def test_drafts_offboardings_schedule_farewells_feedback() -> None:
    model = build_digest(digest(
        clients=(client("Acme", 40, "at_risk"),),
        offboardings=(
            OffboardingInput("Acme", "scheduled", NOW - timedelta(days=20),
                             held_reason="Ana wrote again on Friday:\n> Can we talk?"),
            OffboardingInput("Old", "closed", NOW - timedelta(days=90)),
        ),
        drafts=(DraftInput("Acme", "feedback_request", 1, "Your view", NOW - timedelta(days=1),
                           failed_rules=("gratitude",)),),
        scheduled=(OutgoingInput("farewell", "Acme", ("ana@acme.test",), "Thank you",
                                 not_before=NOW + timedelta(days=1, hours=2)),),
        farewells=(OutgoingInput("farewell", "Acme", ("ana@acme.test",), "Thank you",
                                 sent_at=NOW - timedelta(days=1)),),
        feedback=(FeedbackInput("Acme", NOW - timedelta(days=2),
                                "Honestly, the work was good.\nTiming was hard."),),
        reply_address="team@northwind.test",
    ))
    assert [o.client for o in model.offboardings] == ["Acme"]
    assert model.offboardings[0].quote == "Ana wrote again on Friday:"
    assert "gratitude" in model.decisions[1].how and "EDIT" in model.decisions[1].how
    assert model.drafts[0].kind_label == "feedback request"
    assert model.approve_help and "APPROVE on the first line" in model.approve_help
    assert "team@northwind.test" in model.approve_help
    assert model.scheduled[0].when == "Tue 10 Mar 10:00"
    assert model.scheduled[0].text == 'Farewell: "Thank you" to ana@acme.test'
    assert model.farewells[0].when == "Sun 8 Mar 08:00"
    assert model.feedback[0].quote == "Honestly, the work was good."
    assert model.clients[0].note == "Offboarding: farewell scheduled; No mail this week"


def test_quiet_week_says_so() -> None:
    model = build_digest(digest(clients=(client("Calm", 96, "healthy", messages_this_week=4),)))
    assert model.decisions == ()
    assert model.subject.endswith("all calm")
    assert model.summary == "1 client."
    assert model.greeting == "Hello Olga,"
    assert model.period_text == "2 Mar – 9 Mar 2026"


def test_one_line_shortens_at_a_word_boundary() -> None:
    text = "word " * 60
    line = one_line(text, 40)
    assert line is not None and line.endswith("…") and len(line) <= 40
    assert not line[:-1].endswith(" ")
    assert one_line("\n\n> quoted first\nsecond") == "quoted first"
    assert one_line("   ") is None

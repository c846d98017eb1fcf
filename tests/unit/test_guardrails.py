"""Farewell guardrails: hand-written civil drafts pass, each uncivil one fails on its rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from service.workflows.guardrails import (
    KINDS,
    GuardrailContext,
    check_draft,
    failures,
    find_placeholders,
    passed,
)

DRAFTS = Path(__file__).parents[1] / "data" / "drafts"
MANIFEST = tomllib.loads((DRAFTS / "expected.toml").read_text(encoding="utf-8"))


def _context(name: str | None) -> GuardrailContext:
    data = MANIFEST["contexts"].get(name or "", {})
    return GuardrailContext(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in data.items()})


@pytest.mark.parametrize("case", MANIFEST["case"], ids=lambda c: c["file"])
def test_hand_written_drafts(case: dict) -> None:
    text = (DRAFTS / case["file"]).read_text(encoding="utf-8")
    results = check_draft(text, kind=case.get("kind", "farewell"),
                          context=_context(case.get("context")))
    failed = {r.rule for r in failures(results)}
    assert failed == set(case["fails"]), [(r.rule, r.detail, r.sentence)
                                          for r in failures(results)]
    assert passed(results) is (not case["fails"])


def test_corpus_size_and_balance() -> None:
    civil = [c for c in MANIFEST["case"] if not c["fails"]]
    uncivil = [c for c in MANIFEST["case"] if c["fails"]]
    assert len(civil) >= 12 and len(uncivil) >= 12
    assert {c.get("kind", "farewell") for c in civil} == set(KINDS)


BASE = """Hi Anna,

Thank you for meeting with me on Tuesday. {middle}

It has been a privilege to work with you. We would be grateful for your feedback on what we
could have done better.

Please don't hesitate to reach out if you ever need anything.

Warm regards,
Maria
"""


@pytest.mark.parametrize("sentence", [
    "No problem at all about the timing.",
    "We are sorry to see this chapter end.",
    "We have decided to focus on a narrower set of services.",
    "This is not your fault, and there is no blame on either side.",
    "Thank you once again for your patience while we moved on to the new platform.",
    "It was a hard decision for us, and we made it for business reasons.",
    "As agreed on our call, the contract ends on 30 June.",
    "We will refund the unused part of the retainer with the final invoice.",
    "We are no longer the right fit for the day-to-day work you need.",
    "Our last day on the account will be 30 June.",
])
def test_civil_sentences_pass(sentence: str) -> None:
    results = check_draft(BASE.format(middle=sentence), kind="farewell")
    assert passed(results), [(r.rule, r.detail, r.sentence) for r in failures(results)]


@pytest.mark.parametrize(("sentence", "rule"), [
    ("Given how the last three rounds went, we think it is best to stop.", "no_blame"),
    ("As you know, the project was difficult.", "no_blame"),
    ("Your team's delays made planning impossible.", "no_blame"),
    ("Despite the constant changes, we delivered everything.", "no_blame"),
    ("We could no longer justify the time it took.", "no_blame"),
    ("You never paid on time.", "no_blame"),
    ("It was your fault that the launch slipped.", "no_blame"),
    ("Working with moving goalposts was hard for everyone.", "no_blame"),  # " ?" optional
    ("Thanks for nothing on the launch.", "civil"),
    ('We enjoyed your "feedback" as always.', "civil"),
    ("Needless to say, we will not miss the weekend calls.", "civil"),
    ("This decision is final and effective immediately.", "civil"),
])
def test_uncivil_sentence_fails_on_its_rule(sentence: str, rule: str) -> None:
    results = check_draft(BASE.format(middle=sentence), kind="farewell")
    bad = failures(results)
    assert [r.rule for r in bad] == [rule]
    assert bad[0].sentence and sentence.split()[1].strip(",") in bad[0].sentence
    assert bad[0].detail  # plain words for the owner


def test_quoted_history_is_not_our_text() -> None:
    text = BASE.format(middle="") + "\n> You never paid on time and your team is useless.\n"
    assert passed(check_draft(text, kind="farewell"))


def test_sarcastic_thanks_does_not_count_as_gratitude() -> None:
    text = "Hi Anna,\n\nThanks for nothing. Tell us how we could improve. Stay in touch.\n\nMaria\n"
    failed = {r.rule for r in failures(check_draft(text, kind="farewell"))}
    assert {"civil", "gratitude"} <= failed


def test_negated_cues_do_not_count() -> None:
    text = ("Hi Anna,\n\nThank you for the years together. We do not need your feedback.\n"
            "We would not be happy to help in the future.\n\nMaria\n")
    failed = {r.rule for r in failures(check_draft(text, kind="farewell"))}
    assert {"feedback_invitation", "door_open"} <= failed


def test_pending_items_loosely_matched_with_a_plan() -> None:
    ctx = GuardrailContext(pending_items=("Homepage redesign: mobile navigation fixes",
                                          "Send final invoice"))
    middle = ("We will finish the mobile navigation on the homepage by Friday, and the "
              "invoice follows next week.")
    results = check_draft(BASE.format(middle=middle), kind="farewell", context=ctx)
    pending = [r for r in results if r.rule == "pending_items"]
    assert len(pending) == 2 and all(r.passed for r in pending)


def test_pending_item_named_without_a_plan_fails() -> None:
    ctx = GuardrailContext(pending_items=("Analytics dashboard",))
    middle = "The analytics dashboard was a fun piece of work."
    bad = failures(check_draft(BASE.format(middle=middle), kind="farewell", context=ctx))
    assert [r.rule for r in bad] == ["pending_items"]
    assert "how" in bad[0].detail and "analytics dashboard" in bad[0].sentence


def test_keywordless_item_covered_by_a_handover_sentence() -> None:
    ctx = GuardrailContext(pending_items=("Re:",))
    middle = "We will hand over all remaining open items to your team before we close."
    assert passed(check_draft(BASE.format(middle=middle), kind="farewell", context=ctx))
    bad = failures(check_draft(BASE.format(middle=""), kind="farewell", context=ctx))
    assert [r.rule for r in bad] == ["pending_items"]


def test_tone_floor_is_configurable() -> None:
    text = BASE.format(middle="")
    assert passed(check_draft(text, kind="farewell"))
    bad = failures(check_draft(text, kind="farewell", context=GuardrailContext(tone_floor=0.9)))
    assert [r.rule for r in bad] == ["tone"]


def test_owner_signature_and_client_names() -> None:
    text = BASE.format(middle="")
    ok = GuardrailContext(client_name="Northwind", contact_name="Anna Berger",
                          owner_name="Maria Keller", other_clients=("Greenleaf",))
    assert passed(check_draft(text, kind="farewell", context=ok))
    other_owner = GuardrailContext(owner_name="Ben Ortiz")
    assert [r.rule for r in failures(check_draft(text, kind="farewell",
                                                 context=other_owner))] == ["signature"]
    leaked = BASE.format(middle="We loved the Greenleaf launch too.")
    bad = failures(check_draft(leaked, kind="farewell", context=ok))
    assert [r.rule for r in bad] == ["client_name"] and "Greenleaf" in bad[0].sentence
    # another client's name as an ordinary lower-case word is not a leak
    assert passed(check_draft(BASE.format(middle="The greenleaf motif stays yours."),
                              kind="farewell", context=ok))


def test_owner_signature_block() -> None:
    ctx = GuardrailContext(owner_signature="Maria K.\nStudio North\n+49 30 1234")
    text = BASE.format(middle="").replace("Maria\n", "Maria K.\nStudio North\n")
    assert passed(check_draft(text, kind="farewell", context=ctx))


def test_conversation_request_must_not_announce_the_verdict() -> None:
    text = ("Hi Anna,\n\nCould we have a call next week about the future of our work? "
            "Tuesday 10:00 works for me.\n\nBest,\nMaria\n")
    assert passed(check_draft(text, kind="conversation_request"))
    for verdict in ("We want to part ways.", "We will terminate the retainer.",
                    "We have decided to end our partnership."):
        bad = failures(check_draft(text.replace("Best,", verdict + "\n\nBest,"),
                                   kind="conversation_request"))
        assert [r.rule for r in bad] == ["no_verdict"], verdict
    # "this is not a goodbye" is negated, not a verdict
    assert passed(check_draft(text.replace("Best,", "This is not a goodbye.\n\nBest,"),
                              kind="conversation_request"))


def test_find_placeholders() -> None:
    text = ("Dear [CLIENT NAME], on {{ date }} we {% if x %}met{% endif %}. <NAME> TODO "
            "Lorem ipsum XXX [insert project] $owner {first_name}. "
            "A todo list, the [1] footnote, <anna@example.com>, 100% sure, $5,000.")
    found = find_placeholders(text)
    assert found == ["[CLIENT NAME]", "{{ date }}", "{% if x %}", "{% endif %}", "<NAME>",
                     "TODO", "Lorem ipsum", "XXX", "[insert project]", "$owner",
                     "{first_name}"]


def test_results_cover_every_rule_of_the_kind_in_order() -> None:
    results = check_draft(BASE.format(middle=""), kind="feedback_request")
    assert [r.rule for r in results] == ["placeholders", "no_blame", "civil", "gratitude",
                                         "feedback_invitation", "door_open", "tone",
                                         "signature"]


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown draft kind"):
        check_draft("Hello", kind="digest")

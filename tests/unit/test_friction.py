"""Friction detectors: each fires on its cue, not when negated, quoted or sent by staff."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.analysis.friction import KINDS, RulesError, detect, friction_score, load_rules
from service.analysis.message import analyse_message
from service.analysis.types import Signal


def kinds(text: str, **kw) -> dict[str, Signal]:
    return {s.kind: s for s in detect(text, **kw)}


def friction_kinds(text: str, **kw) -> set[str]:
    return {k for k, s in kinds(text, **kw).items() if s.weight > 0}


# kind, positive, negated
CASES = [
    ("urgency", "We need the banner fixed ASAP.", "No rush on the banner, it is not urgent."),
    ("urgency", "Please hurry, this is urgent.", "There is no need to hurry."),
    ("revision_loop", "This is the third time I have asked for the logo change.",
     "Is this the first time you see the logo?"),
    ("revision_loop", "As I said before, the footer must be blue.",
     "The footer looks right now."),
    ("price_pressure", "Your rates are too expensive, we want a discount.",
     "No discount needed, the quote is fine."),
    ("blame", "This delay is your fault.", "I'm not blaming you for the delay."),
    ("escalation", "I will escalate this to our legal team.",
     "No need to escalate anything, all good."),
    ("dismissal", "Spare me the excuses and just fix it.", "Let me explain the approach."),
    ("payment_friction", "We will withhold payment until this works.",
     "Payment went out today as usual."),
    ("disrespect", "Your developer is an idiot.", "Nobody here is stupid, it was a hard bug."),
    ("negative_tone", "This is unacceptable and we are very disappointed.",
     "This is not a complaint, just a note."),
]


@pytest.mark.parametrize(("kind", "positive", "negated"), CASES)
def test_detector_fires_on_cue_and_not_when_negated(kind: str, positive: str, negated: str):
    assert kind in friction_kinds(positive)
    assert kind not in friction_kinds(negated)


@pytest.mark.parametrize(("kind", "positive", "_negated"), CASES)
def test_quoted_lines_never_fire(kind: str, positive: str, _negated: str):
    text = "Thanks, sounds good to me.\n\n> " + positive.replace("\n", "\n> ")
    assert kind not in friction_kinds(text)


@pytest.mark.parametrize(("kind", "positive", "_negated"), CASES)
def test_staff_mail_has_no_friction_signals(kind: str, positive: str, _negated: str):
    result = analyse_message(positive, role="staff")
    assert all(s.weight < 0 for s in result.signals)
    assert result.friction <= analyse_message(positive, role="client").friction


@pytest.mark.parametrize(("kind", "positive", "_negated"), CASES)
def test_evidence_offsets_point_at_the_quote(kind: str, positive: str, _negated: str):
    text = "Hi Sam,\n\nSome context first. " + positive + " Regards"
    signal = kinds(text)[kind]
    for ev in signal.evidence:
        assert text[ev.start:ev.end] == ev.quote
        assert ev.quote == ev.quote.strip()
    assert any(positive.rstrip(".") in ev.quote or ev.quote in positive for ev in signal.evidence)


@pytest.mark.parametrize(
    "civil",
    [
        "No problem at all.",
        "Sorry to see this chapter end.",
        "Thanks again for a great year.",
        "We are sad to see you go, and we wish you all the best.",
        "I'm afraid we cannot take on new work in March.",
        "Thank you so much!!!",
        "Could you let us know if anything is still open? No rush.",
    ],
)
def test_civil_sentences_do_not_fire_friction(civil: str):
    assert friction_kinds(civil) == set()
    assert analyse_message(civil).friction < 0.12


def test_blunt_but_polite_scores_low():
    text = ("Hi Jo, the hero image is the wrong size on mobile. Please change it before "
            "Friday's launch. Thanks, Anna")
    assert analyse_message(text).friction < 0.2


def test_hostile_scores_high_and_above_blunt():
    hostile = ("This is the third time I have asked you to fix this. Unacceptable. "
               "Frankly your team is incompetent and I am sick of the excuses!!!")
    blunt = "The hero image is the wrong size on mobile. Please change it."
    assert analyse_message(hostile).friction > 0.8
    assert analyse_message(hostile).friction > analyse_message(blunt).friction


def test_caps_shouting_but_not_acronyms():
    assert "disrespect" in friction_kinds("THIS IS NOT WHAT WE AGREED. Fix it.")
    assert "disrespect" not in friction_kinds("Send the PDF and the SEO report, ASAP if you can.")
    assert "disrespect" not in friction_kinds("The CEO and CFO will review the EUR budget.")


def test_punctuation_stacks():
    assert "disrespect" in friction_kinds("Where is the report???")
    assert "disrespect" in friction_kinds("You changed the logo again?!")
    assert "disrespect" not in friction_kinds("Thank you so much!!")


@pytest.mark.parametrize(
    "sarcastic",
    [
        "Great, another delay.",
        "Thanks for nothing.",
        "Wow, just wow.",
        "Oh wonderful, the site is down.",
        'So the "finished" site has no contact page.',
        "Yeah right, it will be ready tomorrow.",
    ],
)
def test_sarcasm_markers(sarcastic: str):
    signals = kinds(sarcastic)
    assert "disrespect" in signals
    assert "gratitude" not in signals  # "thanks for nothing" is not thanks


def test_second_person_opening_and_can_vs_could():
    assert "blame" in friction_kinds("You missed the deadline.")
    polite = {s.kind: s.weight for s in detect("Could you send the file?")}
    direct = {s.kind: s.weight for s in detect("Can you send the file?")}
    assert polite["politeness"] < direct["politeness"] < 0


def test_escalation_by_new_senior_cc():
    cc = ["anna@client.com", "ceo@client.com"]
    signals = kinds("See below.", cc=cc, previous_cc=["anna@client.com"])
    assert signals["escalation"].evidence[0].quote == "Cc: ceo@client.com"
    assert "escalation" not in kinds("See below.", cc=cc, previous_cc=cc)
    assert "escalation" in kinds("See below.", cc=["Legal Team <legal@client.com>"],
                                 previous_cc=["anna@client.com"])
    assert "escalation" not in kinds("See below.", cc=["heather@client.com"])


def test_off_hours_urgency_weighs_more():
    text = "I need this fixed ASAP."
    weekday_noon = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    saturday_night = datetime(2026, 11, 28, 23, 30, tzinfo=UTC)
    day = kinds(text, sent_at=weekday_noon)["urgency"].weight
    night = kinds(text, sent_at=saturday_night)["urgency"].weight
    assert night > day


def test_repeated_hits_have_diminishing_returns_and_cap():
    one = kinds("This is urgent.")["urgency"].weight
    many = kinds("Urgent. ASAP. Immediately. Right now. Hurry. " * 5)["urgency"].weight
    assert one < many <= 2.0


def test_friction_score_is_monotone_and_bounded():
    base = friction_score([])
    more = friction_score([Signal("blame", 1.0)])
    less = friction_score([Signal("gratitude", -0.5)])
    assert less < base < more < 1.0
    assert friction_score([Signal("gratitude", -50.0)]) > 0.0


def test_every_kind_is_reachable():
    seen = {r.kind for r in load_rules().rules} | {"escalation", "hostility", "strain"}
    assert set(KINDS) <= seen


def test_curly_apostrophes_and_unicode_keep_offsets():
    text = "İstanbul office: I’m not happy — this isn’t good enough."
    signal = kinds(text)["negative_tone"]
    for ev in signal.evidence:
        assert text[ev.start:ev.end] == ev.quote


def test_bad_resource_file_is_reported(tmp_path):
    bad = tmp_path / "rules.toml"
    bad.write_text('[rules]\nurgency = [ { p = "(unclosed", w = 1.0 } ]\n')
    with pytest.raises(RulesError, match="urgency"):
        load_rules(bad)


@pytest.mark.parametrize(
    "ordinary",
    [
        "I hate to chase, but did you see my last email?",
        "Sorry for the silly question: where do I upload the logo?",
        "Crazy busy week here, I will reply on Monday.",
        "The problem lies in the CSS of the footer.",
        "The file is corrupt, could you send it again?",
        "Worst case we launch on Monday instead.",
        "My bad, I attached the wrong file.",
        "Your invoice is attached.",
        "Our typical turnaround is two days.",
        "Thanks to the new design, sales are up.",
        "Garbage collection pauses the app for a second.",
        "Cheers mate, see you on Friday.",
    ],
)
def test_ordinary_work_mail_does_not_fire(ordinary: str):
    assert friction_kinds(ordinary) == set()


def test_directed_hostility_weighs_more_than_undirected():
    aimed = kinds("You are pathetic.")["disrespect"].weight
    general = kinds("The weather is pathetic.")["disrespect"].weight
    assert aimed > general


@pytest.mark.parametrize(("text", "fires"), [
    ("Adding Diane (CEO) and Paul (General Counsel) to this thread.", True),
    ("Copying Tom (our CFO) here.", True),
    ("Adding Sam (design intern) to the thread.", False),
    ("I am not adding Maria (CEO) yet.", False),
])
def test_named_senior_person_added_in_the_text_is_escalation(text: str, fires: bool) -> None:
    assert ("escalation" in {s.kind for s in detect(text)}) == fires

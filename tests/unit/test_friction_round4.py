"""Round 4 of the phrase rules: praise, paid rush work and excited punctuation are not friction.

Found on blind development threads (eval/dev_threads 091-130) where healthy, excitable
clients were flagged. Every example is our own wording, none is copied from a thread.
"""

from __future__ import annotations

import pytest

from service.analysis.friction import detect


def friction_kinds(text: str) -> set[str]:
    return {s.kind for s in detect(text) if s.weight > 0}


def healthy_kinds(text: str) -> set[str]:
    return {s.kind for s in detect(text) if s.weight < 0}


@pytest.mark.parametrize("text", [
    "You are heroes.",
    "You're a legend, honestly.",
    "You guys are THE BEST!!!",
    "You were absolutely brilliant on the call.",
    "You saved our launch.",
    "You are saving my sanity this week.",
])
def test_second_person_praise_is_gratitude_not_blame(text: str):
    assert "blame" not in friction_kinds(text)
    assert "gratitude" in healthy_kinds(text)


@pytest.mark.parametrize("text", [
    "You changed the colours without asking.",
    "You sent the wrong file again.",
])
def test_second_person_opening_still_counts(text: str):
    assert "blame" in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "Please send the invoice with the rush fee included.",
    "We will pay the urgent rate, of course.",
    "Is there an express or urgent service option?",
    "The courier only comes after rush hour.",
])
def test_paid_rush_service_is_not_urgency(text: str):
    assert "urgency" not in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "This is urgent.",
    "Please rush this through, we need it today.",
    "Urgent: the booking form is down.",
])
def test_urgency_still_counts(text: str):
    assert "urgency" in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "What can we do??",
    "Can you believe the weather this week??",
    "Oh my gosh!!!! It is perfect!!!",
    "Oh my god, the new photos are gorgeous!!",
    "The drone shot over the harbour?!?! PERFECT!!!",
])
def test_excited_punctuation_alone_is_not_friction(text: str):
    assert not friction_kinds(text) & {"disrespect", "hostility"}


@pytest.mark.parametrize("text", [
    "Where is the invoice?? I have asked three times already.",
    "The site is down again?? Seriously??",
])
def test_stacked_question_marks_sharpen_other_friction(text: str):
    assert "disrespect" in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "Oh wow, the new menu looks gorgeous.",
    "Oh wonderful, that's exactly what we needed!",
])
def test_delighted_interjection_is_not_sarcasm(text: str):
    assert "disrespect" not in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "Oh great, the form is broken again.",
    "Oh sure, because that worked so well last time.",
])
def test_sarcastic_interjection_still_counts(text: str):
    assert "disrespect" in friction_kinds(text)


def test_apologetic_timing_is_not_negative_tone():
    assert "negative_tone" not in friction_kinds("I know it's awful timing, with the holidays.")


def test_litigation_as_a_job_title_is_not_a_threat():
    assert "escalation" not in friction_kinds("Two edits from our litigation partner attached.")
    assert "escalation" in friction_kinds("If this is not resolved we will start litigation.")


@pytest.mark.parametrize("text", [
    "Sorry for the short notice, could you swap the banner by Friday?",
    "I know it's a big ask, so please charge the weekend rate.",
    "We're happy to pay the rush fee for this one.",
    "The host is down again. Not your fault, I know.",
])
def test_acknowledged_imposition_counts_on_the_healthy_side(text: str):
    assert "politeness" in healthy_kinds(text)


def test_acknowledging_the_imposition_softens_the_message():
    from service.analysis.message import analyse_message

    bare = analyse_message("We need the banner changed by tomorrow morning.").friction
    soft = analyse_message("Sorry for the short notice: we need the banner changed by "
                           "tomorrow morning.").friction
    assert soft < bare


# kind, example (own wording): general constructions the lists missed on dev threads
MISSED_CONSTRUCTIONS = [
    ("price_pressure", "From January we will cut the monthly budget by 20%."),
    ("price_pressure", "We need to lower the annual fee for next year."),
    ("payment_friction", "Finance will freeze all payments until the audit is done."),
    ("payment_friction", "We are pausing the March invoice pending our review."),
    ("payment_friction", "We have opened a dispute with our card provider over the last charge."),
    ("escalation", "I have included our lawyer in this thread."),
    ("blame", "Maybe check your own spam folder before telling us we never replied."),
    ("blame", "Look in your inbox first: the files went out on Monday."),
    ("blame", "Before you blame us for the delay, remember who missed the call."),
    ("blame", "The launch was due last Friday. Please explain."),
]


@pytest.mark.parametrize(("kind", "text"), MISSED_CONSTRUCTIONS)
def test_general_constructions_fire(kind: str, text: str):
    assert kind in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "Please explain how the booking filter works.",
    "Could you please explain the second line of the invoice?",
    "Adding Sarah, our designer, so she gets the files.",
    "We'll hold the launch party until the weather improves.",
    "The bank opened a dispute team after the fraud case on the news.",
])
def test_near_misses_stay_quiet(text: str):
    assert not friction_kinds(text) & {"blame", "escalation", "payment_friction"}


@pytest.mark.parametrize("text", [
    "Can my logo be a bit BIGGER lol",
    "haha lol, my nephew loved it",
    "OMG THESE ARE AMAZING!!! I'M CRYING, my mum wants one on her wall!!!",
])
def test_friendly_laughter_and_tears_of_joy_are_not_friction(text: str):
    assert not friction_kinds(text) & {"disrespect", "dismissal"}


def test_laughter_sharpens_other_friction():
    assert "dismissal" in friction_kinds("You want another fee for that? lol. Not paying it.")


@pytest.mark.parametrize("text", [
    "You guys did everything right, the courier lost it.",
    "Your team did nothing wrong here.",
    "This is 100% on the printer.",
])
def test_clearing_us_counts_on_the_healthy_side(text: str):
    from service.analysis.message import analyse_message

    assert "politeness" in healthy_kinds(text)
    assert analyse_message(text).friction < 0.12  # below a message with no evidence


def test_a_press_release_in_may_is_not_a_deferred_payment():
    assert "payment_friction" not in friction_kinds("Could you write the press release in May?")
    assert "payment_friction" in friction_kinds("We can only release the payment in May.")


def _weight(text: str, kind: str) -> float:
    return sum(s.weight for s in detect(text) if s.kind == kind)


def test_contempt_for_a_third_party_weighs_less_than_for_us():
    ours = _weight("Your support is useless.", "dismissal")
    plain = _weight("The support is useless.", "dismissal")
    theirs = _weight("Their support is useless.", "dismissal")
    assert ours > plain > theirs > 0
    assert _weight("Honestly, he is useless.", "dismissal") < plain
    # a sentence that names us too is aimed at us
    assert _weight("Their support is useless and so is yours.", "dismissal") == ours


# kind, example (own wording): stalling and haggling that stays friendly on the surface
STALLING = [
    ("payment_friction", "We'll transfer 300 now and the rest after the harvest."),
    ("payment_friction", "Paying 1,000 euros this week, the balance next month."),
    ("payment_friction", "Payment when you fix the colours."),
    ("payment_friction", "We'd prefer to pay the deposit after the launch."),
    ("price_pressure", "Two thousand, and that's my final offer."),
    ("price_pressure", "Come for lunch and we'll work out something fair between friends."),
]


@pytest.mark.parametrize(("kind", "text"), STALLING)
def test_friendly_stalling_and_haggling_fire(kind: str, text: str):
    assert kind in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "The deposit is attached, the rest on delivery as agreed.",
    "The Christmas rush is over, so the shop is quiet now.",
    "We'll pay the invoice when it arrives.",
])
def test_ordinary_payment_and_season_talk_stays_quiet(text: str):
    assert not friction_kinds(text) & {"payment_friction", "urgency", "price_pressure"}


@pytest.mark.parametrize("text", [
    "Thank you for your kind words and your kind offer.",
    "We choose the cheaper one with the timer.",
    "It was a rubbish week here, we lost a big customer.",
    "Coffee will be waiting for you on Tuesday.",
])
def test_kind_words_options_and_bad_weeks_are_not_friction(text: str):
    assert not friction_kinds(text) & {"disrespect", "dismissal", "price_pressure", "urgency"}


@pytest.mark.parametrize(("kind", "text"), [
    ("disrespect", "People of your kind never pay on time."),
    ("price_pressure", "Other studios are cheaper, you know."),
    ("dismissal", "Your proposal is rubbish."),
    ("urgency", "We are still waiting for your reply."),
])
def test_the_same_words_still_fire_where_they_mean_it(kind: str, text: str):
    assert kind in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "FRIDAY IT IS 🎉 Invite sent!",
    "LUNA. LUNA!!! I am DYING 😂😂",
    "We're going to kill it at the trade show 🔥",
    "I owe you all a beer after this week.",
])
def test_excitement_in_caps_emoji_and_idiom_is_not_friction(text: str):
    assert not friction_kinds(text) & {"disrespect", "hostility", "payment_friction"}


@pytest.mark.parametrize(("kind", "text"), [
    ("disrespect", "STOP CHANGING THE LOGO!!! 😡"),
    ("payment_friction", "We still owe you for March, sorry."),
])
def test_anger_and_real_debts_still_count(kind: str, text: str):
    assert kind in friction_kinds(text)


# kind, example (own wording): a retainer stretched politely, a payment promised again
STRETCHING = [
    ("scope_creep", "Could we fit the new brochure into this month's retainer?"),
    ("scope_creep", "Maybe the video can come out of the retainer hours?"),
    ("scope_creep", "Just roll the extra hours over into next month."),
    ("price_pressure", "We'd prefer to avoid any overage charges this year."),
    ("payment_friction", "Money's on its way, I promise."),
    ("payment_friction", "Accounts were closed, but next week for sure."),
    ("payment_friction", "Oh, I assumed the office had paid that one."),
    ("blame", "Please don't hold our website hostage over one invoice."),
]


@pytest.mark.parametrize(("kind", "text"), STRETCHING)
def test_polite_stretching_and_repeated_promises_fire(kind: str, text: str):
    assert kind in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "Is the logo work within the retainer, or should we budget for it?",
    "Payment went out on Friday as promised.",
    "Happy to pay the overage, just send it with the monthly invoice.",
])
def test_plain_retainer_and_payment_talk_stays_quiet(text: str):
    assert not friction_kinds(text) & {"scope_creep", "price_pressure", "payment_friction"}


@pytest.mark.parametrize("text", [
    "Thank you always for your support.",
    "Thank you for your kind explanation.",
    "YESSSS PERFECT. posting tomorrow!!",
    "The invoice will be paid at the end of March according to our payment cycle.",
])
def test_formal_thanks_shouted_delight_and_payment_cycles_are_not_friction(text: str):
    assert not friction_kinds(text) & {"blame", "disrespect", "payment_friction"}


@pytest.mark.parametrize(("kind", "text"), [
    ("blame", "You always miss the deadline."),
    ("disrespect", "I know your kind, you just want the money."),
    ("payment_friction", "We will pay it at the end of March, cash is tight."),
])
def test_their_friction_twins_still_fire(kind: str, text: str):
    assert kind in friction_kinds(text)

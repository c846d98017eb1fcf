"""Round 4 of the phrase rules: praise, paid rush work and excitement are not friction;
stalling, haggling and stretched retainers that stay polite are.

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


# kind, example (own wording): each rule of the round fires where it means it, including the
# friction twins of the near misses in QUIET below
FIRES = [
    # a second-person opening still counts when it is not praise
    ("blame", "You changed the colours without asking."),
    ("blame", "You sent the wrong file again."),
    # a demand for speed that is not a paid service
    ("urgency", "This is urgent."),
    ("urgency", "Please rush this through, we need it today."),
    ("urgency", "Urgent: the booking form is down."),
    # "??", "oh great", "lol" sharpen other friction
    ("disrespect", "Where is the invoice?? I have asked three times already."),
    ("disrespect", "The site is down again?? Seriously??"),
    ("disrespect", "Oh great, the form is broken again."),
    ("disrespect", "Oh sure, because that worked so well last time."),
    ("dismissal", "You want another fee for that? lol. Not paying it."),
    ("escalation", "If this is not resolved we will start litigation."),
    # general constructions the lists missed on dev threads
    ("price_pressure", "From January we will cut the monthly budget by 20%."),
    ("price_pressure", "We need to lower the annual fee for next year."),
    ("payment_friction", "Finance will freeze all payments until the audit is done."),
    ("payment_friction", "We are pausing the March invoice pending our review."),
    ("payment_friction", "We have opened a dispute with our card provider over the last charge."),
    ("payment_friction", "We can only release the payment in May."),
    ("escalation", "I have included our lawyer in this thread."),
    ("blame", "Maybe check your own spam folder before telling us we never replied."),
    ("blame", "Look in your inbox first: the files went out on Monday."),
    ("blame", "Before you blame us for the delay, remember who missed the call."),
    ("blame", "The launch was due last Friday. Please explain."),
    # stalling and haggling that stays friendly on the surface
    ("payment_friction", "We'll transfer 300 now and the rest after the harvest."),
    ("payment_friction", "Paying 1,000 euros this week, the balance next month."),
    ("payment_friction", "Payment when you fix the colours."),
    ("payment_friction", "We'd prefer to pay the deposit after the launch."),
    ("price_pressure", "Two thousand, and that's my final offer."),
    ("price_pressure", "Come for lunch and we'll work out something fair between friends."),
    # the same words where they mean it
    ("disrespect", "People of your kind never pay on time."),
    ("price_pressure", "Other studios are cheaper, you know."),
    ("dismissal", "Your proposal is rubbish."),
    ("urgency", "We are still waiting for your reply."),
    ("disrespect", "STOP CHANGING THE LOGO!!! 😡"),
    ("payment_friction", "We still owe you for March, sorry."),
    # a retainer stretched politely, a payment promised again
    ("scope_creep", "Could we fit the new brochure into this month's retainer?"),
    ("scope_creep", "Maybe the video can come out of the retainer hours?"),
    ("scope_creep", "Just roll the extra hours over into next month."),
    ("price_pressure", "We'd prefer to avoid any overage charges this year."),
    ("payment_friction", "Money's on its way, I promise."),
    ("payment_friction", "Accounts were closed, but next week for sure."),
    ("payment_friction", "Oh, I assumed the office had paid that one."),
    ("blame", "Please don't hold our website hostage over one invoice."),
    ("blame", "You always miss the deadline."),
    ("disrespect", "I know your kind, you just want the money."),
    ("payment_friction", "We will pay it at the end of March, cash is tight."),
]


@pytest.mark.parametrize(("kind", "text"), FIRES)
def test_rule_fires(kind: str, text: str):
    assert kind in friction_kinds(text)


_PAY = frozenset({"payment_friction", "urgency", "price_pressure"})
_SHOUT = frozenset({"disrespect", "hostility"})

# kinds that must not fire, example (own wording): the near misses the round fixed
QUIET = [
    # paid rush work is a service, not a demand
    ({"urgency"}, "Please send the invoice with the rush fee included."),
    ({"urgency"}, "We will pay the urgent rate, of course."),
    ({"urgency"}, "Is there an express or urgent service option?"),
    ({"urgency"}, "The courier only comes after rush hour."),
    # excitement, not shouting
    (_SHOUT, "What can we do??"),
    (_SHOUT, "Can you believe the weather this week??"),
    (_SHOUT, "Oh my gosh!!!! It is perfect!!!"),
    (_SHOUT, "Oh my god, the new photos are gorgeous!!"),
    (_SHOUT, "The drone shot over the harbour?!?! PERFECT!!!"),
    ({"disrespect"}, "Oh wow, the new menu looks gorgeous."),
    ({"disrespect"}, "Oh wonderful, that's exactly what we needed!"),
    ({"disrespect", "dismissal"}, "Can my logo be a bit BIGGER lol"),
    ({"disrespect", "dismissal"}, "haha lol, my nephew loved it"),
    ({"disrespect", "dismissal"},
     "OMG THESE ARE AMAZING!!! I'M CRYING, my mum wants one on her wall!!!"),
    (_SHOUT | {"payment_friction"}, "FRIDAY IT IS 🎉 Invite sent!"),
    (_SHOUT | {"payment_friction"}, "LUNA. LUNA!!! I am DYING 😂😂"),
    (_SHOUT | {"payment_friction"}, "We're going to kill it at the trade show 🔥"),
    (_SHOUT | {"payment_friction"}, "I owe you all a beer after this week."),
    # ordinary words that only look like friction
    ({"negative_tone"}, "I know it's awful timing, with the holidays."),
    ({"escalation"}, "Two edits from our litigation partner attached."),
    ({"payment_friction"}, "Could you write the press release in May?"),
    ({"blame", "escalation", "payment_friction"}, "Please explain how the booking filter works."),
    ({"blame", "escalation", "payment_friction"},
     "Could you please explain the second line of the invoice?"),
    ({"blame", "escalation", "payment_friction"},
     "Adding Sarah, our designer, so she gets the files."),
    ({"blame", "escalation", "payment_friction"},
     "We'll hold the launch party until the weather improves."),
    ({"blame", "escalation", "payment_friction"},
     "The bank opened a dispute team after the fraud case on the news."),
    (_PAY, "The deposit is attached, the rest on delivery as agreed."),
    (_PAY, "The Christmas rush is over, so the shop is quiet now."),
    (_PAY, "We'll pay the invoice when it arrives."),
    ({"disrespect", "dismissal", "price_pressure", "urgency"},
     "Thank you for your kind words and your kind offer."),
    ({"disrespect", "dismissal", "price_pressure", "urgency"},
     "We choose the cheaper one with the timer."),
    ({"disrespect", "dismissal", "price_pressure", "urgency"},
     "It was a rubbish week here, we lost a big customer."),
    ({"disrespect", "dismissal", "price_pressure", "urgency"},
     "Coffee will be waiting for you on Tuesday."),
    ({"scope_creep", "price_pressure", "payment_friction"},
     "Is the logo work within the retainer, or should we budget for it?"),
    ({"scope_creep", "price_pressure", "payment_friction"},
     "Payment went out on Friday as promised."),
    ({"scope_creep", "price_pressure", "payment_friction"},
     "Happy to pay the overage, just send it with the monthly invoice."),
    ({"blame", "disrespect", "payment_friction"}, "Thank you always for your support."),
    ({"blame", "disrespect", "payment_friction"}, "Thank you for your kind explanation."),
    ({"blame", "disrespect", "payment_friction"}, "YESSSS PERFECT. posting tomorrow!!"),
    ({"blame", "disrespect", "payment_friction"},
     "The invoice will be paid at the end of March according to our payment cycle."),
]


@pytest.mark.parametrize(("kinds", "text"), QUIET)
def test_near_miss_stays_quiet(kinds: set[str], text: str):
    assert not friction_kinds(text) & kinds


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


@pytest.mark.parametrize("text", [
    "You guys did everything right, the courier lost it.",
    "Your team did nothing wrong here.",
    "This is 100% on the printer.",
])
def test_clearing_us_counts_on_the_healthy_side(text: str):
    from service.analysis.message import analyse_message

    assert "politeness" in healthy_kinds(text)
    assert analyse_message(text).friction < 0.12  # below a message with no evidence


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

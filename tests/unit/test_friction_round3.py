"""Round 3 of the phrase rules: polite payment stalling, polite price pressure, late souring.

Every entry under a "# Round 3" comment in resources/friction.toml must be exercised by an
example here (``test_every_round3_entry_has_an_example``), each example must fire its kind,
and the near misses beside them (ordinary billing talk, budgets, reviews) must not.
All examples are our own wording of how business clients write; none comes from an
evaluation corpus.
"""

from __future__ import annotations

import re
import tomllib

import pytest

from service.analysis.friction import DEFAULT_RULES, Doc, detect, load_rules
from service.analysis.message import analyse_message


def friction_kinds(text: str) -> set[str]:
    return {s.kind for s in detect(text) if s.weight > 0}


# kind, example (own wording)
EXAMPLES = [
    # payment_friction: the payment moves, the reason is on their side
    ("payment_friction", "Can we push the invoice to next quarter?"),
    ("payment_friction", "Could we move this month's payment to the 30th?"),
    ("payment_friction", "We'd like to hold the March payment until the new price is agreed."),
    ("payment_friction", "Would it be OK to hold off on the invoice for now?"),
    ("payment_friction", "We'll hold off paying until the results are in."),
    ("payment_friction", "I'm afraid the invoice will have to wait a little longer."),
    ("payment_friction", "Would you mind if we paid the March invoice in April instead?"),
    ("payment_friction", "Could we settle the older two in the new financial year?"),
    ("payment_friction", "Could we sort the payment out next month?"),
    ("payment_friction", "Accounts payable is backed up at the moment."),
    ("payment_friction", "Our bookkeeper is on maternity leave, so things have piled up."),
    ("payment_friction", "I've passed the invoice on to our finance team again."),
    ("payment_friction", "Investors wire the money in June, we'll be able to pay it all then."),
    ("payment_friction", "We can't really release funds before the board meets."),
    ("payment_friction", "Invoices received now will be processed in the following payment cycle."),
    ("payment_friction", "Sorry, I totally forgot about that invoice."),
    ("payment_friction", "Payment is scheduled for the end of next quarter."),
    ("payment_friction", "The invoice got stuck in our approval workflow."),
    ("payment_friction", "We'll pay half now, the rest will follow in October."),
    ("payment_friction", "Is it possible to pay half now and the rest on delivery?"),
    ("payment_friction", "As soon as the grant comes through we'll clear everything."),
    ("payment_friction", "Could we pay it off in small monthly amounts?"),
    ("payment_friction", "Cash flow is a bit tight after the trade fair."),
    ("payment_friction", "It's a slow season and we have tight cashflow."),
    ("payment_friction", "Money is really tight right now."),
    ("payment_friction", "We're waiting on our client to pay us first."),
    ("payment_friction", "We'll settle once our next funding round closes."),
    ("payment_friction", "Our board has to meet before we can release the payment."),
    ("payment_friction", "Payment might slip a little this month."),
    ("payment_friction", "Happy to pay the balance once the site is live and we see results."),
    ("payment_friction", "Could you invoice us after the launch instead?"),
    ("payment_friction", "Would you consider invoicing in two parts?"),
    ("payment_friction", "I'll chase our finance team again this week."),
    ("payment_friction", "We seem to have misplaced your invoice."),
    ("payment_friction", "That spend is not in this quarter's budget, sadly."),
    ("payment_friction", "No payments are going out until the audit is signed off."),
    ("payment_friction", "I know we're a bit behind on the invoices."),
    ("payment_friction", "Could we catch up gradually over the summer?"),
    ("payment_friction", "Our CFO wants to review all spend before anything else is paid."),
    ("payment_friction", "We had to prioritise payroll this month."),
    ("payment_friction", "The invoice is approved but needs a second signature."),
    ("payment_friction", "Could we use it as a credit instead of paying it now?"),
    ("payment_friction", "Can we treat the last invoice as a credit against next year's work?"),
    ("payment_friction", "The transfer didn't go through, we'll try again next week."),
    ("payment_friction", "We have a lot of invoices to process, yours is in the queue."),
    ("payment_friction", "We'll settle the rest once the shop is making money."),
    ("payment_friction", "Our head office handles supplier payments and they're notoriously slow."),
    ("payment_friction", "Would you take part of the fee in equity?"),
    ("payment_friction", "We're a bit stretched at the moment."),
    ("payment_friction", "I'll get it paid as soon as I'm back from holiday."),
    ("payment_friction", "We'll pay the final invoice only after the bugs are fixed."),
    ("payment_friction", "The invoice is sitting with our parent company."),
    ("payment_friction", "We'd rather pay on results."),
    ("payment_friction", "Could we link the final payment to the traffic targets?"),
    ("payment_friction", "Could you send the invoice in April rather than now?"),
    ("payment_friction", "Yes, we owe you, I haven't forgotten."),
    ("payment_friction", "We can't raise payments until the new system is live."),
    ("payment_friction", "Can we split it, some now and the rest after Christmas?"),
    ("payment_friction", "We'll get it to you as soon as the bookings pick up again."),
    ("payment_friction", "The owners sign off on all payments themselves."),
    ("payment_friction", "We'll sort the money out after Easter."),
    ("payment_friction", "Relax, we've always paid in the end."),
    ("payment_friction", "They want to go through the costs before paying anything."),
    # price_pressure: said politely
    ("price_pressure", "Our marketing budget was cut for Q2."),
    ("price_pressure", "Our budget this year is half of last year's."),
    ("price_pressure", "From March we need to bring the retainer down to 300 a month."),
    ("price_pressure", "We'd like at least 20% off from April."),
    ("price_pressure", "They came in 20% cheaper than you."),
    ("price_pressure", "Another studio quoted us 25% less for the same scope."),
    ("price_pressure", "A freelancer offered to do all of it for half."),
    ("price_pressure", "Could you do the whole job for 2,000 instead?"),
    ("price_pressure", "We were thinking more in the region of 8k."),
    ("price_pressure", "Is that the best you can do?"),
    ("price_pressure", "Is there room to move on the price?"),
    ("price_pressure", "Our budget was cut, can you match?"),
    ("price_pressure", "Match that or we stop."),
    ("price_pressure", "Could you meet us halfway?"),
    ("price_pressure", "Happy to sign for a year if you can sharpen the numbers."),
    ("price_pressure", "As a small charity, could we have a charity rate?"),
    ("price_pressure", "Our budget only stretches to 5k."),
    ("price_pressure", "We only have 2,000 to spend on this."),
    ("price_pressure", "I'd expect a bit more flexibility."),
    ("price_pressure", "Frankly I don't see what we get for this money."),
    ("price_pressure", "What are we getting for the retainer, exactly?"),
    ("price_pressure", "We're not getting our money's worth."),
    ("price_pressure", "Could you take another look at the numbers?"),
    ("price_pressure", "We've had our marketing budget halved."),
    ("price_pressure", "We need the same output for less."),
    ("price_pressure", "A studio in Leeds quoted roughly a third less."),
    ("price_pressure", "Can you get closer to their number?"),
    ("price_pressure", "Could you do the rebrand for around half?"),
    ("price_pressure", "We hoped to pay half your usual fee."),
    ("price_pressure", "If you could shave 15% off, we'd sign today."),
    ("price_pressure", "Can we make it work for a smaller sum?"),
    ("price_pressure", "We'd like to continue at our new budget level."),
    ("price_pressure", "The hourly rate is on the high side."),
    ("price_pressure", "Would you be willing to revisit the rate?"),
    ("price_pressure", "Management asked every supplier for a 10% price reduction."),
    ("price_pressure", "We're asking for a fee reduction this year."),
    ("price_pressure", "We're struggling to justify the retainer internally."),
    ("price_pressure", "We'd need the total to stay under 10k."),
    ("price_pressure", "Most agencies seem to charge less for reporting."),
    ("price_pressure", "Is your day rate negotiable?"),
    ("price_pressure", "Our policy caps design work at 60 an hour."),
    ("price_pressure", "We'd need you to come into line with that."),
    ("price_pressure", "Next year we'll need to cut agency spend by 30%."),
    ("price_pressure", "Your competitor offered three months free. Can you beat that?"),
    ("price_pressure", "Our competitor quoted far less."),
    ("price_pressure", "It's a great proposal but far beyond our means."),
    ("price_pressure", "Could you include the extra pages at no charge?"),
    ("price_pressure", "The fees are out of line with the market."),
    ("price_pressure", "The board has asked me to renegotiate."),
    ("price_pressure", "Make it 1,200 and we have a deal."),
    ("price_pressure", "Knock off a bit and you've got yourself a deal."),
    ("price_pressure", "I'm struggling with the number."),
    ("price_pressure", "Where can we save?"),
    ("price_pressure", "Still feels like a lot for a plugin."),
    ("price_pressure", "Can you drop it to 50?"),
    ("price_pressure", "I don't really see why we'd pay you for backups."),
    ("price_pressure", "I'm not convinced those numbers justify the spend."),
    # scope_creep: loyalty as leverage
    ("scope_creep", "We've always been loyal, so please fit the extra page in."),
    ("scope_creep", "Could you keep the same monthly price but add the social posts?"),
    ("scope_creep", "I'll expect the SEO tidy-up thrown in at that price."),
    # escalation: a relationship souring late
    ("escalation", "We are reviewing all our agency relationships this quarter."),
    ("escalation", "We need to reconsider the retainer."),
    ("escalation", "We have decided to bring the work in-house from June."),
    ("escalation", "We've been talking to a couple of other agencies."),
    ("escalation", "We're considering our options."),
    ("escalation", "We need to talk about the future of our working relationship."),
    ("escalation", "We'll put the website contract out to tender in June."),
    ("escalation", "We will invite a few agencies to pitch."),
    ("escalation", "We're weighing up whether to continue with an agency at all."),
    ("escalation", "Our new director would like to run a tender for the account."),
    ("escalation", "After this quarter we may not need your services."),
    ("escalation", "We'll be consolidating our suppliers next year."),
    ("escalation", "I've asked our COO to sit in on the next call."),
    ("escalation", "We need to discuss whether this is still working."),
    ("escalation", "We'll look at the whole set-up before the contract rolls over."),
    ("escalation", "Please don't start any new work in the meantime."),
    # blame: reproach in calm words
    ("blame", "I need to know what went wrong on your side."),
    ("blame", "Our sales dropped after the redesign went live."),
    ("blame", "Please keep a closer eye on the booking page."),
    ("blame", "The outage lost us a fair few reservations."),
    ("blame", "We didn't ask for that."),
    ("blame", "I don't remember agreeing to that."),
    ("blame", "Please be quicker next time."),
    # negative_tone: the work fell short
    ("negative_tone", "We expected more from the campaign."),
    ("negative_tone", "Honestly, the last two campaigns underdelivered."),
    ("negative_tone", "The campaign didn't deliver the leads we were promised."),
    ("negative_tone", "We're questioning the value of the retainer."),
    ("negative_tone", "I'm a bit disheartened, to be honest."),
    ("negative_tone", "The last few months haven't been what we hoped for."),
    ("negative_tone", "Our rankings have slipped this quarter."),
    ("negative_tone", "That's a bit much, honestly."),
]

# kind, civil text that must not fire it (ordinary billing, budget and review talk)
NEAR_MISSES = [
    ("payment_friction", "We'll pay once we receive your invoice."),
    ("payment_friction", "We'll pay the invoice in June as agreed."),
    ("payment_friction", "Payment for invoice 2031 went out this morning."),
    ("payment_friction", "Our finance team pays suppliers on the 15th of each month."),
    ("payment_friction", "Happy to pay the deposit today so you can start on Monday."),
    ("payment_friction", "Payment will go out on the 28th with our regular supplier run."),
    ("payment_friction", "Invoice paid, thanks for waiting while our accountant was away."),
    ("payment_friction", "Could you split the invoice by project so we can allocate costs?"),
    ("price_pressure", "Our budget for the campaign is 5,000, does that work?"),
    ("price_pressure", "The new pricing page should show 20% off for annual plans."),
    ("price_pressure", "Thanks for the revised proposal, the numbers look good to us."),
    ("price_pressure", "We'd like to increase the retainer from next month."),
    ("price_pressure", "The budget is approved, you can go ahead with phase two."),
    ("escalation", "Could you review the contract before Friday?"),
    ("escalation", "We're reviewing the copy internally and will send comments tomorrow."),
    ("escalation", "We'll review the proposal with the partners next week."),
    ("payment_friction", "Just to confirm, the invoice will be paid on the 30th like every month."),
    ("payment_friction", "Is it OK if I pay by card this time instead of bank transfer?"),
    ("price_pressure", "Happy to pay the rush fee, it's worth it for us."),
    ("price_pressure", "We'll review your rates in January as usual."),
    ("escalation", "We'll discuss the proposal at the board meeting on Thursday."),
    ("escalation", "Could you bring the CTO's feedback into the next draft?"),
    ("scope_creep", "Could you throw away the old drafts?"),
    ("escalation", "Please start the new work on Monday."),
    ("dismissal", "Let's move on to the next item on the agenda."),
    ("dismissal", "Is there room to move on the price?"),
]


@pytest.mark.parametrize(("kind", "text"), EXAMPLES)
def test_example_fires_its_kind(kind: str, text: str):
    assert kind in friction_kinds(text)


@pytest.mark.parametrize(("kind", "text"), NEAR_MISSES)
def test_near_miss_does_not_fire(kind: str, text: str):
    assert kind not in friction_kinds(text)
    assert analyse_message(text).friction < 0.3


def _round3_patterns() -> list[tuple[str, str]]:
    """(kind, pattern) of every entry under a "# Round 3" comment of the resource file."""
    found, kind, in_round3 = [], None, False
    for line in DEFAULT_RULES.read_text(encoding="utf-8").splitlines():
        head = re.match(r"^(\w+) = \[$", line)
        if head:
            kind, in_round3 = head.group(1), False
        elif line.startswith("# Round"):
            in_round3 = line.startswith("# Round 3")
        elif in_round3 and line.lstrip().startswith("{ p"):
            entry = tomllib.loads("e = " + line.strip().rstrip(","))["e"]
            found.append((kind, entry["p"]))
    return found


def test_round3_entries_are_found():
    assert len(_round3_patterns()) >= 90


def test_every_round3_entry_has_an_example():
    rules = load_rules()
    lowered = {kind: [Doc(text).lower for k, text in EXAMPLES if k == kind]
               for kind, _ in EXAMPLES}
    missing = []
    for kind, pattern in _round3_patterns():
        compiled = [r for r in rules.rules if r.kind == kind and r.why
                    and _same_source(r.regex.pattern, pattern)]
        assert compiled, f"{kind}: {pattern!r} not loaded"
        if not any(r.regex.search(text) for r in compiled for text in lowered.get(kind, [])):
            missing.append((kind, pattern))
    assert not missing


def _same_source(compiled: str, pattern: str) -> bool:
    """Whether a compiled rule came from ``pattern`` (spaces and boundaries added)."""
    core = pattern.lower().replace(" ?", r"\s*").replace(" ", r"\s+")
    return compiled == core or compiled == rf"(?<![\w'])(?:{core})(?![\w])"


# --------------------------------------------------------------------------- engine


@pytest.mark.parametrize("text", [
    "The invoice is overdue.",
    "Our cashflow is tight this month.",
    "I've asked the bank for a chargeback.",
    "We're only paying 50% of this invoice.",
])
def test_optional_space_matches_joined_words(text: str):
    # " ?" in a pattern is optional whitespace: "over ?due" finds "overdue"
    assert friction_kinds(text) & {"payment_friction"}


@pytest.mark.parametrize("text", [
    "WOW!!! This is exactly what we had in mind!!! The project pages are stunning!",
    "PERFECT. Launch it!!",
    "YESSS. Perfect!!! Thank you thank you!",
    "200 tickets sold in the first weekend!!! Best year ever!!!",
    "Hi Max!! We're doing the summer fair again!!! New ticket page please :)",
    "OMG I LOVE IT!!! The colours are gorgeous!!",
    "We won!!!",
    "Names are final!!",
    "3 already?!!",
    "Hi Priya!!",
])
def test_enthusiasm_is_not_shouting(text: str):
    assert "disrespect" not in friction_kinds(text)


@pytest.mark.parametrize("text", [
    "Where is the report!!!",
    "Great!!! Another delay.",
    "Call me back today, the banner is still wrong!!!",
    "Brilliant!!! The site is down again!!!",
    "Amazing!!! But the invoice is wrong!!",
])
def test_stacks_stay_friction_without_praise_or_beside_friction(text: str):
    assert friction_kinds(text)
    if "invoice" not in text:
        assert "disrespect" in friction_kinds(text)

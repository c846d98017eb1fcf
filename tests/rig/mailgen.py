"""Realistic client/agency emails for integration tests and benchmarks.

Deterministic for a seed: threads with replies quoting earlier mail, mixed
tone, plain and multipart/alternative bodies, signatures, the odd auto-reply.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

CLIENTS = [
    ("acme.test", ["ana", "bob", "carla"]),
    ("globex.test", ["dan", "eve"]),
    ("initech.test", ["frank", "gina", "hal"]),
    ("umbrella.test", ["ivy"]),
]
STAFF = ["olga", "paul", "quinn"]
AGENCY = "northwind.test"

OPENINGS = [
    "Thanks for the update on the landing page.",
    "Following up on the invoice from last month.",
    "This is the third time I have asked you to fix the checkout bug.",
    "Great work on the campaign, the numbers look really good!",
    "We still have not received the revised designs.",
    "Could you send the report by Friday?",
    "I am disappointed with how long this is taking.",
    "Quick question about the analytics dashboard.",
    "Unacceptable. The site was down for six hours again.",
    "Lovely to meet the team yesterday, thank you.",
]
MIDDLES = [
    "Our board meets next week and I need something concrete to show them.",
    "Let me know if anything is unclear on your side.",
    "We are paying for priority support and this is not what we expected.",
    "The copy changes in the attached document should be straightforward.",
    "Can we schedule a call to go through the remaining items?",
    "Honestly, I am starting to wonder whether this is working out.",
    "Everything else looks fine to me.",
    "Please make sure the staging environment matches production this time.",
]
SIGNATURES = [
    "--\n{name}\nHead of Marketing\n+1 555 0100",
    "Best,\n{name}",
    "Sent from my iPhone",
    "Regards,\n{name} | {domain}",
]


def _person(rng: random.Random) -> tuple[str, str, str]:
    domain, people = rng.choice(CLIENTS)
    local = rng.choice(people)
    return local.capitalize(), f"{local}@{domain}", domain


def generate(
    count: int,
    *,
    seed: int = 1,
    to: str = f"team@{AGENCY}",
    start: datetime | None = None,
    auto_reply_every: int = 50,
) -> Iterator[bytes]:
    """`count` raw RFC 5322 messages (CRLF), unique Message-IDs, in date order."""
    rng = random.Random(seed)
    when = start or datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    threads: list[tuple[str, str, str]] = []  # (subject, message_id, previous text)
    for n in range(count):
        when += timedelta(minutes=rng.randint(5, 240))
        name, address, domain = _person(rng)
        staff_sender = rng.random() < 0.3
        msg = EmailMessage()
        if staff_sender:
            local = rng.choice(STAFF)
            msg["From"] = f"{local.capitalize()} <{local}@{AGENCY}>"
            msg["To"] = f"{name} <{address}>"
            msg["Cc"] = to
            name = local.capitalize()
        else:
            msg["From"] = f"{name} <{address}>"
            msg["To"] = to
        msg["Date"] = format_datetime(when)
        msg["Message-ID"] = f"<gen-{seed}-{n}@{domain if not staff_sender else AGENCY}>"
        auto = auto_reply_every and n % auto_reply_every == auto_reply_every - 1
        body = " ".join([rng.choice(OPENINGS), *rng.sample(MIDDLES, rng.randint(1, 3))])
        if auto:
            msg["Subject"] = "Automatic reply: out of office"
            msg["Auto-Submitted"] = "auto-replied"
            body = "I am out of the office until Monday with limited access to email."
        elif threads and rng.random() < 0.6:
            subject, parent, previous = rng.choice(threads)
            msg["Subject"] = f"Re: {subject}"
            msg["In-Reply-To"] = parent
            msg["References"] = parent
            quoted = "\n".join("> " + line for line in previous.splitlines())
            body = f"{body}\n\nOn {format_datetime(when - timedelta(hours=3))}, wrote:\n{quoted}"
        else:
            subject = rng.choice(["Website", "Invoice", "Campaign", "Report", "Support"])
            msg["Subject"] = f"{subject} #{rng.randint(100, 999)}"
        text = f"Hi,\n\n{body}\n\n{rng.choice(SIGNATURES).format(name=name, domain=domain)}\n"
        msg.set_content(text)
        if rng.random() < 0.4:
            html = (
                "<html><body>"
                + "".join(f"<p>{line}</p>" for line in text.splitlines() if line)
                + "</body></html>"
            )
            msg.add_alternative(html, subtype="html")
        if not auto:
            threads.append((str(msg["Subject"]).removeprefix("Re: "), msg["Message-ID"], text))
            if len(threads) > 40:
                threads.pop(0)
        yield msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message(
    subject: str,
    *,
    sender: str = "ana@acme.test",
    to: str = f"team@{AGENCY}",
    body: str = "Hello team,\nall good here.\n",
    message_id: str | None = None,
) -> bytes:
    """One simple message (CRLF)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id or f"<{random.getrandbits(64):x}@{sender.split('@')[-1]}>"
    msg.set_content(body)
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

"""Deterministic, realistic-looking client mail for benchmarks (not for quality checks)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

OPENINGS = [
    "Hi Maria,", "Hello team,", "Hi all,", "Dear Jonas,", "Morning!", "Hi there,", "Hey Priya,",
]
SENTENCES = [
    "Thanks for sending the latest version of the homepage over yesterday.",
    "We had a look with the marketing team and overall we like the direction.",
    "Could you make the hero image a bit brighter and move the logo to the left?",
    "This is the third time I have asked you to fix the footer. Unacceptable.",
    "Can we get a discount on the next phase, the budget is tighter than planned.",
    "We need this by tomorrow morning, the board meeting got moved.",
    "The invoice from March is still with our accounts team, sorry for the delay.",
    "I am not sure the new navigation works for our older customers.",
    "Great work on the newsletter template, the open rates are up.",
    "Please send the source files when you have a moment, no rush.",
    "Our CEO will join the next call, she has some concerns about the timeline.",
    "Honestly, this is still not what we asked for in the brief.",
    "Let's schedule a call next week to go through the remaining items.",
    "Appreciate the quick turnaround on the banner ads!",
    "Can you do another round on the product photos before Friday?",
    "We will have to escalate this if the site is not live by the end of the month.",
]
SIGNATURES = [
    "Best,\nDana Fox\nHead of Marketing\n+49 30 1234567",
    "Cheers,\nBob",
    "Thanks,\nLena\n\nSent from my iPhone",
    "Kind regards\nPeter Smith | Operations Director",
]
DOMAINS = [f"client{i}.example" for i in range(40)]


def generate(n: int, seed: int = 7) -> Iterator[bytes]:
    """n RFC 5322 messages of 1-4 KB: opening, 3-7 sentences, quote, signature."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, 9, tzinfo=UTC)
    for i in range(n):
        domain = DOMAINS[i % len(DOMAINS)]
        inbound = rng.random() < 0.6
        sender = f"contact{i % 7}@{domain}" if inbound else "maria@northwind.studio"
        rcpt = "team@northwind.studio" if inbound else f"contact{i % 7}@{domain}"
        date = start + timedelta(minutes=37 * i)
        body = [rng.choice(OPENINGS), ""]
        body += [rng.choice(SENTENCES) for _ in range(rng.randint(3, 7))]
        body += ["", rng.choice(SIGNATURES), ""]
        if i and rng.random() < 0.7:
            body.append(f"On {format_datetime(date - timedelta(hours=5))}, Maria wrote:")
            body += ["> " + rng.choice(SENTENCES) for _ in range(rng.randint(2, 10))]
        thread = i - (i % 5)
        headers = [
            f"From: Person {i % 7} <{sender}>",
            f"To: {rcpt}",
            f"Subject: {'Re: ' if i % 5 else ''}Project {thread} update",
            f"Message-ID: <bench{i}.{seed}@{domain}>",
            f"Date: {format_datetime(date)}",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
        ]
        if i % 5:
            headers.append(f"In-Reply-To: <bench{thread}.{seed}@{domain}>")
            headers.append(f"References: <bench{thread}.{seed}@{domain}>")
        yield ("\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(body) + "\r\n").encode()


def write_mbox(path: str, n: int, seed: int = 7) -> None:
    """Plain mboxo writer: fast for 100k messages; escapes 'From ' at line starts."""
    with open(path, "wb") as out:
        for i, raw in enumerate(generate(n, seed)):
            out.write(f"From bench@northwind.studio Thu Jan  1 00:00:{i % 60:02d} 2026\n".encode())
            for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
                if line.startswith(b"From "):
                    line = b">" + line
                out.write(line + b"\n")
            out.write(b"\n")

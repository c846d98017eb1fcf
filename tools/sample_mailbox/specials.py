"""Mail in the shared mailbox that is not client correspondence.

A bounce (DSN), a design newsletter, an unassigned prospect writing from
gmail.com and a print vendor: the analysis must ignore or leave unassigned
these, so the demo needs them.
"""

from __future__ import annotations

import email
import email.utils
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from zoneinfo import ZoneInfo

BERLIN = ZoneInfo("Europe/Berlin")


def _dsn(when: datetime) -> EmailMessage:
    date = email.utils.format_datetime(when)
    raw = f"""\
Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx1.northwind.studio>
To: priya@northwind.studio
Subject: Undelivered Mail Returned to Sender
Date: {date}
Message-ID: <20260612073145.9C1F2E0413@mx1.northwind.studio>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
 boundary="9C1F2E0413.1781249505/mx1.northwind.studio"

--9C1F2E0413.1781249505/mx1.northwind.studio
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.northwind.studio.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<b.okafor@acme-retail.com>: host mx.acme-retail.com[203.0.113.25] said:
    550 5.1.1 <b.okafor@acme-retail.com>: Recipient address rejected: User
    unknown in virtual mailbox table (in reply to RCPT TO command)

--9C1F2E0413.1781249505/mx1.northwind.studio
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.northwind.studio
Arrival-Date: {date}

Final-Recipient: rfc822; b.okafor@acme-retail.com
Original-Recipient: rfc822;b.okafor@acme-retail.com
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.acme-retail.com
Diagnostic-Code: smtp; 550 5.1.1 <b.okafor@acme-retail.com>: Recipient address
    rejected: User unknown in virtual mailbox table

--9C1F2E0413.1781249505/mx1.northwind.studio
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Priya Nair <priya@northwind.studio>
To: b.okafor@acme-retail.com
Subject: Sale banner sizes
Date: {date}
Message-ID: <CAPN7x2m+Q0bOKAFOR1@mail.gmail.com>

--9C1F2E0413.1781249505/mx1.northwind.studio--
"""
    return email.message_from_string(raw, policy=default_policy)  # type: ignore[return-value]


def _newsletter(when: datetime, issue: int) -> EmailMessage:
    em = EmailMessage(policy=default_policy)
    em["From"] = "Design Weekly <hello@news.designweekly.io>"
    em["To"] = "hello@northwind.studio"
    em["Subject"] = f"Design Weekly #{issue}: variable fonts, calmer dashboards"
    em["Date"] = email.utils.format_datetime(when)
    em["Message-ID"] = f"<dw-{issue}.20260000@news.designweekly.io>"
    em["Precedence"] = "bulk"
    em["List-Id"] = "Design Weekly <weekly.news.designweekly.io>"
    em["List-Unsubscribe"] = (
        f"<https://news.designweekly.io/u?i={issue}&r=nw>, "
        f"<mailto:unsub-{issue}@news.designweekly.io>")
    em["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = (
        f"Design Weekly #{issue}\n\n"
        "1. Variable fonts in production: what we learned shipping three of them\n"
        "2. Calmer dashboards: removing 40% of the charts made people use the rest\n"
        "3. Job board: 12 new studio roles in Berlin, Lisbon and remote\n\n"
        "You receive this because you subscribed at designweekly.io.\n"
        "Unsubscribe: https://news.designweekly.io/u\n")
    em.set_content(text)
    em.add_alternative(
        f"<html><body><h1>Design Weekly #{issue}</h1><ol><li>Variable fonts in production</li>"
        "<li>Calmer dashboards</li><li>Job board</li></ol><p style=\"font-size:11px\">"
        "<a href=\"https://news.designweekly.io/u\">Unsubscribe</a></p></body></html>\n",
        subtype="html")
    return em


def _plain(sender: str, to: str, subject: str, when: datetime, mid: str, body: str,
           reply_to: EmailMessage | None = None) -> EmailMessage:
    em = EmailMessage(policy=default_policy)
    em["From"] = sender
    em["To"] = to
    em["Subject"] = subject
    em["Date"] = email.utils.format_datetime(when)
    em["Message-ID"] = mid
    if reply_to is not None:
        em["In-Reply-To"] = reply_to["Message-ID"]
        em["References"] = reply_to["Message-ID"]
    em.set_content(body)
    return em


def build_specials(by_id: dict) -> list[tuple[datetime, EmailMessage]]:
    """Return (date, message) pairs; *by_id* is unused today but keeps the seam for links."""
    out: list[tuple[datetime, EmailMessage]] = []
    w = datetime(2026, 6, 12, 9, 31, tzinfo=BERLIN)
    out.append((w, _dsn(w)))
    for n, (m, d) in enumerate([(3, 12), (4, 9), (5, 14), (6, 11), (7, 9), (8, 13),
                                (9, 10), (10, 8)], start=211):
        w = datetime(2026, m, d, 7, 0, tzinfo=BERLIN)
        out.append((w, _newsletter(w, n)))

    w = datetime(2026, 9, 6, 20, 14, tzinfo=BERLIN)
    first = _plain(
        "Lena Hartmann <lena.hartmann88@gmail.com>", "hello@northwind.studio",
        "Website for my ceramics studio?", w, "<CAL3nahart88x9Qm@mail.gmail.com>",
        "Hi there,\n\nI found you through the Lindqvist Arkitekter site (lovely work!). I'm "
        "opening a small ceramics studio in Leipzig in spring and need a simple website with "
        "a shop for maybe 30 pieces and a course calendar.\n\nWhat would something like that "
        "cost roughly, and how long would it take? My budget is around 4,000 EUR.\n\n"
        "Thanks,\nLena\n\nSent from my iPhone\n")
    out.append((w, first))
    w2 = datetime(2026, 9, 7, 10, 5, tzinfo=BERLIN)
    reply = _plain(
        "Maria Keller <maria@northwind.studio>", "Lena Hartmann <lena.hartmann88@gmail.com>",
        "Re: Website for my ceramics studio?", w2, "<CAMK5nw-ceramics01@mail.gmail.com>",
        "Hi Lena,\n\nthank you, and congratulations on the studio! That budget fits a small "
        "shop with a course calendar well. Could we have a 30-minute call this week? Thursday "
        "or Friday morning would work for me.\n\nBest,\nMaria\n\n"
        "On Sun, Sep 6, 2026 at 8:14 PM Lena Hartmann <lena.hartmann88@gmail.com> wrote:\n"
        "> Hi there,\n>\n> I found you through the Lindqvist Arkitekter site (lovely work!).\n"
        "> My budget is around 4,000 EUR.\n", first)
    out.append((w2, reply))
    w3 = datetime(2026, 9, 7, 12, 48, tzinfo=BERLIN)
    out.append((w3, _plain(
        "Lena Hartmann <lena.hartmann88@gmail.com>", "Maria Keller <maria@northwind.studio>",
        "Re: Website for my ceramics studio?", w3, "<CAL3nahart88x9Qn@mail.gmail.com>",
        "Friday 10:00 would be perfect. Talk then!\n\nLena\n\n"
        "On Mon, Sep 7, 2026 at 10:05 AM Maria Keller <maria@northwind.studio> wrote:\n"
        "> Could we have a 30-minute call this week?\n", reply)))

    for m, d, job, amount in [(4, 21, "Helios presentation folders, 500 pcs", "1.180,00"),
                              (6, 3, "E-world booth graphics, 3 panels", "2.460,00"),
                              (9, 29, "Kestrel booth banners, reprint", "890,00")]:
        w = datetime(2026, m, d, 11, 30, tzinfo=BERLIN)
        out.append((w, _plain(
            "Druckerei Weber Auftragsservice <auftrag@druckerei-weber.de>",
            "Jonas Brandt <jonas@northwind.studio>",
            f"Auftragsbestätigung: {job}", w, f"<auftrag-{m:02d}{d:02d}@druckerei-weber.de>",
            f"Sehr geehrter Herr Brandt,\n\nwir bestätigen Ihren Auftrag: {job}.\n"
            f"Nettobetrag: {amount} EUR. Liefertermin: in 5 Werktagen.\n\n"
            "Mit freundlichen Grüßen\nIhr Team der Druckerei Weber\n")))
    return out

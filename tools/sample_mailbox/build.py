"""Build service/demo/sample.mbox from the hand-written threads in ``threads/*.txt``.

The threads are plain text so they can be read and edited like correspondence;
this module only adds what a mail client would: headers, threading, quoted
history in the sender's mail-client style, signatures, HTML parts, charsets.
Everything is derived from fixed data, so a rebuild is byte-identical.

Thread file syntax::

    === client-key | Subject of the first message
    > sender-handle MM-DD HH:MM [flag ...]
    body text ...

Flags: ``iphone`` (mobile signature), ``nosig``, ``noquote``, ``cc=handle``,
``attach=name.pdf``, ``invoice=MM`` (body built from the invoice template),
``html`` (send HTML only), ``ooo`` (auto-reply). Lines starting with ``#``
outside bodies are comments.
"""

from __future__ import annotations

import email.utils
import hashlib
import html
import mailbox
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as a script: python tools/sample_mailbox/build.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.sample_mailbox.people import CLIENTS, PEOPLE, Person

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OUTPUT = REPO / "service" / "demo" / "sample.mbox"
YEAR = 2026
MONTHS = ["", "January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


@dataclass
class Msg:
    """One message as written in a thread file, before it becomes MIME."""

    sender: Person
    when: datetime
    body: str
    flags: dict[str, str] = field(default_factory=dict)
    subject: str = ""
    message_id: str = ""
    to: list[Person] = field(default_factory=list)
    cc: list[Person] = field(default_factory=list)
    text: str = ""  # body + signature + quoted history, as sent


@dataclass
class Thread:
    client: str
    subject: str
    msgs: list[Msg]


def _stable_hex(*parts: str, n: int = 16) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:n]


def parse_threads(text: str, source: str) -> list[Thread]:
    """Parse the thread DSL; raises ValueError naming the file and line on mistakes."""
    threads: list[Thread] = []
    current: Thread | None = None
    body: list[str] | None = None

    def close_body() -> None:
        if current is not None and current.msgs and body is not None:
            current.msgs[-1].body = "\n".join(body).strip("\n")

    for lineno, line in enumerate(text.splitlines(), 1):
        where = f"{source}:{lineno}"
        if line.startswith("=== "):
            close_body()
            body = None
            key, _, subject = line[4:].partition(" | ")
            if key.strip() not in CLIENTS:
                raise ValueError(f"{where}: unknown client {key!r}")
            current = Thread(key.strip(), subject.strip(), [])
            threads.append(current)
        elif line.startswith("> ") and re.match(r"> \S+ \d\d-\d\d \d\d:\d\d", line):
            close_body()
            if current is None:
                raise ValueError(f"{where}: message outside a thread")
            handle, day, clock, *rest = line[2:].split()
            if handle not in PEOPLE:
                raise ValueError(f"{where}: unknown sender {handle!r}")
            person = PEOPLE[handle]
            month, dom = (int(x) for x in day.split("-"))
            hour, minute = (int(x) for x in clock.split(":"))
            when = datetime(YEAR, month, dom, hour, minute, tzinfo=ZoneInfo(person.tz))
            flags = dict(([*f.split("=", 1), ""])[:2] for f in rest)
            current.msgs.append(Msg(person, when, "", flags))
            body = []
        elif body is not None:
            body.append(line)
        elif line.strip() and not line.startswith("#"):
            raise ValueError(f"{where}: text outside a message")
    close_body()
    return threads


def invoice_body(client_key: str, month: int) -> tuple[str, str]:
    """Invoice mail text and number; amounts come from the client's retainer."""
    c = CLIENTS[client_key]
    number = f"NW-{YEAR}-{month:02d}{c.code}"
    first = PEOPLE[c.contacts[0]].name.split()[0]
    amount = f"{c.revenue:,.2f}".replace(",", " ")
    due = datetime(YEAR, month, 1) + timedelta(days=30)
    text = (
        f"Dear {first},\n\n"
        f"please find attached invoice {number} for {MONTHS[month]} {YEAR} "
        f"({c.service}).\n\n"
        f"Amount: {amount} EUR\nDue date: {due:%d %B %Y}\n"
        "Bank: Berliner Volksbank, IBAN DE12 1009 0000 2345 6789 01\n\n"
        "Thank you for working with us.\n\nNorthwind Studio Accounts"
    )
    return text, number


def _pdf_bytes(title: str) -> bytes:
    """A tiny but well-formed one-page PDF, so attachments look like the real thing."""
    stream = f"BT /F1 12 Tf 72 720 Td ({title}) Tj ET".encode("latin-1")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1, xref)
    return bytes(out)


def _attribution(msg: Msg, style: str) -> str:
    who = f"{msg.sender.name} <{msg.sender.email}>"
    w = msg.when
    if style == "apple":
        return f"On {w.day} {w:%b %Y}, at {w:%H:%M}, {who} wrote:"
    if style == "german":
        return f"Am {w:%d.%m.%Y} um {w:%H:%M} schrieb {who}:"
    if style == "french":
        return f"Le {w:%d/%m/%Y} à {w:%H:%M}, {who} a écrit :"
    hour = w.strftime("%I").lstrip("0")
    return f"On {w:%a}, {w:%b} {w.day}, {w.year} at {hour}:{w:%M} {w:%p} {who} wrote:"


def _outlook_block(prev: Msg) -> str:
    w = prev.when
    to = "; ".join(f"{p.name} <{p.email}>" for p in prev.to)
    return (
        f"From: {prev.sender.name} <{prev.sender.email}>\n"
        f"Sent: {w:%A}, {w:%B} {w.day}, {w.year} {w:%I:%M %p}\n"
        f"To: {to}\nSubject: {prev.subject}"
    )


def compose_text(msg: Msg, prev: Msg | None) -> str:
    """New text + signature + the quoted previous message, as the sender's client does."""
    parts = [msg.body.rstrip()]
    style = msg.sender.style
    if "iphone" in msg.flags:
        parts.append("Sent from my iPhone")
    elif "nosig" not in msg.flags and msg.sender.signature and "ooo" not in msg.flags:
        sep = "-- \n" if style in ("plain", "apple") else ""
        parts.append(sep + msg.sender.signature)
    text = "\n\n".join(parts)
    if prev is None or "noquote" in msg.flags or "ooo" in msg.flags:
        return text + "\n"
    if style == "outlook":
        return f"{text}\n\n________________________________\n{_outlook_block(prev)}\n\n{prev.text}"
    quoted = "\n".join(">" + (" " + ln if ln and not ln.startswith(">") else ln)
                       for ln in prev.text.rstrip("\n").split("\n"))
    return f"{text}\n\n{_attribution(prev, style)}\n{quoted}\n"


def _html_paragraphs(text: str) -> str:
    blocks = [b for b in text.strip("\n").split("\n\n") if b.strip()]
    return "".join(
        "<div>" + "<br>\n".join(html.escape(line) for line in b.split("\n"))
        + "</div><div><br></div>\n"
        for b in blocks)


def compose_html(msg: Msg, prev: Msg | None, own_text: str) -> str:
    """HTML body carrying the quote markers real clients use (gmail_quote, divRplyFwdMsg)."""
    own = _html_paragraphs(own_text)
    if prev is None or "noquote" in msg.flags:
        quote = ""
    elif msg.sender.style == "outlook":
        w = prev.when
        to = "; ".join(html.escape(f"{p.name} <{p.email}>") for p in prev.to)
        quote = (
            '<hr style="display:inline-block;width:98%" tabindex="-1">\n'
            '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
            'style="font-size:11pt" color="#000000"><b>From:</b> '
            f"{html.escape(prev.sender.name)} &lt;{prev.sender.email}&gt;<br>\n"
            f"<b>Sent:</b> {w:%A}, {w:%B} {w.day}, {w.year} {w:%I:%M %p}<br>\n"
            f"<b>To:</b> {to}<br>\n<b>Subject:</b> {html.escape(prev.subject)}</font>"
            "<div>&nbsp;</div></div>\n"
            f"<div>{_html_paragraphs(prev.text)}</div>\n"
        )
    else:
        quote = (
            '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
            f"{html.escape(_attribution(prev, msg.sender.style))}<br></div>\n"
            '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
            'border-left:1px solid rgb(204,204,204);padding-left:1ex">\n'
            f"{_html_paragraphs(prev.text)}</blockquote></div>\n"
        )
    if msg.sender.style == "outlook":
        return (
            '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
            '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} '
            "</style></head>\n<body dir=\"ltr\"><div class=\"elementToProof\" "
            'style="font-family: Aptos, Calibri, Helvetica, sans-serif; font-size: 12pt;">\n'
            f"{own}</div>\n{quote}</body></html>\n"
        )
    return f'<div dir="ltr">\n{own}</div><br>\n{quote}'


def _reply_subject(subject: str, sender: Person) -> str:
    base = re.sub(r"^((re|aw|fw|wg|tr):\s*)+", "", subject, flags=re.I)
    prefix = {"german": "AW: ", "french": "RE: ", "outlook": "RE: "}.get(sender.style, "Re: ")
    return prefix + base


def _message_id(thread: Thread, index: int, msg: Msg) -> str:
    h = _stable_hex(thread.client, thread.subject, str(index), msg.sender.email)
    domain = {
        "outlook": "EUR05.PROD.OUTLOOK.COM", "gmail": "mail.gmail.com",
    }.get(msg.sender.style, msg.sender.email.split("@", 1)[1])
    if msg.sender.style == "gmail" or msg.sender.client is None:
        return f"<CA{h.upper()}{_stable_hex(h, n=12)}@mail.gmail.com>"
    return f"<{h.upper()}@{domain}>"


def _recipients(thread: Thread, index: int) -> tuple[list[Person], list[Person]]:
    msg = thread.msgs[index]
    client = CLIENTS[thread.client]
    mine_is_staff = msg.sender.client is None
    earlier = thread.msgs[:index][::-1]
    other = next((m.sender for m in earlier if (m.sender.client is None) != mine_is_staff), None)
    if other is None:
        other = PEOPLE[client.contacts[0]] if mine_is_staff else PEOPLE[client.owner]
    if other.handle == "accounts" and not mine_is_staff:
        other = PEOPLE["accounts"]
    cc = [PEOPLE[h] for h in msg.flags.get("cc", "").split(",") if h]
    for m in earlier:  # keep earlier CCs on replies, like reply-all
        for p in m.cc:
            if p not in cc and p is not msg.sender and p is not other:
                cc.append(p)
    return [other], cc


def build_message(thread: Thread, index: int, by_id: dict[str, Msg]) -> EmailMessage:
    msg = thread.msgs[index]
    prev = thread.msgs[index - 1] if index else None
    msg.subject = thread.subject if prev is None else _reply_subject(prev.subject, msg.sender)
    if "ooo" in msg.flags:
        msg.subject = f"Automatic reply: {prev.subject if prev else thread.subject}"
        if msg.sender.style == "german":
            msg.subject = f"Abwesenheitsnotiz: {prev.subject if prev else thread.subject}"
    if "invoice" in msg.flags:
        msg.body, _number = invoice_body(thread.client, int(msg.flags["invoice"]))
    msg.message_id = _message_id(thread, index, msg)
    msg.to, msg.cc = _recipients(thread, index)
    msg.text = compose_text(msg, prev)

    em = EmailMessage(policy=default_policy)
    em["From"] = email.utils.formataddr((msg.sender.name, msg.sender.email))
    em["To"] = ", ".join(email.utils.formataddr((p.name, p.email)) for p in msg.to)
    if msg.cc:
        em["Cc"] = ", ".join(email.utils.formataddr((p.name, p.email)) for p in msg.cc)
    em["Subject"] = msg.subject
    em["Date"] = email.utils.format_datetime(msg.when)
    em["Message-ID"] = msg.message_id
    if prev is not None:
        em["In-Reply-To"] = prev.message_id
        refs = [m.message_id for m in thread.msgs[:index]][-8:]
        em["References"] = " ".join(refs)
    em["MIME-Version"] = "1.0"
    if msg.sender.style == "outlook":
        em["Thread-Topic"] = re.sub(r"^((re|aw):\s*)+", "", msg.subject, flags=re.I)
        em["X-MS-Has-Attach"] = "yes" if "attach" in msg.flags else ""
    if "ooo" in msg.flags:
        em["Auto-Submitted"] = "auto-replied"
        em["X-Auto-Response-Suppress"] = "All"
        if msg.sender.style == "outlook" or msg.sender.style == "german":
            em["X-MS-Exchange-Inbox-Rules-Loop"] = msg.sender.email

    charset = msg.sender.charset
    if "html" in msg.flags or (msg.sender.style == "outlook" and "ooo" not in msg.flags \
            and msg.sender.html_only):
        em.set_content(compose_html(msg, prev, msg.text if prev is None else
                                    msg.text.split("\n\n________________________________")[0]),
                       subtype="html", charset=charset)
    elif msg.sender.style in ("gmail", "outlook") and "ooo" not in msg.flags:
        em.set_content(msg.text, charset=charset)
        own = msg.text.split("\n\n________________________________")[0] \
            if msg.sender.style == "outlook" else compose_text(
                Msg(msg.sender, msg.when, msg.body, {**msg.flags, "noquote": ""}), None)
        em.add_alternative(compose_html(msg, prev, own), subtype="html", charset=charset)
    else:
        em.set_content(msg.text, charset=charset,
                       cte="quoted-printable" if charset != "utf-8" else None)
    if "attach" in msg.flags:
        name = msg.flags["attach"]
        em.add_attachment(_pdf_bytes(name.rsplit(".", 1)[0]), maintype="application",
                          subtype="pdf", filename=name)
    by_id[msg.message_id] = msg
    return em


def _fix_boundaries(em: EmailMessage, seed: str) -> None:
    """The stdlib picks random MIME boundaries; pin them so rebuilds are identical."""
    for n, part in enumerate(em.walk()):
        if part.is_multipart():
            part.set_boundary(f"==NW{_stable_hex(seed, str(n), n=24)}==")


def special_messages(by_id: dict[str, Msg]) -> list[tuple[datetime, EmailMessage]]:
    """Mail that is not client correspondence: DSN, newsletter, prospect, vendor."""
    from tools.sample_mailbox.specials import build_specials

    return build_specials(by_id)


def load_threads() -> list[Thread]:
    threads: list[Thread] = []
    for path in sorted((HERE / "threads").glob("*.txt")):
        threads += parse_threads(path.read_text(encoding="utf-8"), path.name)
    return threads


def build(path: Path = OUTPUT) -> int:
    """Write the mbox to *path* and return the number of messages written."""
    by_id: dict[str, Msg] = {}
    items: list[tuple[datetime, str, EmailMessage]] = []
    for thread in load_threads():
        for i in range(len(thread.msgs)):
            if i and thread.msgs[i].when <= thread.msgs[i - 1].when:
                raise ValueError(
                    f"{thread.client} / {thread.subject}: message {i} goes back in time")
            em = build_message(thread, i, by_id)
            _fix_boundaries(em, thread.msgs[i].message_id)
            items.append((thread.msgs[i].when, thread.msgs[i].message_id, em))
    for when, em in special_messages(by_id):
        _fix_boundaries(em, em["Message-ID"])
        items.append((when, em["Message-ID"], em))
    items.sort(key=lambda it: (it[0].astimezone(UTC), it[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".mbox.tmp")
    tmp.unlink(missing_ok=True)
    box = mailbox.mbox(tmp, create=True)
    box.lock()
    try:
        for when, _, em in items:
            mm = mailbox.mboxMessage(em)
            sender = email.utils.parseaddr(str(em["From"]))[1] or "MAILER-DAEMON"
            mm.set_from(sender, when.astimezone(UTC).timetuple())
            box.add(mm)
        box.flush()
    finally:
        box.unlock()
        box.close()
    tmp.replace(path)
    return len(items)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else OUTPUT
    n = build(target)
    print(f"wrote {n} messages to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

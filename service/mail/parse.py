"""Raw RFC 5322 bytes -> :class:`ParsedMessage` (pure: no I/O, never raises).

Real shared mailboxes hold everything: 8-bit headers, lying charsets, missing
boundaries, 30 MB attachments. Every message must still be stored and
analysed, so every problem degrades to a human-readable defect instead of an
exception. Parsing uses the ``compat32`` policy: it is several times faster
than ``policy.default`` and never chokes on header syntax; decoding (RFC 2047,
charsets) is done here with explicit fallbacks.
"""

from __future__ import annotations

import binascii
import codecs
import email.utils
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser

from service.mail.auto import detect_auto_generated
from service.mail.replies import extract_new_text, html_to_text

__all__ = ["MAX_DEPTH", "Attachment", "ParsedMessage", "decode_bytes", "parse_message"]

#: Deepest multipart nesting walked; real mail rarely exceeds 5 levels.
MAX_DEPTH = 20
#: Longest subject kept; longer ones are junk or attacks, not content.
MAX_SUBJECT = 2000
#: Most leaf parts examined; beyond that the message is an attack, not mail.
MAX_PARTS = 500
SYNTH_DOMAIN = "saygoodbye.invalid"


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int  # decoded size in bytes; attachment content is NOT kept


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str
    message_id_synthesized: bool
    raw_sha256: str
    size: int
    from_addr: str | None
    from_name: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    date: datetime | None
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]
    thread_key: str
    text: str
    new_text: str
    html_only: bool
    auto_generated: bool
    auto_reason: str | None
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...]
    authentication_results: tuple[str, ...]
    auto_submitted: str | None
    headers_ok: bool


# --------------------------------------------------------------------------- text decoding

# Charset labels seen in the wild that Python does not know, or knows as a
# narrower codec than the senders actually used.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "ascii": "us-ascii",
    "ansi_x3.4-1968": "us-ascii",
    "iso-8859-1": "cp1252",  # senders labelled cp1252 text latin-1 for decades
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}
_UNKNOWN_CHARSETS = {"unknown-8bit", "x-unknown", "unknown", "default", "charset", ""}


def _codec_for(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    if label in _UNKNOWN_CHARSETS:
        return None
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):  # ValueError: a NUL inside the label
        return None


_STRAY = re.compile("[\udc80-\udcff]+")


def _mixed_decode(data: bytes) -> str:
    """UTF-8 where valid, windows-1252 for the stray bytes (mixed-encoding text is common)."""
    text = data.decode("utf-8", "surrogateescape")

    def legacy(m: re.Match[str]) -> str:
        raw = m.group(0).encode("utf-8", "surrogateescape")
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
            return raw.decode("latin-1")

    return _STRAY.sub(legacy, text)


def decode_bytes(data: bytes, charset: str | None, defects: list[str], where: str) -> str:
    """Decode with the declared charset, then utf-8, then cp1252/latin-1.

    Never loses text: latin-1 maps every byte. A defect is recorded whenever
    the declared charset was unknown or wrong.
    """
    codec = _codec_for(charset)
    if charset and codec is None and charset.strip().lower() not in _UNKNOWN_CHARSETS:
        defects.append(f"{where}: unknown charset {charset!r}")
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            if codec not in ("ascii", "us-ascii"):
                defects.append(f"{where}: text is not valid {charset}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec is not None or charset:
        fallback_note = f"{where}: decoded as windows-1252"
    else:
        fallback_note = f"{where}: undeclared 8-bit text decoded as windows-1252"
    defects.append(fallback_note)
    return _mixed_decode(data)


def _unescape_8bit(value: str, defects: list[str], where: str) -> str:
    """Recover raw 8-bit header bytes that the parser kept as surrogates."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        defects.append(f"{where}: raw 8-bit header is not utf-8 (windows-1252 assumed)")
        return _mixed_decode(raw)


_WS = re.compile(r"\s+")


_EWORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_BETWEEN_EWORDS = re.compile(r"(\?=)[ \t\r\n]+(?==\?[^?\s]+\?[QqBb]\?)")


def _decode_words(value: str, defects: list[str], where: str) -> str:
    """RFC 2047 decoding with per-word charset fallback (also inside unquoted non-ASCII text)."""
    if "=?" not in value:
        return value
    value = _BETWEEN_EWORDS.sub(r"\1", value)  # whitespace between encoded words is not content

    def one(m: re.Match[str]) -> str:
        charset, enc, data = m.group(1), m.group(2).upper(), m.group(3)
        charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
        try:
            if enc == "B":
                raw = binascii.a2b_base64(data + "=" * (-len(data) % 4))
            else:
                raw = binascii.a2b_qp(data.replace("_", " ").encode("ascii", "replace"))
        except (binascii.Error, ValueError):
            defects.append(f"{where}: malformed encoded-word")
            return m.group(0)
        return decode_bytes(raw, charset, defects, where)

    return _EWORD.sub(one, value)


def _header_text(value: object, defects: list[str], where: str) -> str:
    text = _unescape_8bit(str(value), defects, where)
    text = _decode_words(text, defects, where)
    return _WS.sub(" ", text).strip()


# --------------------------------------------------------------------------- headers

_MSGID = re.compile(r"<\s*([^<>\s]+?)\s*>")
_BARE_ID = re.compile(r"[^\s<>,;()\"]+@[^\s<>,;()\"]+")


def _ids(value: str) -> list[str]:
    """All message ids in a header, tolerating commas, comments and junk."""
    found = [f"<{m}>" for m in _MSGID.findall(value) if len(m) < 990]
    if not found:
        found = [f"<{m.strip('<>')}>" for m in _BARE_ID.findall(value) if len(m) < 990]
    seen: set[str] = set()
    out = []
    for i in found:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


_ADDR = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def _addresses(values: list[str], defects: list[str], where: str) -> list[tuple[str | None, str]]:
    """(display name, lower-cased addr-spec) pairs; unparseable text salvaged by regex."""
    out: list[tuple[str | None, str]] = []
    for raw in values:
        value = _unescape_8bit(raw, defects, where)
        try:
            pairs = email.utils.getaddresses([value])
        except Exception:
            pairs = []
        good = [(n, a) for n, a in pairs if "@" in a and " " not in a.strip()]
        if not good and "@" in value:
            defects.append(f"{where}: unparseable address list")
            good = [("", a) for a in _ADDR.findall(value)]
        for name, addr in good:
            addr = addr.strip().strip("<>").lower()
            if not addr:
                continue
            name = _decode_words(name, defects, where).strip().strip("\"'") if name else ""
            out.append((_WS.sub(" ", name) or None, addr))
    return out


def _parse_date(value: str | None, defects: list[str]) -> datetime | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        defects.append("Date: empty")
        return None
    dt: datetime | None = None
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            dt = None
    if dt is None:
        defects.append(f"Date: unparseable {value[:80]!r}")
        return None
    if not 1970 <= dt.year <= 2200:
        defects.append(f"Date: implausible {value[:80]!r}")
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # "-0000" or no zone: RFC 5322 says UTC is the best guess
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        defects.append(f"Date: out of range {value[:80]!r}")
        return None


# --------------------------------------------------------------------------- body


@dataclass
class _Body:
    plain: list[str]
    html: list[str]
    attachments: list[Attachment]
    defects: list[str]
    elided: dict[str, _Elided] = field(default_factory=dict)
    raw: bytes = b""
    parts: int = 0


def _defect_name(defect: object) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return words or str(defect)


def _decoded_size(part: Message, body: _Body) -> int:
    """Decoded payload size without materialising a decoded copy."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return 0
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if body.elided and "saygoodbye-elided-" in payload:
        size = 0
        for marker in _MARKER.findall(payload):
            run = body.elided.get(marker)
            if run is not None:
                size += run.base64_size if cte == "base64" else run.end - run.start
        rest = _MARKER.sub("", payload).strip()
        if cte == "base64":
            size += max(0, len("".join(rest.split())) * 3 // 4 - rest[-2:].count("="))
        else:
            size += len(rest)
        return size
    if cte == "base64":
        ws = payload.count("\n") + payload.count("\r") + payload.count(" ") + payload.count("\t")
        chars = len(payload) - ws
        tail = payload.rstrip()[-2:]
        pad = tail.count("=")
        return max(0, chars * 3 // 4 - pad)
    if cte == "quoted-printable":
        total = 0
        step = 1 << 20
        start = 0
        while start < len(payload):
            end = payload.find("\n", start + step)
            end = len(payload) if end < 0 else end + 1
            chunk = payload[start:end].encode("ascii", "surrogateescape")
            try:
                total += len(binascii.a2b_qp(chunk))
            except binascii.Error:
                total += len(chunk)
            start = end
        return total
    # 7bit/8bit/binary: compat32 may hand back decoded text; count the encoded bytes.
    return len(payload) if payload.isascii() else len(payload.encode("utf-8", "surrogateescape"))


def _filename(part: Message, defects: list[str]) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None:
        return None
    return _header_text(name, defects, "attachment filename") or None


def _restore(part: Message, body: _Body) -> None:
    """Put elided runs back into a part whose text is needed (rare: huge text bodies)."""
    payload = part.get_payload()
    if not (body.elided and isinstance(payload, str) and "saygoodbye-elided-" in payload):
        return

    def back(m: re.Match[str]) -> str:
        run = body.elided.get(m.group(0))
        if run is None:
            return m.group(0)
        return body.raw[run.start : run.end].decode("ascii", "surrogateescape").rstrip("\r\n")

    part.set_payload(_MARKER.sub(back, payload))


def _part_text(part: Message, defects: list[str], where: str) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        defects.append(f"{where}: undecodable transfer encoding")
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    if not isinstance(data, bytes):
        return ""
    params: dict[str, object] = {}
    try:
        for key, value in part.get_params() or ():
            params.setdefault(str(key).lower(), value)
    except Exception:
        defects.append(f"{where}: unparseable Content-Type parameters")
    charset = params.get("charset")
    if isinstance(charset, tuple):  # RFC 2231 encoded parameter
        charset = charset[2] if len(charset) == 3 else None
    if not isinstance(charset, str):
        charset = None
    text = decode_bytes(data, charset, defects, where)
    fmt = str(params.get("format") or "").strip('"').lower()
    delsp = str(params.get("delsp") or "").strip('"').lower() == "yes"
    if fmt == "flowed":
        text = unflow(text, delsp)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def unflow(text: str, delsp: bool = False) -> str:
    """Undo RFC 3676 format=flowed soft line breaks (keeps quote depth)."""
    out: list[str] = []
    current: str | None = None
    depth_of_current = -1
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.lstrip(">")
        depth = len(line) - len(stripped)
        if stripped.startswith(" "):
            stripped = stripped[1:]  # space-stuffing
        if current is not None and depth == depth_of_current:
            current += stripped
        else:
            if current is not None:
                out.append(current)
            current = (">" * depth + " " if depth else "") + stripped
            depth_of_current = depth
        if stripped.endswith(" ") and stripped != "-- ":
            if delsp:
                current = current[:-1]
        else:
            out.append(current)
            current = None
    if current is not None:
        out.append(current)
    return "\n".join(out)


def _is_attachment(part: Message, ctype: str) -> bool:
    disposition = str(part.get("content-disposition", "")).split(";")[0].strip().lower()
    if disposition == "attachment":
        return True
    return ctype not in ("text/plain", "text/html")


def _walk(part: Message, depth: int, body: _Body) -> None:
    for d in getattr(part, "defects", ()):
        body.defects.append(_defect_name(d))
    if depth > MAX_DEPTH:
        body.defects.append(f"multipart nested deeper than {MAX_DEPTH} levels: inner parts skipped")
        return
    try:
        ctype = part.get_content_type()
    except Exception:
        ctype = "text/plain"
    payload = part.get_payload()
    if ctype == "message/rfc822" or (isinstance(payload, list) and not part.is_multipart()):
        name = _filename(part, body.defects)
        body.attachments.append(Attachment(name, ctype, _nested_size(part)))
        if ctype == "message/rfc822" and not _is_attachment(part, "text/plain"):
            _forwarded_inline(part, depth, body)
        return
    if ctype.startswith("multipart/") and not isinstance(payload, list):
        body.defects.append(f"{ctype} without parts: body read as text")
        ctype = "text/plain"
    elif isinstance(payload, list):
        for sub in payload:
            if body.parts >= MAX_PARTS:
                body.defects.append(f"more than {MAX_PARTS} parts: the rest skipped")
                return
            if isinstance(sub, Message):
                _walk(sub, depth + 1, body)
        return
    body.parts += 1
    filename = _filename(part, body.defects)
    if _is_attachment(part, ctype):
        body.attachments.append(Attachment(filename, ctype, _decoded_size(part, body)))
        return
    _restore(part, body)
    where = "html part" if ctype == "text/html" else "text part"
    text = _part_text(part, body.defects, where)
    (body.html if ctype == "text/html" else body.plain).append(text)


def _forwarded_inline(part: Message, depth: int, body: _Body) -> None:
    """An inline forwarded message (a whole-message forward, Groupwise, Apple Mail "forward
    as attachment" shown inline) becomes part of the text, under a forward separator, so
    the reader sees it and new-text extraction cuts it off as history, not new words."""
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if not isinstance(inner, Message):
        return
    sub = _Body([], [], [], body.defects, body.elided, body.raw, parts=body.parts)
    _walk(inner, depth + 1, sub)
    body.parts = sub.parts  # the part budget covers nested messages too
    body.attachments.extend(sub.attachments)
    plain = "\n".join(p for p in sub.plain if p.strip())
    html = next((h for h in sub.html if h.strip()), None)
    text = plain or (_html_to_text(html, body.defects) if html else "")
    lines = ["---------- Forwarded message ----------"]
    for label in ("From", "Date", "Subject", "To"):
        value = inner.get(label)
        if value is not None:
            lines.append(f"{label}: {_header_text(str(value), body.defects, label)}")
    body.plain.append("\n".join(lines) + "\n\n" + text)


def _nested_size(part: Message) -> int:
    try:
        return len(part.as_bytes(policy=policy.compat32))
    except Exception:
        return 0


def _html_to_text(html: str, defects: list[str]) -> str:
    try:
        return html_to_text(html).strip("\n")
    except Exception:
        defects.append("html part: could not be converted; tags stripped")
        return re.sub(r"<[^>]*>", " ", html)


# --------------------------------------------------------------------------- large bodies

#: Messages above this size get long encoded runs elided before MIME parsing.
ELIDE_ABOVE = 1 << 20
# 2000+ consecutive lines of base64 alphabet: an encoded attachment body. Header
# lines (":"), boundaries ("--") and prose (spaces) never match.
_B64_RUN = re.compile(
    rb"(?m)(?>^[A-Za-z0-9+/=]{1,998}+\r?\n){2000,}+"
)  # atomic: no backtrack stack


@dataclass(frozen=True)
class _Elided:
    start: int
    end: int
    base64_size: int


def _elide(raw: bytes) -> tuple[bytes, dict[str, _Elided]]:
    """Replace long encoded runs by a marker line so the line-based parser never copies them.

    The email package splits a 40 MB attachment into half a million line
    strings and joins them again: about 8x the message size at peak. Sizes
    are computed from the raw bytes instead, without copying.
    """
    if len(raw) <= ELIDE_ABOVE:
        return raw, {}
    nonce = secrets.token_hex(8)
    pieces: list[bytes] = []
    elided: dict[str, _Elided] = {}
    pos = 0
    for m in _B64_RUN.finditer(raw):
        start, end = m.span()
        ws = raw.count(b"\n", start, end) + raw.count(b"\r", start, end)
        tail = raw[max(start, end - 4) : end]
        chars = end - start - ws
        size = max(0, chars * 3 // 4 - tail.count(b"="))
        marker = f"saygoodbye-elided-{nonce}-{len(elided)}"
        elided[marker] = _Elided(start, end, size)
        pieces.append(raw[pos:start])
        pieces.append(marker.encode("ascii") + b"\n")
        pos = end
    if not elided:
        return raw, {}
    pieces.append(raw[pos:])
    return b"".join(pieces), elided


_MARKER = re.compile(r"saygoodbye-elided-[0-9a-f]{16}-\d+")


# --------------------------------------------------------------------------- entry point


def _parse_tree(raw: bytes, defects: list[str]) -> tuple[Message, bool]:
    """Full parse, falling back to headers-only when the MIME tree defeats the parser."""
    try:
        return BytesParser(_class=EmailMessage, policy=policy.compat32).parsebytes(raw), True
    except RecursionError:
        defects.append("MIME structure nested too deeply to parse: body kept as raw text")
    except Exception as exc:
        defects.append(f"MIME structure unparseable ({type(exc).__name__}): body kept as raw text")
    try:
        msg = BytesHeaderParser(_class=EmailMessage, policy=policy.compat32).parsebytes(raw)
    except Exception:
        msg = EmailMessage(policy=policy.compat32)
        msg.set_payload(raw.decode("latin-1"))
    return msg, False


_STRUCTURAL_HEADER_DEFECTS = ("missing header body separator", "first header line is folded")


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse any bytes into a :class:`ParsedMessage`; problems become ``defects``."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raw = bytes(str(raw), "utf-8", "surrogateescape")
    raw = bytes(raw)
    sha = hashlib.sha256(raw).hexdigest()
    defects: list[str] = []
    try:
        to_parse, elided = _elide(raw)
    except Exception:
        to_parse, elided = raw, {}
    msg, full = _parse_tree(to_parse, defects)
    del to_parse

    headers: dict[str, list[str]] = {}
    try:
        for name, value in msg.raw_items():
            headers.setdefault(str(name).strip().lower(), []).append(str(value))
    except Exception:
        defects.append("header block unreadable")

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    # Message-ID
    mid_raw = first("message-id")
    mids = _ids(_unescape_8bit(mid_raw, defects, "Message-ID")) if mid_raw is not None else []
    if mids:
        message_id, synthesized = mids[0], False
    else:
        if mid_raw is not None:
            defects.append("Message-ID: unusable value, synthesized from content")
        message_id, synthesized = f"<{sha}@{SYNTH_DOMAIN}>", True

    froms = _addresses(headers.get("from", []), defects, "From")
    if not froms and "from" in headers:
        defects.append("From: no address found")
    from_name, from_addr = froms[0] if froms else (None, None)
    to = tuple(a for _, a in _addresses(headers.get("to", []), defects, "To"))
    cc = tuple(a for _, a in _addresses(headers.get("cc", []), defects, "Cc"))
    reply_to = tuple(a for _, a in _addresses(headers.get("reply-to", []), defects, "Reply-To"))

    date_raw = first("date")
    date = _parse_date(
        _unescape_8bit(date_raw, defects, "Date") if date_raw is not None else None, defects
    )

    subj_raw = first("subject")
    subject = _header_text(subj_raw, defects, "Subject") if subj_raw is not None else ""
    if len(subject) > MAX_SUBJECT:
        defects.append(f"Subject: longer than {MAX_SUBJECT} characters, truncated")
        subject = subject[:MAX_SUBJECT]

    irt_raw = first("in-reply-to")
    irt_ids = _ids(_unescape_8bit(irt_raw, defects, "In-Reply-To")) if irt_raw else []
    in_reply_to = irt_ids[0] if irt_ids else None
    ref_values = headers.get("references", [])
    references = tuple(_ids(" ".join(_unescape_8bit(v, defects, "References") for v in ref_values)))
    thread_key = references[0] if references else (in_reply_to or message_id)

    body = _Body([], [], [], defects, elided, raw)
    if full:
        try:
            _walk(msg, 0, body)
        except RecursionError:
            defects.append("MIME structure nested too deeply: some parts skipped")
        except Exception as exc:  # salvage what was collected so far
            defects.append(f"MIME walk failed ({type(exc).__name__}): some parts skipped")
    else:
        _restore(msg, body)
        payload = msg.get_payload()
        if isinstance(payload, str):
            data = payload.encode("utf-8", "surrogateescape")
            body.plain.append(decode_bytes(data, None, defects, "raw body"))

    html = next((h for h in body.html if h.strip()), None)
    plain = "\n".join(p for p in body.plain if p.strip())
    html_only = not plain.strip() and html is not None
    text = _html_to_text(html, defects) if html_only and html is not None else plain
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        new_text = extract_new_text(text, html)
    except Exception as exc:  # extraction is heuristic; the full text is still correct
        defects.append(f"new-text extraction failed ({type(exc).__name__})")
        new_text = text.strip()

    try:
        auto, reason = detect_auto_generated(msg)
    except Exception:
        auto, reason = False, None

    auto_submitted = first("auto-submitted")
    if auto_submitted is not None:
        auto_submitted = _header_text(auto_submitted, defects, "Auto-Submitted")
    auth = tuple(
        _WS.sub(" ", _unescape_8bit(v, defects, "Authentication-Results")).strip()
        for v in headers.get("authentication-results", [])
    )

    core = ("from", "date", "message-id", "subject", "to")
    headers_ok = (
        full
        and any(k in headers for k in core)
        and not any(d.startswith(_STRUCTURAL_HEADER_DEFECTS) for d in defects)
    )
    seen: set[str] = set()
    unique_defects = tuple(d for d in defects if not (d in seen or seen.add(d)))

    return ParsedMessage(
        message_id=message_id,
        message_id_synthesized=synthesized,
        raw_sha256=sha,
        size=len(raw),
        from_addr=from_addr,
        from_name=from_name,
        to=to,
        cc=cc,
        reply_to=reply_to,
        date=date,
        subject=subject,
        in_reply_to=in_reply_to,
        references=references,
        thread_key=thread_key,
        text=text,
        new_text=new_text,
        html_only=html_only,
        auto_generated=auto,
        auto_reason=reason,
        attachments=tuple(body.attachments),
        defects=unique_defects,
        authentication_results=auth,
        auto_submitted=auto_submitted,
        headers_ok=headers_ok,
    )

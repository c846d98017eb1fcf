"""What the sender wrote in *this* message: no quoted history, no signature.

Tone and friction are judged on new text only; quoting a client's angry mail
back to them must not count against the reply. Existing libraries
(email-reply-parser, mail-parser-reply) each get well under half of real
replies exactly right (see ``bench/replies_eval.py``), so this module does
its own work in two layers:

1. HTML structure, when the big clients' quote markers are present
   (``gmail_quote``, ``blockquote type=cite``, Outlook ``divRplyFwdMsg`` /
   ``appendonsend`` / the ``border-top`` header div, ``moz-cite-prefix``,
   ``yahoo_quoted``...): the quoted part is cut from the tree, the rest is
   converted with inscriptis.
2. Text rules, always: attribution lines ("On … wrote:" in many languages,
   also wrapped, dash-decorated, or with an unknown verb when an address and a
   date end the line or ">" quoting follows), Outlook header blocks in many
   languages, original/forwarded message separators, ``>`` quoting (inline
   answers are kept, tails of re-wrapped quoted lines are not) and signatures
   (``-- ``, "Sent from my iPhone" and whatever an app put below it, the block
   after a sign-off).

Checked against other projects' public fixtures as well as our own corpus
(talon, email-reply-parser ports); conventions differ there (forwards, whether a
sign-off line is kept), so ours is the reference, theirs the outside check.
"""

from __future__ import annotations

import re

__all__ = ["extract_new_text", "html_to_text", "normalize_text", "strip_signature"]

# --------------------------------------------------------------------------- attribution lines

_WROTE = (
    r"wrote|writes|schrieb|a\s+écrit|a\s+ecrit|escribió|escribio|ha\s+scritto|scrive|schreef"
    r"|escreveu|skrev|napisał\(a\)|napisała|napisał|napisal|pisze|napsal\(a\)|napsal|kirjoitti"
    r"|пишет|написал\(а\)|написала|написал|написав|写道|寫道|yazdı|írta|έγραψε|skriver"
    r"|kaže|napisao|escrit|geschreven|đã\s+viết|작성|a\s+scris|menulis|كتب"
)
# "<lead> … <verb> [name <addr>]:" e.g. "Am 5. Jan. 2024 um 10:00 schrieb Bob <b@x>:".
_ATTRIBUTION = re.compile(
    rf"^.{{0,300}}?(?:\b|(?<=\W))(?:{_WROTE})(?:\s+.{{0,120}}?)?\s*[:：]\s*$|"
    rf"^.{{0,300}}?(?:\b|(?<=\W))(?:{_WROTE})\s*$",
    re.I,
)
# Gmail ja "2024年1月5日(金) 10:00 Bob <b@x>:", old Gmail "2015-03-04 10:00 GMT+01:00 Bob <b@x>:"
_NUMERIC_DATE_START = (
    r"^\s*(?:\d{4}[-/年.]\s?\d{1,2}[-/月.]\s?\d{1,2}|\d{1,2}[./]\d{1,2}[./]\d{2,4})"
)
_DATED_ADDR = re.compile(
    _NUMERIC_DATE_START + r".{0,120}<[^<>@\s]+@[^<>\s]+>\s*(?:のメッセージ)?[:：]\s*$"
)
_LEAD = re.compile(
    r"^\s*(?:on|am|le|el|il|op|em|no\s+dia|den|d\.|w\s+dniu|dnia|dne|в|pe|на|vào|på)\b", re.I
)
# "---- On … wrote ----", "------On 12/29 … wrote-----": decorated attribution (Zoho, Android).
_DECORATION = re.compile(r"^[-–—=_*\s]{2,}|[-–—=_*\s]{2,}$")
# A line ending in an address and a colon, with a date or time somewhere in it: the
# attribution forms whose word order or verb is not known ("11:00 AM, November 17, 2021,
# "John" <j@x.com>:", "ср, 30 апр. 2025 г. в 15:19, John <j@x.com>:").
_ADDR_COLON = re.compile(
    r"[<(\[]\s*(?:mailto:)?[^<>()\[\]\s@]+@[^<>()\[\]\s]+\s*[>)\]]\s*[:：]\s*$"
)
_DATED_ADDR_START = re.compile(_NUMERIC_DATE_START)
_DATE_OR_TIME = re.compile(r"\b\d{1,2}[:.]\d{2}\b|\b(?:19|20)\d{2}\b")


_WROTE_ENDINGS = ("wrote", "writes", "schrieb", "écrit", "ecrit", "escribió", "escribio", "scritto")


def _looks_like_attribution(candidate: str, lead_needed: bool) -> bool:
    candidate = " ".join(candidate.split())
    if not candidate or len(candidate) > 400:
        return False
    decorated = False
    if candidate[0] in "-–—=_*" or candidate[-1] in "-–—=_*":
        bare = _DECORATION.sub("", candidate)
        decorated = bare != candidate and candidate[0] in "-–—=_*" and candidate[-1] in "-–—=_*"
        candidate = bare
        if not candidate:
            return False
    # Cheap gate before the regexes: attributions end with a colon or with the verb.
    if candidate[-1] not in ":：" and not candidate.lower().endswith(_WROTE_ENDINGS):
        return False
    # Wrapped lines leave "< addr>" / "<addr >" behind.
    if "< " in candidate or " >" in candidate:
        candidate = candidate.replace("< ", "<").replace(" >", ">")
    if _DATED_ADDR.match(candidate):
        return True
    if len(candidate) <= 250 and _ADDR_COLON.search(candidate) and _DATE_OR_TIME.search(candidate):
        return True
    if not _ATTRIBUTION.match(candidate):
        return False
    if decorated:  # "---- John Smith wrote ----": the decoration is the evidence
        return True
    # "He wrote:" inside prose is not an attribution: demand a date, time or address.
    has_evidence = bool(re.search(r"\d|@|<[^>]+>", candidate))
    if lead_needed and not _LEAD.match(candidate):
        return has_evidence and bool(re.search(r"@|<[^>]+>", candidate))
    return has_evidence


# --------------------------------------------------------------------------- header blocks

_FROM_KEYS = (
    r"from|von|de|da|van|från|fra|od|feladó|lähettäjä|от|kimden|afzender|remetente|发件人|寄件者"
    r"|差出人|보낸\s*사람"
)
_OTHER_KEYS = (
    r"sent|date|gesendet|datum|envoyé|envoye|enviado|enviada|fecha|inviato|data|verzonden|verstuurd"
    r"|skickat|sendt|wysłano|wysłane|odesláno|lähetetty|отправлено|дата|gönderildi|tarih|发送时间"
    r"|日期|送信日時|날짜"
    r"|to|an|à|a|para|aan|till|til|do|komu|vastaanottaja|кому|kime|收件人|宛先|받는\s*사람"
    r"|envoyé\s+le|message\s+du|copie\s+à|"
    r"cc|kopie|copie|cc\s*\(kopie\)|kopia|kopio|копия|抄送|"
    r"subject|betreff|objet|sujet|asunto|oggetto|onderwerp|ämne|emne|temat|předmět|aihe|тема|konu"
    r"|主题"
    r"|件名|assunto|제목|reply-to|antwort\s+an|répondre\s+à"
)
_HDR = r"^\s*[*_]{0,2}\s*(?:%s)\s*[*_]{0,2}\s*[:：]"
_FROM_LINE = re.compile(_HDR % _FROM_KEYS, re.I)
_OTHER_LINE = re.compile(_HDR % _OTHER_KEYS, re.I)
_INLINE_HEADER = re.compile(
    rf"(?:{_FROM_KEYS})\s*[*_]{{0,2}}\s*:.{{1,200}}?(?:sent|date|gesendet|envoyé|enviado|inviato"
    rf"|verzonden|skickat|wysłano)\s*[*_]{{0,2}}\s*:.{{1,200}}?(?:to|an|à|para|aan|till|do)\s*"
    rf"[*_]{{0,2}}\s*:",
    re.I,
)
_DATE_LINE = re.compile(
    _HDR
    % (
        r"sent|date|gesendet|datum|envoyé|envoye|enviado|enviada|fecha|inviato|data|verzonden"
        r"|skickat|sendt|wysłano|odesláno|lähetetty|отправлено|дата|gönderildi|tarih|发送时间"
        r"|日期|送信日時|날짜|보낸\s*날짜"
    ),
    re.I,
)
_RULE_LINE = re.compile(r"^\s*(?:_{8,}|-{8,}|={4,}|—{4,}|\*{4,})\s*$")

# --------------------------------------------------------------------------- separators

_SEPARATOR = re.compile(
    r"^\s*[-=_*]{2,}\s*(?:original\s+message|ursprüngliche\s+nachricht|originalnachricht"
    r"|message\s+d'origine|message\s+original|mensaje\s+original|messaggio\s+originale"
    r"|oorspronkelijk\s+bericht|origineel\s+bericht|mensagem\s+original|ursprungligt\s+meddelande"
    r"|mail\s+original|original\s+mail|ursprüngliche\s+e?-?mail|oprindelig\s+meddelelse|opprinnelig\s+melding|oryginalna\s+wiadomość|wiadomość\s+oryginalna"
    r"|původní\s+zpráva|alkuperäinen\s+viesti|исходное\s+сообщение|forwarded\s+message"
    r"|weitergeleitete\s+nachricht|message\s+transféré|mensaje\s+reenviado|messaggio\s+inoltrato"
    r"|doorgestuurd\s+bericht|mensagem\s+encaminhada|vidarebefordrat\s+meddelande"
    r"|videresendt\s+meddelelse|videresendt\s+melding|wiadomość\s+przekazana\s+dalej"
    r"|przekazana\s+wiadomość|přeposlaná\s+zpráva|välitetty\s+viesti|пересылаемое\s+сообщение"
    r"|переадресованное\s+сообщение|reply\s+message|原始邮件|转发的邮件|原始郵件"
    r"|oprindelig\s+besked|antwort\s+nachricht|eredeti\s+üzenet|orijinal\s+mesaj|αρχικό\s+μήνυμα"
    r"|оригинальное\s+сообщение|исходное\s+письмо)"
    r"\s*[-=_*]*\s*$",
    re.I,
)
_BEGIN_FORWARD = re.compile(
    r"^\s*(?:begin\s+forwarded\s+message|anfang\s+der\s+weitergeleiteten\s+(?:nachricht|e-mail)"
    r"|début\s+du\s+message\s+(?:réexpédié|transféré)|inicio\s+del\s+mensaje\s+reenviado"
    r"|inizio\s+messaggio\s+inoltrato|begin\s+doorgestuurd\s+bericht"
    r"|início\s+da\s+mensagem\s+(?:reencaminhada|encaminhada)|vidarebefordrat\s+brev"
    r"|början\s+på\s+vidarebefordrat\s+meddelande|videresendt\s+besked|początek\s+przekazywanej"
    r"\s+wiadomości)\s*[:：]?\s*$",
    re.I,
)

# --------------------------------------------------------------------------- signatures

_MOBILE_SIG = re.compile(
    r"^\s*(?:sent\s+from\s+(?:my\s+)?\S.{0,60}|sent\s+(?:with|via|using)\s+\S.{0,60}"
    r"|get\s+outlook\s+for\s+\S.{0,40}|download\s+outlook\s+for\s+\S.{0,40}|get\s+bluemail.{0,40}"
    r"|von\s+meinem\s+.{1,40}\s+gesendet|gesendet\s+(?:von|mit)\s+.{1,60}"
    r"|envoyé\s+(?:de|depuis)\s+(?:mon\s+)?.{1,60}|enviado\s+(?:desde|do|de)\s+(?:mi|meu|o\s+meu)?"
    r"\s*.{1,60}|inviato\s+da\s+.{1,60}|verzonden\s+(?:vanaf|met|van)\s+.{1,60}"
    r"|skickat\s+från\s+.{1,60}|sendt\s+fra\s+.{1,60}|wysłane\s+z\s+.{1,60}"
    r"|odesláno\s+z\s+.{1,60}|lähetetty\s+.{1,60}|отправлено\s+с\s+.{1,60}"
    r"|yahoo\s+mail\s+for\s+\w+|sent\s+from\s+yahoo\s+mail.{0,40}"
    r"|t[ée]l[ée]charger\s+outlook\s+pour\s+\S.{0,40}|outlook\s+für\s+\S+\s+(?:herunterladen|beziehen)"
    r"|descargar\s+outlook\s+para\s+\S.{0,40}|scarica\s+outlook\s+per\s+\S.{0,40}"
    r"|verstuurd\s+(?:vanaf|met)\s+.{1,60}|发自我的\s*\S.{0,30})"
    r"(?:\s*<https?://[^<>\s]*>)?\s*$",
    re.I,
)
# Footers where the device comes first ("iPhoneから送信", "iPhone'umdan gönderildi").
_MOBILE_SIG_SUFFIX = re.compile(
    r"^\s*\S.{0,30}(?:から送信|(?:cihazımdan|['’]\w{0,4}d[ae]n)\s+gönderildi)\s*$", re.I
)
# "Sent from my desk, which is easier than my phone." is a sentence, not a footer.
_FOOTER_PROSE = re.compile(
    r",\s+(?:is|was|it|it's|which|but|because|than|then|that|as|and\s+I)\b|[?]\s*$", re.I
)
_DELIMITER = re.compile(r"^\s*(?:--|-- |—|__)\s*$")
# A longer underscore or em-dash rule is a signature separator only when a signature follows.
_SIG_RULE = re.compile(r"^\s*(?:_{3,}|—{2,})\s*$")
_VALEDICTION = re.compile(
    r"^\s*(?:(?:best|kind|warm|warmest|many|all\s+the\s+best|with\s+best|with\s+kind|yours)"
    r"(?:\s+(?:regards|wishes|thanks))?|regards|best\s+regards|kind\s+regards|cheers|thanks"
    r"|thank\s+you|thanks\s+again|thanks\s+a\s+lot|many\s+thanks|thx|ta|sincerely|yours\s+sincerely"
    r"|yours\s+truly|respectfully|talk\s+soon|speak\s+soon|take\s+care|warmly|best\s+wishes"
    r"|mit\s+freundlichen\s+grüßen|mit\s+freundlichen\s+grüssen|freundliche\s+grüße"
    r"|viele\s+grüße|beste\s+grüße|liebe\s+grüße|schöne\s+grüße|herzliche\s+grüße|grüße|gruß"
    r"|mfg|lg|vg|danke|vielen\s+dank|cordialement|bien\s+cordialement|bien\s+à\s+vous"
    r"|salutations|merci|merci\s+beaucoup|bonne\s+journée|amitiés|saludos|un\s+saludo"
    r"|saludos\s+cordiales|atentamente|gracias|muchas\s+gracias|un\s+abrazo|cordiali\s+saluti"
    r"|saluti|distinti\s+saluti|grazie|grazie\s+mille|un\s+saluto|met\s+vriendelijke\s+groet(?:en)?"
    r"|vriendelijke\s+groet(?:en)?|groeten|groetjes|hartelijke\s+groet(?:en)?|bedankt"
    r"|atenciosamente|abraços|abraço|obrigad[oa]|cumprimentos|med\s+vänlig\s+hälsning"
    r"|vänliga\s+hälsningar|hälsningar|mvh|tack|med\s+venlig\s+hilsen|venlig\s+hilsen"
    r"|hilsen|pozdrawiam|z\s+poważaniem|dzięki|dziękuję|s\s+pozdravem|ystävällisin\s+terveisin"
    r"|с\s+уважением|спасибо)\s*[,.!]*\s*(?:[-–—]\s*\S.{0,30})?$",
    re.I,
)
_CONTACT = re.compile(
    r"(?:\+?\d[\d\s().-]{6,}\d|https?://|www\.|\S+@\S+\.\w+|\b(?:tel|phone|mobile|fax|cell|"
    r"m|t|p|f)\s*[:.]\s*\+?\d)",
    re.I,
)
_SENTENCE_END = re.compile(r"[.!?]\s*$")

# --------------------------------------------------------------------------- HTML

_HTML_HINTS = (
    "gmail_quote",
    "type=cite",
    'type="cite"',
    "type='cite'",
    "divrplyfwdmsg",
    "appendonsend",
    "moz-cite-prefix",
    "yahoo_quoted",
    "outlookmessageheader",
    "e1e1e1",
    "b5c4df",
    "protonmail_quote",
    "gmail_signature",
    "moz-signature",
    "signature",
    "stopspelling",
    "zmail_extra",
    "reference-message-container",
    "divtagdefaultwrapper",
    "x_divrplyfwdmsg",
)
_CUT_AFTER = (
    "#divRplyFwdMsg",
    "#x_divRplyFwdMsg",
    "#appendonsend",
    "#x_appendonsend",
    "div.OutlookMessageHeader",
    "#mail-editor-reference-message-container",
    "hr#stopSpelling",
    "#isForwardContent",
    "div.zmail_extra",
    "div.zmail_extra_hr",
    "div[style*='border-top:solid #E1E1E1']",
    "div[style*='border-top: solid #E1E1E1']",
    "div[style*='border-top:solid #B5C4DF']",
    "div[style*='border-top: solid #B5C4DF']",
    "div[style*='border-top:solid #e1e1e1']",
    "div[style*='border-top:solid #b5c4df']",
)
_REMOVE = (
    "div.gmail_quote",
    "blockquote.gmail_quote",
    "blockquote[type=cite]",
    "div.moz-cite-prefix",
    ".yahoo_quoted",
    "[class*=yahoo_quoted]",
    "[id*=yahoo_quoted]",
    "div.protonmail_quote",
    "blockquote.protonmail_quote",
    "div.gmail_signature",
    "[data-smartmail=gmail_signature]",
    "#Signature",
    "#x_Signature",
    "div.moz-signature",
    "pre.moz-signature",
    "#ms-outlook-mobile-signature",
    "#AppleMailSignature",
    "div.ms-outlook-mobile-signature",
    "#signature",
    "div.signature",
)


def _cut_after(node: object) -> None:
    cur = node
    while cur is not None and getattr(cur, "tag", None) not in ("body", "html", None):
        sib = cur.next
        while sib is not None:
            nxt = sib.next
            sib.decompose()
            sib = nxt
        cur = cur.parent
    node.decompose()


def _prune_html(html: str) -> str | None:
    """The HTML with quoted history and marked signatures removed; None if nothing was marked."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    changed = False
    for selector in _CUT_AFTER:
        try:
            node = tree.css_first(selector)
        except Exception:
            continue
        if node is not None:
            _cut_after(node)
            changed = True
    for selector in _REMOVE:
        try:
            nodes = tree.css(selector)
        except Exception:
            continue
        for node in nodes:
            node.decompose()
            changed = True
    if not changed:
        return None
    return tree.html or ""


_INSCRIPTIS_CONFIG = None


def html_to_text(html: str) -> str:
    """Readable text of an HTML body (inscriptis "strict" CSS: no indentation of nested divs)."""
    global _INSCRIPTIS_CONFIG
    from inscriptis import get_text

    if _INSCRIPTIS_CONFIG is None:
        from inscriptis.css_profiles import CSS_PROFILES
        from inscriptis.model.config import ParserConfig

        _INSCRIPTIS_CONFIG = ParserConfig(css=CSS_PROFILES["strict"])
    return get_text(html, _INSCRIPTIS_CONFIG)


# --------------------------------------------------------------------------- text rules

_QUOTED = re.compile(r"^\s*>")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def normalize_text(text: str) -> str:
    """Comparable form: unified newlines, no trailing spaces, single blank lines, trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    text = text.replace("\u00a0", " ").replace("\u202f", " ")
    out: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


def _history_start(lines: list[str]) -> tuple[int, str, int] | None:
    """First line of quoted history, which marker found it, and the line after the marker."""
    n = len(lines)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or _QUOTED.match(line):
            continue
        if _SEPARATOR.match(stripped) or _BEGIN_FORWARD.match(stripped):
            return i, "separator", i + 1
        has_colon = ":" in stripped or "：" in stripped
        if (
            has_colon
            and (_FROM_LINE.match(stripped) or _OTHER_LINE.match(stripped))
            and _header_block_at(lines, i)
        ):
            start = i
            prev = i - 1
            while prev >= 0 and not lines[prev].strip():
                prev -= 1
            if prev >= 0 and _RULE_LINE.match(lines[prev]):
                start = prev
            return start, "header", i + 1
        if len(stripped) > 40 and _INLINE_HEADER.search(stripped):
            return i, "header", i + 1
        if len(stripped) <= 400:
            if _looks_like_attribution(stripped, lead_needed=False):
                return i, "attribution", i + 1
            if not (_LEAD.match(stripped) or re.search(r"\d|@|<", stripped)):
                continue
            joined = stripped
            for k in (1, 2):
                if i + k >= n or not lines[i + k].strip() or _QUOTED.match(lines[i + k]):
                    break
                joined += " " + lines[i + k].strip()
                if _looks_like_attribution(joined, lead_needed=True):
                    return i, "attribution", i + k + 1
            if _introduces_quote(stripped, lines, i):
                return i, "attribution", i + 1
    return None


def _introduces_quote(stripped: str, lines: list[str], i: int) -> bool:
    """An unknown-verb attribution ("On 4 Apr 2011, Sam <s@x> sent:", "2011/4/7 Sam <s@x>")
    is trusted only when ">"-quoted text follows it directly."""
    if not _DATE_OR_TIME.search(stripped):
        return False
    has_addr = bool(re.search(r"@[^\s@]+\.\w", stripped))
    if not (has_addr or (_LEAD.match(stripped) and stripped[-1] in ":：")):
        return False
    if not (_LEAD.match(stripped) or _DATED_ADDR_START.match(stripped)):
        return False
    for nxt in lines[i + 1 : i + 3]:
        if nxt.strip():
            return bool(_QUOTED.match(nxt))
    return False


def _header_block_at(lines: list[str], i: int) -> bool:
    """A From line plus at least two more header lines close below (or a block containing From)."""
    keys = 0
    has_from = bool(_FROM_LINE.match(lines[i].strip()))
    if not has_from and not _OTHER_LINE.match(lines[i].strip()):
        return False
    seen = 0
    for line in lines[i : i + 12]:
        stripped = line.strip()
        if not stripped:
            continue
        seen += 1
        if _FROM_LINE.match(stripped):
            has_from = True
            keys += 1
        elif _OTHER_LINE.match(stripped):
            keys += 1
        if seen >= 8:
            break
    if has_from and keys >= 3:
        return True
    # Minimal block (Apple Mail, some webmails): From and Date on adjacent lines, with an
    # address in the one and a date or time in the other, then a blank line.
    if i + 1 < len(lines) and (i + 2 == len(lines) or not lines[i + 2].strip()):
        pair = (lines[i].strip(), lines[i + 1].strip())
        for a, b in (pair, pair[::-1]):
            if (
                _FROM_LINE.match(a)
                and "@" in a
                and _DATE_LINE.match(b)
                and len(b) <= 80
                and _DATE_OR_TIME.search(b)
            ):
                return True
    return False


def _looks_like_signature(tail: list[str]) -> bool:
    body = [line.strip() for line in tail if line.strip()]
    if not body:
        return True
    if len(body) > 10:
        return False
    if any(len(line) > 80 for line in body):
        return False
    # Prose after a sign-off ("Thanks, and one more thing: …") has sentences and questions.
    prose = sum(1 for line in body if len(line) > 40 and _SENTENCE_END.search(line))
    if prose or any(line.endswith("?") for line in body):
        return False
    # A signature starts with a name, or carries contact details.
    return _looks_like_name(body[0]) or any(_CONTACT.search(line) for line in body)


def _looks_like_name(line: str) -> bool:
    """ "Bob", "Dana W.", "María José Pérez", "田中", "J. Smith | CEO"."""
    line = re.split(r"\s[|,–—-]\s|,", line, maxsplit=1)[0].strip()
    words = line.split()
    if not 1 <= len(words) <= 5:
        return False
    cased = [w for w in words if w[:1].isalpha() and w[:1].lower() != w[:1].upper()]
    if not cased:  # scripts without case (CJK, Arabic...): short and no sentence punctuation
        return len(line) <= 20 and not _SENTENCE_END.search(line)
    particles = {"van", "von", "de", "der", "den", "da", "di", "du", "la", "le", "y", "e", "dos"}
    return all(w[:1].isupper() or w.lower() in particles for w in cased)


_DISCLAIMER = re.compile(
    r"^\s*(?:\*+\s*)?(?:confidentiality\s+notice|confidential(?:ity)?\s*[:\-]|disclaimer\s*[:\-]"
    r"|this\s+(?:e-?mail|message|communication)(?:\s+and\s+any\s+(?:files|attachments))?"
    r"\s+(?:is|are|may)\s+(?:confidential|intended|for\s+the\s+sole)"
    r"|the\s+information\s+(?:contained\s+)?in\s+this\s+(?:e-?mail|message)"
    r"|diese\s+e-?mail\s+(?:enthält|ist)|ce\s+(?:message|courriel)\s+(?:et\s+ses|est)"
    r"|este\s+(?:mensaje|correo)\s+(?:y\s+sus|es|contiene)|questo\s+messaggio"
    r"|please\s+consider\s+the\s+environment\s+before\s+printing)",
    re.I,
)


def _is_mobile_footer(line: str) -> bool:
    if _MOBILE_SIG.match(line):
        return not _FOOTER_PROSE.search(line)
    # The suffix forms are rare: a substring test keeps the regex off ordinary lines.
    return ("送信" in line or "gönderildi" in line) and bool(_MOBILE_SIG_SUFFIX.match(line))


def strip_signature(lines: list[str]) -> list[str]:
    """Drop what follows "-- ", a mobile footer, or the name/title block after a sign-off."""
    for i, line in enumerate(lines):
        if _DELIMITER.match(line) and i > 0:
            lines = lines[:i]
            break
    for i, line in enumerate(lines):
        if i > 0 and _SIG_RULE.match(line) and _looks_like_signature(lines[i + 1 :]):
            lines = lines[:i]
            break
    for i, line in enumerate(lines):
        if i > 0 and _DISCLAIMER.match(line):
            lines = lines[:i]
            break
    for i, line in enumerate(lines):
        if not _is_mobile_footer(line):
            continue
        # Mobile clients put the footer below what was typed: whatever follows is the
        # quoted message (some apps quote with no header at all), or a signature.
        if any(ln.strip() for ln in lines[:i]) or _looks_like_signature(lines[i + 1 :]):
            lines = lines[:i]
            break
    for i, line in enumerate(lines):
        if i == 0 or not _VALEDICTION.match(line):
            continue
        tail = lines[i + 1 :]
        if _looks_like_signature(tail):
            lines = lines[: i + 1]
            break
    return _strip_contact_block(lines)


def _strip_contact_block(lines: list[str]) -> list[str]:
    """A trailing name/title/phone paragraph with no sign-off (typical Outlook signature)."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    start = end
    while start and lines[start - 1].strip():
        start -= 1
    block = [line.strip() for line in lines[start:end]]
    if start == 0 or not 2 <= len(block) <= 8:
        return lines
    if any(len(line) > 60 or (_SENTENCE_END.search(line) and len(line) > 25) for line in block):
        return lines
    if sum(1 for line in block if _CONTACT.search(line)) >= 1 and not _QUOTED.match(block[0]):
        return lines[:start]
    return lines


def _from_text(text: str) -> str:
    lines = normalize_text(text).split("\n")
    found = _history_start(lines)
    if found is not None:
        cut, kind, after = found
        head, rest = lines[:cut], lines[after:]
        kept = head
        if kind == "attribution":
            prefix = _attribution_prefix(lines[cut], lines[cut + 1 : after])
            if prefix:
                head = kept = [*head, prefix]
            # Bottom-posted or inline answers: ">"-quoted history with the reply between.
            first = next((ln for ln in rest if ln.strip()), "")
            if _QUOTED.match(first):
                answers = _answers(rest)
                inner = _history_start(answers)
                if inner is not None:
                    answers = answers[: inner[0]]
                if any(ln.strip() for ln in answers):
                    kept = [*head, "", *answers]
        lines = kept
    lines = [ln for ln in lines if not _QUOTED.match(ln)]
    lines = strip_signature(lines)
    return normalize_text("\n".join(lines))


# A capitalised lead followed by a date within two words: "… On Wed, Apr 4, 2012 …".
_MIDLINE_LEAD = re.compile(
    r"(?:(?<=\s)|(?<=-))(?:On|Am|Le|El|Il|Op|Em|Den)\s+(?:[^\W\d]{2,10}[.,]{0,2}\s+){0,2}\d"
)


def _attribution_prefix(line: str, continuation: list[str]) -> str:
    """Text typed on the same line before the attribution ("Sure. On Mon, … wrote:")."""
    for m in _MIDLINE_LEAD.finditer(line):
        prefix = line[: m.start()].rstrip(" -–—")
        if not prefix.strip() or "@" in prefix or "<" in prefix:
            continue
        if _LEAD.match(prefix) and re.search(r"\d", prefix):  # the attribution's own start
            continue
        candidate = " ".join([line[m.start() :], *continuation])
        if _looks_like_attribution(candidate, lead_needed=True):
            return prefix
    return ""


def _answers(rest: list[str]) -> list[str]:
    """The unquoted lines between ">"-quoted ones, minus the tails of wrapped quoted lines.

    Clients that re-wrap quoted text leave the continuation of a long quoted line without a
    marker ("> … pharetra d" / "ignissim odio?" / ">"); such a line sits directly between two
    quoted lines and does not start like a sentence.
    """
    out = []
    for k, ln in enumerate(rest):
        if _QUOTED.match(ln):
            continue
        s = ln.strip()
        if (
            s
            and 0 < k < len(rest) - 1
            and _QUOTED.match(rest[k - 1])
            and _QUOTED.match(rest[k + 1])
            and not (s[0].isupper() or s[0].isdigit())
        ):
            continue
        out.append(ln)
    return out


#: Only the start of very long bodies is searched: new text comes first, and a
#: multi-megabyte body must not cost seconds.
MAX_CHARS = 100_000


def extract_new_text(text: str, html: str | None = None) -> str:
    """New text of a message from its plain text, using the HTML's quote markup when present."""
    text = text[:MAX_CHARS]
    if html is not None and len(html) > 4 * MAX_CHARS:
        html = html[: 4 * MAX_CHARS]
    if html:
        lowered = html.lower()
        if any(hint in lowered for hint in _HTML_HINTS):
            try:
                pruned = _prune_html(html)
            except Exception:
                pruned = None
            if pruned is not None:
                return _from_text(html_to_text(pruned))
        if not text.strip():
            text = html_to_text(html)
    return _from_text(text)

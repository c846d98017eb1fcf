"""What Gmail and Exchange/Microsoft 365 do differently, and what to do about it.

The provider is recognised from what the server says about itself (the
CAPABILITY list, the greeting) and, failing that, the host name; the result is
a plain :class:`Quirks` value the IMAP and SMTP code consult:

- Gmail (``X-GM-EXT-1``): one message sits in several labels (folders), so it
  is deduplicated by ``X-GM-MSGID``; its SMTP server files sent mail in Sent
  by itself (an APPEND would make a second copy); sessions are dropped about
  once a day, so reconnect before that.
- Exchange / Microsoft 365: ``SEARCH CHARSET UTF-8`` is answered
  ``NO [BADCHARSET]`` (retry in US-ASCII); throttling answers ("Request is
  throttled. Suggested Backoff Time: N milliseconds", "Server Unavailable")
  need a pause, not a retry storm; IDLE is dropped after minutes of quiet,
  so it is re-issued sooner. (Its comma-separated References headers are the
  parser's business.)

Everything but :func:`search_with_fallback` is pure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

__all__ = [
    "Provider",
    "Quirks",
    "dedupe_key",
    "detect",
    "detect_provider",
    "fetch_items",
    "is_badcharset",
    "quirks_for",
    "save_to_sent",
    "search_with_fallback",
    "session_due_for_renewal",
    "smtp_files_sent",
    "throttle_delay",
]


class Provider(StrEnum):
    GMAIL = "gmail"
    EXCHANGE = "exchange"  # Exchange Online (Microsoft 365) and on-premises Exchange
    DOVECOT = "dovecot"
    OTHER = "other"


@dataclass(frozen=True)
class Quirks:
    """How to treat one server; defaults are the standard-following behaviour."""

    provider: Provider = Provider.OTHER
    # FETCH X-GM-MSGID and deduplicate by it (Gmail labels are folders).
    gmail_ids: bool = False
    # Reconnect proactively after this long (Gmail drops sessions ~ daily).
    max_session_seconds: float | None = None
    # Re-issue IDLE at least this often (RFC 2177 allows 29 minutes).
    idle_renew_seconds: float = 540.0
    # Retry a UTF-8 SEARCH without CHARSET when answered [BADCHARSET].
    search_ascii_fallback: bool = False


_GMAIL_HOSTS = ("gmail.com", "googlemail.com", "google.com")
_EXCHANGE_HOSTS = ("office365.com", "outlook.com", "office.com", "hotmail.com", "live.com",
                   "microsoft.com", "partner.outlook.cn", "office365.us")


def _host_matches(host: str, suffixes: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    return any(host == s or host.endswith("." + s) for s in suffixes)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, bytes) else value


def detect_provider(
    capabilities: Iterable[bytes | str] = (),
    greeting: bytes | str | None = None,
    host: str = "",
) -> Provider:
    """Which server this is: CAPABILITY first, then the greeting, then the host name.

    Self-description wins over the host, since a custom domain (CNAME to
    Google or Microsoft) tells nothing and a proxy may front anything.
    """
    caps = {_text(c).upper() for c in capabilities}
    if "X-GM-EXT-1" in caps:
        return Provider.GMAIL
    said = _text(greeting).lower()
    if "gimap" in said:
        return Provider.GMAIL
    if "microsoft exchange" in said or "exchange imap4" in said or "xproxy" in said.replace(
        " ", ""
    ):
        return Provider.EXCHANGE
    if "dovecot" in said:
        return Provider.DOVECOT
    if _host_matches(host, _GMAIL_HOSTS):
        return Provider.GMAIL
    if _host_matches(host, _EXCHANGE_HOSTS):
        return Provider.EXCHANGE
    return Provider.OTHER


def quirks_for(provider: Provider, capabilities: Iterable[bytes | str] = ()) -> Quirks:
    """The handling a provider needs (capabilities refine it: X-GM-EXT-1 anywhere)."""
    caps = {_text(c).upper() for c in capabilities}
    if provider is Provider.GMAIL:
        return Quirks(
            provider=provider,
            gmail_ids="X-GM-EXT-1" in caps or not caps,
            max_session_seconds=23 * 3600.0,
            idle_renew_seconds=540.0,
        )
    if provider is Provider.EXCHANGE:
        # Exchange Online ends an IDLE after about 30 minutes and its load
        # balancers drop quiet connections sooner: renew well within that.
        return Quirks(provider=provider, idle_renew_seconds=240.0, search_ascii_fallback=True)
    return Quirks(provider=provider, gmail_ids="X-GM-EXT-1" in caps)


def fetch_items(quirks: Quirks) -> tuple[str, ...]:
    """FETCH items to ask for besides the body (Gmail: its stable message id)."""
    return ("X-GM-MSGID",) if quirks.gmail_ids else ()


def session_due_for_renewal(quirks: Quirks, connected_seconds: float) -> bool:
    """Reconnect now, on our terms, rather than be cut off mid-batch (Gmail: daily)."""
    limit = quirks.max_session_seconds
    return limit is not None and connected_seconds >= limit


def smtp_files_sent(smtp_host: str) -> bool:
    """Whether mail handed to this SMTP server shows up in Sent without an APPEND.

    Gmail's submission server files every message in Sent Mail; Microsoft 365
    does the same for SMTP AUTH submissions (Sent Items).
    """
    return _host_matches(smtp_host, _GMAIL_HOSTS) or _host_matches(smtp_host, _EXCHANGE_HOSTS)


def save_to_sent(setting: str, smtp_host: str) -> bool:
    """Resolve ``[smtp] save_to_sent``: ``auto`` means "unless the provider files it"."""
    if setting == "always":
        return True
    if setting == "never":
        return False
    return not smtp_files_sent(smtp_host)


def dedupe_key(fetched: Mapping[bytes, Any], message_id: str | None) -> str | None:
    """A key that is the same for one message seen in several Gmail labels.

    ``X-GM-MSGID`` (a FETCH item on Gmail) is stable across labels and never
    reused; elsewhere the Message-ID is the best there is (None when absent).
    """
    gm = fetched.get(b"X-GM-MSGID")
    if gm is not None:
        return f"x-gm-msgid:{int(gm)}"
    if message_id:
        return message_id.strip().lower()
    return None


_BADCHARSET = re.compile(rb"\[BADCHARSET\b", re.I)


def is_badcharset(answer: bytes | str) -> bool:
    """True for a ``NO [BADCHARSET ...]`` answer to SEARCH CHARSET."""
    data = answer.encode("latin-1", "replace") if isinstance(answer, str) else answer
    return bool(_BADCHARSET.search(data))


# Throttling and "come back later" answers, from Exchange Online and Gmail.
_SUGGESTED = re.compile(rb"Suggested\s+Backoff\s+Time:\s*(\d+)\s*(milliseconds|ms|seconds|s)\b",
                        re.I)
_THROTTLED = re.compile(
    rb"request is throttled|\[THROTTLED\]|server unavailable|\[UNAVAILABLE\]|"
    rb"too many simultaneous connections|exceeded command or bandwidth limits|"
    rb"\[LIMIT\]|try again later|\bOVERQUOTA\b|temporarily unavailable",
    re.I,
)
DEFAULT_THROTTLE_SECONDS = 60.0
MAX_THROTTLE_SECONDS = 15 * 60.0


def throttle_delay(answer: bytes | str) -> float | None:
    """Seconds to wait before the next command when the server says it is throttling.

    Exchange states its wish ("Suggested Backoff Time: 29000 milliseconds");
    it is honoured (capped at 15 minutes). Other throttling answers get a
    minute. None: the answer is no throttling signal.
    """
    data = answer.encode("latin-1", "replace") if isinstance(answer, str) else answer
    match = _SUGGESTED.search(data)
    if match:
        value = float(match.group(1))
        if match.group(2).lower() in (b"milliseconds", b"ms"):
            value /= 1000.0
        return min(max(value, 1.0), MAX_THROTTLE_SECONDS)
    if _THROTTLED.search(data):
        return DEFAULT_THROTTLE_SECONDS
    return None


def _ascii_only(criteria: Sequence[Any]) -> bool:
    for item in criteria:
        if isinstance(item, bytes | str):
            if not item.isascii():
                return False
        elif isinstance(item, list | tuple) and not _ascii_only(item):
            return False
    return True


def search_with_fallback(client: Any, criteria: Sequence[Any], charset: str = "UTF-8") -> list[int]:
    """UID SEARCH in UTF-8; on ``[BADCHARSET]`` (Exchange) again without a charset.

    Without a charset the server assumes US-ASCII, so the retry is only
    made when every criterion is ASCII (a Message-ID always is); otherwise the
    refusal is passed on, since an ASCII-mangled search would silently miss.
    """
    from imapclient.exceptions import IMAPClientError

    try:
        return list(client.search(list(criteria), charset=charset))
    except IMAPClientError as exc:
        if not is_badcharset(str(exc)) or not _ascii_only(criteria):
            raise
        log.info("event=imap_search_badcharset charset=%s action=retry_ascii", charset)
        return list(client.search(list(criteria)))


def detect(client: Any, host: str = "") -> Quirks:
    """The quirks of the server a (logged-in) IMAPClient talks to."""
    capabilities = tuple(client.capabilities())
    provider = detect_provider(capabilities, getattr(client, "welcome", None), host)
    return quirks_for(provider, capabilities)

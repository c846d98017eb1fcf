"""Provider detection and quirk handling on recorded server answers (byte literals)."""

from __future__ import annotations

from typing import Any

import pytest
from imapclient.exceptions import IMAPClientError

from service.mail.quirks import (
    Provider,
    dedupe_key,
    detect_provider,
    fetch_items,
    is_badcharset,
    quirks_for,
    save_to_sent,
    search_with_fallback,
    session_due_for_renewal,
    throttle_delay,
)

GMAIL_CAPS = (b"IMAP4REV1", b"UNSELECT", b"IDLE", b"NAMESPACE", b"QUOTA", b"ID", b"XLIST",
              b"CHILDREN", b"X-GM-EXT-1", b"UIDPLUS", b"COMPRESS=DEFLATE", b"ENABLE", b"MOVE",
              b"CONDSTORE", b"ESEARCH", b"UTF8=ACCEPT", b"LIST-EXTENDED", b"LIST-STATUS",
              b"LITERAL-", b"SPECIAL-USE", b"APPENDLIMIT=35651584")
GMAIL_GREETING = b"* OK Gimap ready for requests from 198.51.100.7 a1mb12345678abc"
M365_CAPS = (b"IMAP4", b"IMAP4REV1", b"AUTH=PLAIN", b"AUTH=XOAUTH2", b"SASL-IR", b"UIDPLUS",
             b"ID", b"UNSELECT", b"CHILDREN", b"IDLE", b"NAMESPACE", b"LITERAL+")
M365_GREETING = (b"* OK The Microsoft Exchange IMAP4 service is ready. "
                 b"[TQBOADIAUABSADAAMQBDAEEAMAAwADEAMwAuAG8AdQB0AGwAbwBvAGsALgBjAG8AbQA=]")
DOVECOT_GREETING = (b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE] "
                    b"Dovecot (Ubuntu) ready.")


def test_gmail_by_capability_even_behind_a_custom_host() -> None:
    assert detect_provider(GMAIL_CAPS, b"* OK ready", "mail.agency.example") is Provider.GMAIL
    assert detect_provider((), GMAIL_GREETING) is Provider.GMAIL


def test_exchange_by_greeting_and_by_host() -> None:
    assert detect_provider(M365_CAPS, M365_GREETING, "mail.agency.example") is Provider.EXCHANGE
    assert detect_provider(M365_CAPS, b"* OK ready", "outlook.office365.com") is Provider.EXCHANGE
    assert detect_provider((), None, "imap.gmail.com") is Provider.GMAIL


def test_self_description_wins_over_host() -> None:
    # a Dovecot proxy at a Microsoft-looking name is still a Dovecot
    assert detect_provider((), DOVECOT_GREETING, "imap.outlook.com") is Provider.DOVECOT
    assert detect_provider((b"IMAP4REV1",), b"* OK hello", "imap.example.org") is Provider.OTHER


def test_quirks_per_provider() -> None:
    gmail = quirks_for(Provider.GMAIL, GMAIL_CAPS)
    assert gmail.gmail_ids and gmail.max_session_seconds and gmail.max_session_seconds < 86400
    exchange = quirks_for(Provider.EXCHANGE, M365_CAPS)
    assert exchange.search_ascii_fallback and not exchange.gmail_ids
    assert exchange.idle_renew_seconds < quirks_for(Provider.OTHER).idle_renew_seconds
    plain = quirks_for(Provider.DOVECOT, (b"IMAP4REV1",))
    assert not plain.search_ascii_fallback and plain.max_session_seconds is None


@pytest.mark.parametrize(
    ("setting", "host", "expected"),
    [
        ("auto", "smtp.gmail.com", False),  # Gmail files sent mail itself
        ("auto", "smtp.office365.com", False),
        ("auto", "smtp.agency.example", True),
        ("always", "smtp.gmail.com", True),
        ("never", "smtp.agency.example", False),
    ],
)
def test_save_to_sent(setting: str, host: str, expected: bool) -> None:
    assert save_to_sent(setting, host) is expected


def test_dedupe_key_prefers_gmail_message_id() -> None:
    one_label = {b"X-GM-MSGID": 1278455344230334865, b"SEQ": 4}
    other_label = {b"X-GM-MSGID": 1278455344230334865, b"SEQ": 92}
    assert dedupe_key(one_label, "<a@x>") == dedupe_key(other_label, "<other@x>")
    assert dedupe_key({}, " <A@X> ") == "<a@x>"
    assert dedupe_key({}, None) is None


def test_badcharset_answers() -> None:
    assert is_badcharset(b"NO [BADCHARSET (US-ASCII)] The specified charset is not supported.")
    assert is_badcharset("search failed: NO [BADCHARSET] Command Error. 12")
    assert not is_badcharset(b"NO [CANNOT] Invalid search")


@pytest.mark.parametrize(
    ("answer", "seconds"),
    [
        (b"NO Request is throttled. Suggested Backoff Time: 29000 milliseconds", 29.0),
        (b"NO Request is throttled. Suggested Backoff Time: 5 milliseconds", 1.0),  # floor
        (b"NO Request is throttled. Suggested Backoff Time: 9999999 milliseconds", 900.0),
        (b"NO Server Unavailable. 15", 60.0),
        (b"NO [UNAVAILABLE] Temporary System Error", 60.0),
        (b"NO [ALERT] Too many simultaneous connections. (Failure)", 60.0),
        (b"NO [THROTTLED] Account exceeded command or bandwidth limits. (Failure)", 60.0),
        (b"BAD Command Argument Error. 11", None),
        (b"NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)", None),
    ],
)
def test_throttle_delay(answer: bytes, seconds: float | None) -> None:
    assert throttle_delay(answer) == seconds


class _RecordedServer:
    """Answers SEARCH the way Exchange Online does: CHARSET is refused."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any]] = []

    def search(self, criteria: Any, charset: str | None = None) -> list[int]:
        self.calls.append((criteria, charset))
        if charset is not None:
            raise IMAPClientError(
                "search failed: NO [BADCHARSET (US-ASCII)] The specified charset is not supported."
            )
        return [7]


def test_search_falls_back_to_ascii_when_exchange_refuses_utf8() -> None:
    server = _RecordedServer()
    assert search_with_fallback(server, ["HEADER", "Message-ID", "<x@y>"]) == [7]
    assert [charset for _, charset in server.calls] == ["UTF-8", None]


def test_search_with_non_ascii_terms_is_not_mangled() -> None:
    server = _RecordedServer()
    with pytest.raises(IMAPClientError):
        search_with_fallback(server, ["SUBJECT", "Kündigung"])
    assert len(server.calls) == 1


def test_gmail_fetches_its_message_id_and_renews_sessions_before_google_does() -> None:
    gmail = quirks_for(Provider.GMAIL, GMAIL_CAPS)
    assert fetch_items(gmail) == ("X-GM-MSGID",)
    assert not session_due_for_renewal(gmail, 3600)
    assert session_due_for_renewal(gmail, 23.5 * 3600)
    other = quirks_for(Provider.OTHER)
    assert fetch_items(other) == () and not session_due_for_renewal(other, 10 * 86400)

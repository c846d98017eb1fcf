"""Owner reply verification (pure): tokens, command line, Authentication-Results, decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.workflows.commands import (
    TokenRecord,
    check_authentication,
    decide,
    extract_tokens,
    parse_authentication_results,
    parse_command,
    reply_facts,
)

US = "team@northwind.test"
TOKEN = "abcdefghijklmnopqrstuvwxyz234567"
OTHER = "zyxwvutsrqponmlkjihgfedcba765432"
OWNER = "olga@northwind.test"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
AR_PASS = "mx.northwind.test; dkim=pass header.d=northwind.test; spf=pass"
KNOWN = {"APPROVE", "REJECT", "EDIT", "CANCEL"}


def raw_reply(
    *,
    sender: str = OWNER,
    to: str = f"team+{TOKEN}@northwind.test",
    references: str = f"<root@acme.test> <{TOKEN}@token.northwind.test> <req-1@northwind.test>",
    body: str = (
        "APPROVE\r\n\r\nOn Tue, Nov 24, 2026 Northwind wrote:\r\n> Reply APPROVE or CANCEL\r\n"
    ),
    auth: tuple[str, ...] = (AR_PASS,),
    extra: str = "",
) -> bytes:
    headers = "".join(f"Authentication-Results: {a}\r\n" for a in auth)
    return (
        f"{headers}From: Olga <{sender}>\r\nTo: {to}\r\nSubject: Re: Approve farewell\r\n"
        f"Message-ID: <reply-{abs(hash((sender, to, body, auth, extra)))}@northwind.test>\r\n"
        f"In-Reply-To: <req-1@northwind.test>\r\nReferences: {references}\r\n"
        f"Date: Wed, 25 Nov 2026 11:00:00 +0000\r\n{extra}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def record(**kwargs: object) -> TokenRecord:
    base = TokenRecord(owner=OWNER, purpose="draft", subject_id="7", version=2,
                       expires_at=NOW + timedelta(days=1), used_at=None)
    return replace(base, **kwargs)  # type: ignore[arg-type]


def check(raw: bytes, rec: TokenRecord | None = None, **kwargs: object):
    options: dict[str, object] = {
        "now": NOW, "require_authenticated": True, "authserv_id": "mx.northwind.test",
        "known_commands": KNOWN, "current_version": 2,
    }
    options.update(kwargs)
    return decide(reply_facts(raw, US), rec if rec is not None else record(), **options)  # type: ignore[arg-type]


# -- parsing -------------------------------------------------------------------


def test_reply_facts_reads_tokens_command_and_sender() -> None:
    facts = reply_facts(raw_reply(), US)
    assert facts.plus_tokens == (TOKEN,)
    assert facts.reference_tokens == (TOKEN,)
    assert facts.token == TOKEN
    assert facts.command == "APPROVE"
    assert facts.sender == OWNER
    assert not facts.auto_generated


def test_token_survives_a_server_without_sub_addressing() -> None:
    facts = reply_facts(raw_reply(to=US), US)
    assert facts.plus_tokens == ()
    assert facts.token == TOKEN


def test_token_from_delivered_to_and_lowercased_addresses() -> None:
    raw = raw_reply(to=US, references="<x@acme.test>",
                    extra=f"Delivered-To: TEAM+{TOKEN.upper()}@NorthWind.test\r\n")
    assert reply_facts(raw, US).token == TOKEN


def test_newest_reference_token_wins_in_a_long_thread() -> None:
    refs = f"<{OTHER}@token.northwind.test> <a@x> <{TOKEN}@token.northwind.test> <b@x>"
    assert reply_facts(raw_reply(to=US, references=refs), US).token == TOKEN


def test_tokens_on_foreign_addresses_or_domains_are_ignored() -> None:
    plus, refs = extract_tokens(
        [f"team+{TOKEN}@evil.test", f"other+{TOKEN}@northwind.test", "team+short@northwind.test"],
        [
            f"<{TOKEN}@token.evil.test>",
            f"<{TOKEN}@northwind.test>",
            "<garbage@token.northwind.test>",
        ],
        US,
    )
    assert plus == () and refs == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("APPROVE", ("APPROVE", "", "")),
        ("approve.", ("APPROVE", "", "")),
        ("\n\n  Snooze 14 days\nthanks", ("SNOOZE", "14 days", "thanks")),
        ("EDIT\nDear Ana,\nnew text", ("EDIT", "", "Dear Ana,\nnew text")),
        ("**Approve** – looks good", ("APPROVE", "looks good", "")),
        ("", (None, "", "")),
        ("123 go", (None, "123 go", "")),
    ],
)
def test_parse_command(text: str, expected: tuple[str | None, str, str]) -> None:
    command, args, body = parse_command(text)
    assert (command, args, body) == expected


def test_command_is_the_first_line_after_quotes_and_signature_are_trimmed() -> None:
    body = (
        "<div>cancel</div><div><br></div><div class=3D\"gmail_quote\">On Tue wrote:"
        "<blockquote>APPROVE</blockquote></div>"
    )
    raw = raw_reply(body="", extra="")
    html = raw.replace(b"Content-Type: text/plain; charset=utf-8\r\n\r\n",
                       b"Content-Type: text/html; charset=utf-8\r\n"
                       b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body.encode())
    assert reply_facts(html, US).command == "CANCEL"
    quoted_first = raw_reply(body="> APPROVE\r\n\r\nREJECT\r\n-- \r\nOlga\r\n")
    assert reply_facts(quoted_first, US).command == "REJECT"


# -- Authentication-Results ------------------------------------------------------


def test_parse_authentication_results_with_comments_and_versions() -> None:
    server, results = parse_authentication_results(
        'mx.northwind.test 1; dkim=pass (good signature) header.d=northwind.test '
        'header.s="sel"; dmarc=fail (p=none) header.from=evil.test; spf=none'
    )
    assert server == "mx.northwind.test"
    assert results[0] == ("dkim", "pass", {"header.d": "northwind.test", "header.s": "sel"})
    assert results[1][:2] == ("dmarc", "fail")


@pytest.mark.parametrize(
    ("headers", "passed"),
    [
        ((AR_PASS,), True),
        (("mx.northwind.test; dmarc=pass header.from=northwind.test",), True),
        (("MX.Northwind.Test; dkim=pass header.i=@mail.northwind.test",), True),
        (("mx.northwind.test; dkim=pass header.d=sub.northwind.test",), True),
        (("mx.northwind.test; dkim=pass header.d=northwind.test.evil.test",), False),
        (("mx.northwind.test; dkim=pass header.d=test",), False),
        (("mx.northwind.test; dkim=fail header.d=northwind.test",), False),
        (("mx.northwind.test; dkim=pass header.d=evil.test",), False),
        (("mx.northwind.test; spf=pass smtp.mailfrom=northwind.test",), False),
        (("mx.other.test; dkim=pass header.d=northwind.test",), False),
        (("mx.northwind.test; none",), False),
        ((), False),
        # only the topmost header from our server counts: a forged one below is ignored
        (("mx.northwind.test; dkim=fail header.d=northwind.test", AR_PASS), False),
        # others above ours do not matter
        (("relay.internal; dkim=fail", AR_PASS), True),
    ],
)
def test_check_authentication(headers: tuple[str, ...], passed: bool) -> None:
    assert check_authentication(headers, "mx.northwind.test", OWNER).passed is passed


def test_subdomain_owner_aligns_with_the_organisational_signature() -> None:
    verdict = check_authentication(
        ("mx.northwind.test; dkim=pass header.d=northwind.test",),
        "mx.northwind.test", "olga@mail.northwind.test",
    )
    assert verdict.passed


def test_no_authserv_id_configured_trusts_nothing() -> None:
    assert not check_authentication((AR_PASS,), None, OWNER).passed


# -- decisions ---------------------------------------------------------------------


def test_a_genuine_reply_is_accepted() -> None:
    assert check(raw_reply()).accepted


@pytest.mark.parametrize(
    ("raw", "rec", "reason"),
    [
        (raw_reply(sender="mallory@evil.test"), None, "sent by mallory@evil.test"),
        (raw_reply(sender="piet@northwind.test"), None, "made to olga@northwind.test"),
        (raw_reply(), record(used_at=NOW - timedelta(hours=1)), "already answered"),
        (raw_reply(), record(expires_at=NOW), "expired"),
        (raw_reply(), record(version=1), "version 1"),
        (raw_reply(auth=()), None, "could not be authenticated"),
        (raw_reply(auth=("mx.northwind.test; dkim=fail header.d=northwind.test",)), None,
         "could not be authenticated"),
        (raw_reply(auth=("mx.attacker.test; dkim=pass header.d=northwind.test",)), None,
         "could not be authenticated"),
        (raw_reply(body="Sounds good!\r\n"), None, "not a command"),
        (raw_reply(body="\r\n"), None, "no command"),
        (raw_reply(to=f"team+{OTHER}@northwind.test"), None, "two different tokens"),
    ],
)
def test_forgeries_and_mistakes_are_rejected(raw: bytes, rec: TokenRecord | None,
                                             reason: str) -> None:
    decision = check(raw, rec)
    assert not decision.accepted
    assert reason in decision.reason


def test_unknown_or_missing_token_is_rejected() -> None:
    facts = reply_facts(raw_reply(), US)
    decision = decide(facts, None, now=NOW, require_authenticated=True,
                      authserv_id="mx.northwind.test", known_commands=KNOWN)
    assert not decision.accepted and "unknown" in decision.reason
    missing = reply_facts(raw_reply(to=US, references="<a@b>"), US)
    decision = decide(missing, None, now=NOW, require_authenticated=True,
                      authserv_id="mx.northwind.test", known_commands=KNOWN)
    assert not decision.accepted and "no reply token" in decision.reason


def test_auto_reply_carrying_the_token_never_counts() -> None:
    raw = raw_reply(body="APPROVE\r\n", extra="Auto-Submitted: auto-replied\r\n")
    decision = check(raw)
    assert not decision.accepted and "auto-generated" in decision.reason
    assert not decision.tell_owner
    ooo = raw_reply(body="APPROVE\r\n").replace(b"Subject: Re: Approve farewell",
                                                b"Subject: Out of office: Re: Approve")
    assert not check(ooo).accepted


def test_authentication_can_be_switched_off() -> None:
    assert check(raw_reply(auth=()), require_authenticated=False).accepted


def test_two_from_addresses_are_refused() -> None:
    raw = raw_reply().replace(b"From: Olga <olga@northwind.test>",
                              b"From: Olga <olga@northwind.test>, mallory@evil.test")
    assert not check(raw).accepted


GMAIL_AR = (
    "mx.google.com; dkim=pass header.i=@northwind.test header.s=20230601 header.b=Ab3+;"
    " spf=pass (google.com: domain of olga@northwind.test designates 2001:db8::1 as permitted"
    " sender) smtp.mailfrom=olga@northwind.test; dmarc=pass (p=REJECT sp=REJECT dis=NONE)"
    " header.from=northwind.test"
)


def test_real_world_header_shapes() -> None:
    assert check_authentication((GMAIL_AR,), "mx.google.com", OWNER).passed
    # a comment hiding a semicolon and a fake result must not split the header
    tricky = ("mx.northwind.test; dkim=fail (bad; dkim=pass header.d=northwind.test) "
              "header.d=northwind.test")
    assert not check_authentication((tricky,), "mx.northwind.test", OWNER).passed
    nested = "mx.northwind.test (a (nested) comment); dmarc=pass header.from=northwind.test"
    assert check_authentication((nested,), "mx.northwind.test", OWNER).passed


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_are_read_without_error_and_never_accepted(raw: bytes) -> None:
    facts = reply_facts(raw, US)
    decision = decide(facts, None, now=NOW, require_authenticated=True,
                      authserv_id="mx.northwind.test", known_commands=KNOWN)
    assert not decision.accepted


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200).filter(lambda t: "pass" not in t.lower()), st.text(max_size=200))
def test_topmost_header_of_ours_decides_whatever_lies_below(results: str, body: str) -> None:
    # whatever our server wrote on top (no "pass" in it), a passing header of
    # ours further down (which anyone could have added before) must not help
    ours = "mx.northwind.test; " + results.replace("\r", " ").replace("\n", " ")
    raw = raw_reply(auth=(ours, AR_PASS), body=("APPROVE\n" + body).replace("\r", ""))
    assert not check(raw).accepted

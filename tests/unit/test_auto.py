"""Auto-generated mail detection: each rule fires, and says which one it was."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from service.mail.auto import detect_auto_generated, is_auto_subject


def msg(headers: str, body: str = "Hello\n", policy_=policy.default) -> EmailMessage:
    raw = f"From: Bob <bob@client.com>\nTo: us@agency.com\n{headers}\n\n{body}".encode()
    return message_from_bytes(raw, policy=policy_)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Auto-Submitted: auto-replied", "auto-submitted: auto-replied"),
        ("Auto-Submitted: auto-generated; owner-email=x@y", "auto-submitted: auto-generated"),
        ("Precedence: bulk", "precedence: bulk"),
        ("Precedence: list", "precedence: list"),
        ("Precedence: junk", "precedence: junk"),
        ("Precedence: auto_reply", "precedence: auto_reply"),
        ("X-Autoreply: yes", "x-autoreply: yes"),
        ("X-Autorespond: Out of office", "x-autorespond: out of office"),
        ("X-Auto-Response-Suppress: OOF", "x-auto-response-suppress: oof"),
        ("X-Auto-Response-Suppress: All", "x-auto-response-suppress: all"),
        ("Return-Path: <>", "return-path: <>"),
        ("List-Id: <news.client.com>", "list-id"),
        ("List-Unsubscribe: <mailto:u@client.com>", "list-unsubscribe"),
        ("X-Failed-Recipients: a@b.com", "dsn"),
    ],
)
def test_header_rules(headers: str, reason: str) -> None:
    assert detect_auto_generated(msg(headers)) == (True, reason)


def test_auto_submitted_no_is_human() -> None:
    assert detect_auto_generated(msg("Auto-Submitted: no")) == (False, None)


def test_human_message() -> None:
    assert detect_auto_generated(msg("Subject: Re: invoice")) == (False, None)
    assert detect_auto_generated(msg("Precedence: first-class")) == (False, None)
    assert detect_auto_generated(msg("X-Auto-Response-Suppress: DR, RN")) == (False, None)


def test_dsn_multipart_report() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.agency.com\nSubject: Undelivered Mail\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nCould not deliver.\n"
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
        b"Final-Recipient: rfc822; x@y\nAction: failed\n--b--\n"
    )
    assert detect_auto_generated(message_from_bytes(raw, policy=policy.default)) == (True, "dsn")


def test_read_receipt_is_mdn() -> None:
    raw = (
        b"From: bob@client.com\n"
        b'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nRead.\n--b--\n"
    )
    assert detect_auto_generated(message_from_bytes(raw, policy=policy.default)) == (True, "mdn")


def test_mailer_daemon_sender() -> None:
    raw = b"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\nSubject: x\n\nbody\n"
    assert detect_auto_generated(message_from_bytes(raw)) == (True, "from: mailer-daemon")


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Re: invoice",
        "Automatic reply: Project update",
        "Autoreply: Re: launch",
        "Auto-Reply: hello",
        "Abwesenheitsnotiz: Angebot",
        "Automatische Antwort: Angebot",
        "Réponse automatique : Devis",
        "Fuera de la oficina: Presupuesto",
        "Respuesta automática: Re: campaña",
        "Risposta automatica: Contratto",
        "Automatisch antwoord: Factuur",
        "Resposta automática: Proposta",
        "Automatiskt svar: Offert",
        "Automatyczna odpowiedź: Faktura",
        "Undeliverable: Farewell",
        "[EXTERNAL] Out of office until Monday",
        "=?utf-8?q?R=C3=A9ponse_automatique_:_Devis?=",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    auto, reason = detect_auto_generated(msg(f"Subject: {subject}", policy_=policy.compat32))
    assert auto
    assert reason is not None and reason.startswith("subject: ")


@pytest.mark.parametrize(
    "subject",
    [
        "Re: out of office plans for the team?",
        "Re: Our automatic reply template is wrong",
        "Absence of progress on the website",
        "Re: Invoice 42",
    ],
)
def test_human_subjects_are_not_auto(subject: str) -> None:
    assert not is_auto_subject(subject)
    assert detect_auto_generated(msg(f"Subject: {subject}")) == (False, None)


def test_works_with_compat32_and_garbage_headers() -> None:
    raw = b"From: \xff\xfe <<>>\nPrecedence: \xe9bulk\nSubject: \x00\n\nbody"
    assert detect_auto_generated(message_from_bytes(raw)) == (False, None)

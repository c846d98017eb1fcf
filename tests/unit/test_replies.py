"""New-text extraction: corpus accuracy plus the individual rules, with literals."""

from __future__ import annotations

import pytest

from bench.replies_eval import EXTRACTORS, evaluate, load_cases
from service.mail.replies import extract_new_text, normalize_text, strip_signature

CASES = load_cases()


def test_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 40
    assert sum(1 for c in CASES if b"text/html" in c.raw) >= 10


def test_corpus_exact_match_rate(capsys: pytest.CaptureFixture[str]) -> None:
    hits, misses = evaluate(EXTRACTORS["saygoodbye"], CASES)
    rate = hits / len(CASES)
    # Side by side, printed for the record (pytest -s shows it).
    with capsys.disabled():
        for label, extract in EXTRACTORS.items():
            h, _ = evaluate(extract, CASES)
            print(f"\n{label:20s} {h}/{len(CASES)} exact")
    assert rate >= 0.95, misses


def test_beats_each_library_alone() -> None:
    ours, _ = evaluate(EXTRACTORS["saygoodbye"], CASES)
    for label in ("email-reply-parser", "mail-parser-reply"):
        theirs, _ = evaluate(EXTRACTORS[label], CASES)
        assert ours > theirs, label


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, Jan 8, 2024 at 10:00 AM Sam <sam@a.com> wrote:",
        "On 8 Jan 2024, at 10:00, Sam <sam@a.com> wrote:",
        "Am 08.01.2024 um 10:00 schrieb Sam <sam@a.com>:",
        "Le lun. 8 janv. 2024 à 10:00, Sam <sam@a.com> a écrit :",
        "El lun, 8 ene 2024 a las 10:00, Sam (<sam@a.com>) escribió:",
        "Il giorno lun 8 gen 2024 alle ore 10:00 Sam <sam@a.com> ha scritto:",
        "Op ma 8 jan 2024 om 10:00 schreef Sam <sam@a.com>:",
        "Em seg., 8 de jan. de 2024 às 10:00, Sam <sam@a.com> escreveu:",
        "Den mån 8 jan. 2024 kl 10:00 skrev Sam <sam@a.com>:",
        "pon., 8 sty 2024 o 10:00 Sam <sam@a.com> napisał(a):",
        "W dniu 8.01.2024 o 10:00, Sam pisze:",
    ],
)
def test_attribution_languages(attribution: str) -> None:
    text = f"Our answer is no.\n\n{attribution}\n> the old question\n"
    assert extract_new_text(text) == "Our answer is no."


def test_attribution_wrapped_over_two_lines() -> None:
    text = "Fine.\n\nOn Mon, Jan 8, 2024 at 10:00 AM Samuel Ortiz <\nsam@agency.com> wrote:\n> q\n"
    assert extract_new_text(text) == "Fine."


def test_prose_with_wrote_is_kept() -> None:
    text = "She wrote: we should wait.\nI disagree."
    assert extract_new_text(text) == text


@pytest.mark.parametrize(
    "block",
    [
        "From: Sam <sam@a.com>\nSent: Monday, January 8, 2024 10:00 AM\nTo: Bo\nSubject: Hi",
        "Von: Sam <sam@a.com>\nGesendet: Montag, 8. Januar 2024 10:00\nAn: Bo\nBetreff: Hi",
        "De : Sam <sam@a.com>\nEnvoyé : lundi 8 janvier 2024 10:00\nÀ : Bo\nObjet : Hi",
        "*From:* Sam <sam@a.com>\n*Sent:* Monday, January 8, 2024\n*To:* Bo\n*Subject:* Hi",
        "-----Original Message-----\nFrom: Sam\nSent: Monday\nTo: Bo\nSubject: Hi",
        "________________________________\nFrom: Sam\nSent: Monday\nTo: Bo\nSubject: Hi",
    ],
)
def test_outlook_header_blocks(block: str) -> None:
    text = f"Please stop.\n\n{block}\n\nOld text here.\n"
    assert extract_new_text(text) == "Please stop."


def test_forward_only_keeps_forwarders_note_or_nothing() -> None:
    fwd = "---------- Forwarded message ---------\nFrom: X <x@y.com>\nDate: Mon\n\nOld body\n"
    assert extract_new_text("See below.\n\n" + fwd) == "See below."
    assert extract_new_text(fwd) == ""
    assert extract_new_text("FYI\n\nBegin forwarded message:\n\nFrom: X\n\nbody") == "FYI"


def test_inline_answers_are_kept() -> None:
    text = (
        "On Mon, Jan 8, 2024 at 10:00 AM Sam <sam@a.com> wrote:\n"
        "> When?\n\nTuesday.\n\n> Where?\n\nOur office.\n"
    )
    assert extract_new_text(text) == "Tuesday.\n\nOur office."


def test_signatures() -> None:
    assert strip_signature(["Yes.", "", "-- ", "Bob", "CEO"]) == ["Yes.", ""]
    assert normalize_text(extract_new_text("Yes.\n\nSent from my iPhone")) == "Yes."
    assert extract_new_text("Yes.\n\nGet Outlook for iOS") == "Yes."
    assert extract_new_text("Yes.\n\nBest,\nBob Smith\nCTO | Acme\n+1 555 0100") == "Yes.\n\nBest,"


def test_signoff_followed_by_prose_is_not_a_signature() -> None:
    text = (
        "Noted.\n\nThanks,\nBob\n\nPS: this is the third delay this month, which is not acceptable."
    )
    assert extract_new_text(text) == text


def test_thanks_as_first_word_is_content() -> None:
    assert extract_new_text("Thanks,\nthat works for us.") == "Thanks,\nthat works for us."


def test_html_structure_wins_over_unknown_language() -> None:
    # An attribution line in a language the text rules do not know: the HTML marks it.
    html = (
        '<div dir="ltr">Kiitos, hyvä.</div><div class="gmail_quote">'
        '<div class="gmail_attr">Tuntematon kieli 8.1.2024 Sam:</div>'
        '<blockquote class="gmail_quote">vanha viesti</blockquote></div>'
    )
    assert extract_new_text("ignored plain", html) == "Kiitos, hyvä."


def test_html_outlook_cut_after_divrplyfwdmsg() -> None:
    html = (
        "<body><div>Not acceptable.</div><div id='appendonsend'></div><hr>"
        "<div id='divRplyFwdMsg'><b>Od:</b> Sam</div><div>old text</div></body>"
    )
    assert extract_new_text("", html) == "Not acceptable."


def test_html_without_markers_uses_plain_text() -> None:
    assert extract_new_text("Plain reply.", "<p>Plain reply.</p>") == "Plain reply."


def test_empty_input() -> None:
    assert extract_new_text("") == ""
    assert extract_new_text("\n \n") == ""


def test_text_after_thanks_that_is_not_a_name_is_kept() -> None:
    text = "Can you fix this?\nThanks\n\nAlso the footer is broken"
    assert extract_new_text(text) == text
    assert extract_new_text("Fine.\n\nCheers,\nMaría José Pérez\nAccount Director") == (
        "Fine.\n\nCheers,"
    )

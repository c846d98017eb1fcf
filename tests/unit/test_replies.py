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
        "El 8/1/2024 a les 10:00, Sam <sam@a.com> ha escrit:",
        "Op 8 jan. 2024, om 10:00 heeft Sam <sam@a.com> het volgende geschreven:",
        "Vào 10:00 8 tháng 1, 2024, Sam <sam@a.com> đã viết:",
        "2024. 1. 8. 오전 10:00, Sam <sam@a.com> 작성:",
        "8 січня 2024 р. о 10:00 Sam <sam@a.com> написав:",
        "În lun., 8 ian. 2024 la 10:00, Sam <sam@a.com> a scris:",
        "Pada tanggal Sen, 8 Jan 2024 pukul 10.00 Sam <sam@a.com> menulis:",
        "في الاثنين، 8 يناير 2024 10:00 ص Sam <sam@a.com> كتب:",
        # No known verb: an address right before the colon plus a date or time.
        "ср, 8 янв. 2024 г. в 10:00, Sam <sam@a.com>:",
        '10:00 AM, January 8, 2024, "Sam - Acme" <sam@a.com>:',
        "Monday, 8 January 2024, 10:00 AM +0100 from sam@a.com <sam@a.com>:",
        # Decorated with dashes (Zoho, some Android clients).
        "---- On Mon, 08 Jan 2024 10:00:00 +0100 Sam <sam@a.com> wrote ----",
        "------On 08/01/2024 10:00, Sam wrote-----",
        "---- Sam Ortiz wrote ----",
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


def test_attribution_address_wrapped_after_angle_bracket() -> None:
    addr = "project-updates.sam.ortiz@notifications.agency-example.com"
    text = f"Fine.\n\n2024-01-08 10:00 GMT+01:00 Sam Ortiz <\n{addr}>:\n\n> q\n"
    assert extract_new_text(text) == "Fine."


def test_date_and_address_in_prose_are_kept() -> None:
    text = "Call Sam at 10:30, his address is <sam@a.com>.\nThanks"
    assert extract_new_text(text) == text


@pytest.mark.parametrize(
    "separator", ["-------- Oprindelig besked --------", "-----Antwort Nachricht-----"]
)
def test_original_message_separators(separator: str) -> None:
    assert extract_new_text(f"Approved.\n\n{separator}\n\nOld text") == "Approved."


def test_header_block_after_short_rule_line() -> None:
    text = (
        "Too expensive.\n\n====\n\nMessage du : 08/01/2024 10:00\nDe : Sam <sam@a.com>\n"
        "A : bo@b.fr\nCopie à :\nSujet : Devis\n\nOld text"
    )
    assert extract_new_text(text) == "Too expensive."


def test_localised_outlook_footer_with_link() -> None:
    text = "Yes.\n\nTélécharger Outlook pour iOS<https://aka.ms/o0ukef>"
    assert extract_new_text(text) == "Yes."


def test_text_below_a_mobile_footer_is_history() -> None:
    # Some mobile apps quote the previous message with no header and no ">".
    text = "Yes, go ahead.\n\nSent from my Wiko phone\n\nHi Bo,\ncan we publish the post today?"
    assert extract_new_text(text) == "Yes, go ahead."


def test_sentence_starting_like_a_footer_is_kept() -> None:
    text = "Here it is.\n\nSent from my desk, which is easier than my phone."
    assert extract_new_text(text) == text


def test_reply_below_a_wrapped_attribution_and_quote() -> None:
    text = (
        "Fine.\n\nOn Mon, Jan 8, 2024 at 10:00 AM Samuel Ortiz from Acme\n<sam@a.com> wrote:\n"
        "\n> q\n\nAnd one more point below."
    )
    assert extract_new_text(text) == "Fine.\n\nAnd one more point below."


@pytest.mark.parametrize("joint", [" ", "--- "])
def test_reply_on_the_same_line_as_the_attribution(joint: str) -> None:
    text = f"Agreed.{joint}On Mon, Jan 8, 2024 at 10:00 AM, sam@a.com wrote:\n> q"
    assert extract_new_text(text) == "Agreed."


def test_german_attribution_with_name_first_keeps_no_prefix() -> None:
    text = "Sam Smith <sam@x.com> schrieb am Mo., 8. Jan. 2024, 10:00:\n> q\n\nAntwort."
    assert extract_new_text(text) == "Antwort."


@pytest.mark.parametrize(
    "intro",
    [
        "On 8 Jan 2024, at 10:00, Sam <sam@a.com> sent:",  # unknown verb
        "2024/1/8 Sam Ortiz <sam@a.com>",  # old Gmail, no colon
    ],
)
def test_unknown_attribution_trusted_when_a_quote_follows(intro: str) -> None:
    assert extract_new_text(f"Noted.\n{intro}\n\n> q") == "Noted."


def test_dated_intro_without_a_quote_is_content() -> None:
    text = "On 8 Jan 2024 at 10:00 we shipped:\n- item one\n- item two"
    assert extract_new_text(text) == text


def test_tail_of_a_wrapped_quoted_line_is_not_an_answer() -> None:
    text = (
        "On Mon, Jan 8, 2024 at 10:00 AM Sam <sam@a.com> wrote:\n"
        "> Please check the page (http://example.com/a\n_b=1)\n> and confirm.\n"
        "> The old copy ended in the middle of a wo\nrd here.\n>\n\nConfirmed."
    )
    assert extract_new_text(text) == "Confirmed."


def test_compact_inline_answers_are_kept() -> None:
    text = "On Mon, Jan 8, 2024 at 10:00 AM Sam <sam@a.com> wrote:\n> When?\nTuesday.\n> Where?\n"
    assert extract_new_text(text) == "Tuesday."


@pytest.mark.parametrize(
    "footer",
    [
        "Verstuurd vanaf mijn iPhone",
        "iPhoneから送信",
        "发自我的iPhone",
        "iPhone'umdan gönderildi",
        "Outlook für iOS beziehen <https://aka.ms/o0ukef>",
    ],
)
def test_localised_mobile_footers(footer: str) -> None:
    assert extract_new_text(f"Approved.\n\n{footer}") == "Approved."


def test_underscore_rule_before_a_signature_is_a_delimiter() -> None:
    assert extract_new_text("Approved.\n\n__________\nBob Smith\nCEO") == "Approved."
    kept = "Notes:\n__________\nWe moved the launch to May because the copy is late."
    assert extract_new_text(kept) == kept


@pytest.mark.parametrize(
    "block",
    [
        "From: Sam <sam@a.com>\nDate: Mon, 8 Jan 2024 10:00",
        "Date: 8 January 2024 at 10:00:00 CET\nFrom: Sam <sam@a.com>",
    ],
)
def test_minimal_from_date_header_block(block: str) -> None:
    text = f"Ok, booked.\n\n{block}\n\nHi Bo, can we move the shoot to Thursday?"
    assert extract_new_text(text) == "Ok, booked."


def test_from_and_date_lines_inside_prose_are_kept() -> None:
    text = "Please check the log.\nFrom: ci@build.example.com\nDate: 2024-01-08 it failed.\nWhy?"
    assert extract_new_text(text) == text


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, Jan 8, 2024 at 10:00 AM Le Bon <le@bon.fr> wrote:",  # a surname that is a lead
        "Sam Em <em@a.com> schrieb am Mo., 8. Jan. 2024, 10:00:",
    ],
)
def test_lead_word_inside_an_attribution_is_not_a_same_line_reply(attribution: str) -> None:
    assert extract_new_text(f"Ok.\n\n{attribution}\n> q") == "Ok."

"""Reply-extraction accuracy on tests/data/mail/replies/, side by side with the libraries.

Each case is ``NAME.eml`` plus ``NAME.expected.txt`` (the text the sender wrote
in that message). A result counts when it equals the expected text after
whitespace normalisation (trailing spaces, blank-line runs, outer blank lines).

    .venv/bin/python -m bench.replies_eval [-v]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service.mail.parse import parse_message
from service.mail.replies import normalize_text

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "mail" / "replies"


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    expected: str


def load_cases(corpus: Path = CORPUS) -> list[Case]:
    return [
        Case(
            eml.stem,
            eml.read_bytes(),
            normalize_text(eml.with_suffix("").with_suffix(".expected.txt").read_text("utf-8")),
        )
        for eml in sorted(corpus.glob("*.eml"))
    ]


def ours(raw: bytes) -> str:
    return parse_message(raw).new_text


def email_reply_parser_alone(raw: bytes) -> str:
    from email_reply_parser import EmailReplyParser

    return EmailReplyParser.parse_reply(parse_message(raw).text)


_LANGS = ["en", "de", "fr", "es", "it", "nl", "pt", "sv", "pl", "da", "fi", "ru", "ja"]


def mail_parser_reply_alone(raw: bytes) -> str:
    from mailparser_reply import EmailReplyParser

    text = parse_message(raw).text
    try:
        parsed = EmailReplyParser(languages=_LANGS).read(text)
    except Exception:  # unknown language codes raise in some versions
        parsed = EmailReplyParser(languages=["en", "de"]).read(text)
    return parsed.replies[0].body if parsed.replies else text


EXTRACTORS: dict[str, Callable[[bytes], str]] = {
    "saygoodbye": ours,
    "email-reply-parser": email_reply_parser_alone,
    "mail-parser-reply": mail_parser_reply_alone,
}


def evaluate(
    extract: Callable[[bytes], str], cases: list[Case]
) -> tuple[int, list[tuple[str, str, str]]]:
    """(exact matches, [(case, expected, got) for each miss])."""
    misses = []
    for case in cases:
        try:
            got = normalize_text(extract(case.raw))
        except Exception as exc:
            got = f"<{type(exc).__name__}: {exc}>"
        if got != case.expected:
            misses.append((case.name, case.expected, got))
    return len(cases) - len(misses), misses


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    cases = load_cases()
    for label, extract in EXTRACTORS.items():
        hits, misses = evaluate(extract, cases)
        print(f"{label:20s} {hits:3d}/{len(cases)} exact ({100 * hits / len(cases):.1f}%)")
        if verbose and label == "saygoodbye":
            for name, expected, got in misses:
                print(f"  MISS {name}\n    expected: {expected!r}\n    got:      {got!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

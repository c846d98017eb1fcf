"""Email templates: one Jinja2 environment, the owner's override folder before ours.

Layout (see templates/README.md): ``templates/<kind>/<variant>.{subject,txt,html}.j2``.
A user folder (``[service] templates_dir``) is searched first, so an owner can replace one
file of one variant, or add a variant, without copying the rest.

StrictUndefined turns a missing context key into an error naming the key, instead of an
empty hole in a client's email; HTML is autoescaped (client names are data, not markup).
What a template author leaves behind by hand (``[CLIENT NAME]``, ``TODO``) is found by the
guardrails' placeholder detector (``leftover_placeholders``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    UndefinedError,
    select_autoescape,
)
from jinja2 import TemplateError as JinjaTemplateError

from .errors import SaygoodbyeError
from .workflows.guardrails import find_placeholders

#: The repository's templates (a source checkout) or the packaged copy (a wheel).
BUILTIN_DIRS = tuple(p for p in (Path(__file__).parents[1] / "templates",
                                 Path(__file__).parent / "templates") if p.is_dir())

KINDS = ("conversation_request", "farewell", "feedback_request", "approval_request", "alert")
CLIENT_FACING = ("conversation_request", "farewell", "feedback_request")

# Optional context keys and their defaults; every other key a template uses is required.
_OPTIONAL: dict[str, Any] = {
    "agency_name": None,
    "owner_signature": None,
    "reason": None,
    "agreed": None,
    "met_on": None,
    "last_day": None,
    "worked_since": None,
    "projects": (),
    "pending": (),
    "feedback_questions": (),
    "meeting_minutes": 30,
    "referral": None,
}

_CONTENT = re.compile(r"<!--content-->(.*)<!--/content-->", re.S)
_NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            "ten", "eleven", "twelve")


class TemplateError(SaygoodbyeError):
    """A template is missing, broken, or needs a context value that was not given."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str

    @property
    def html_body(self) -> str:
        """The content block of the HTML, for showing a draft inside another email."""
        m = _CONTENT.search(self.html)
        return m.group(1).strip() if m else self.html


# --------------------------------------------------------------------------- filters


def month_year(value: date | datetime) -> str:
    """'March 2024'."""
    return f"{value:%B} {value.year}"


def duration_words(start: date | datetime, end: date | datetime) -> str:
    """How long, in words an email would use: 'two years', 'eight months', 'a few weeks'."""
    s = start.date() if isinstance(start, datetime) else start
    e = end.date() if isinstance(end, datetime) else end
    months = (e.year - s.year) * 12 + (e.month - s.month) - (1 if e.day < s.day else 0)
    if months >= 24:
        years = months // 12
        return f"{_NUMBERS[years] if years < len(_NUMBERS) else years} years"
    if months >= 12:
        return "a year" if months < 18 else "a year and a half"
    if months >= 2:
        return f"{_NUMBERS[months]} months"
    return "a month" if months == 1 else "a few weeks"


def worked_together(start: date | datetime | None, today: date | datetime) -> str:
    """'since March 2024' for under two years, else 'over the past three years'."""
    if start is None:
        return "over the past months"
    words = duration_words(start, today)
    return f"over the past {words}" if words.endswith("years") else f"since {month_year(start)}"


def long_date(value: date | datetime) -> str:
    """'Friday 14 June 2024' (unambiguous across locales, unlike 06/14)."""
    return f"{value:%A} {value.day} {value:%B %Y}"


def slot(value: datetime, tz: str | None = None, minutes: int | None = None) -> str:
    """A meeting slot in the client's zone: 'Tuesday 14 May, 10:00–10:30 (Europe/Berlin)'."""
    if value.tzinfo is None:
        raise TemplateError("meeting slots must be timezone-aware datetimes")
    zone = ZoneInfo(tz) if tz else value.tzinfo
    local = value.astimezone(zone)
    text = f"{local:%A} {local.day} {local:%B}, {local:%H:%M}"
    if minutes:
        from datetime import timedelta

        text += f"–{(local + timedelta(minutes=minutes)):%H:%M}"
    name = tz or local.tzname() or ""
    return f"{text} ({name})" if name else text


def join_and(items: Sequence[Any]) -> str:
    """'a, b and c'."""
    words = [str(i) for i in items]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def signed_percent(value: float | None) -> str:
    return "–" if value is None else f"{value:+.0f}"


# --------------------------------------------------------------------------- environment


@functools.lru_cache(maxsize=8)
def environment(override_dir: Path | None = None) -> Environment:
    """The shared environment; the override folder (if any) is searched first."""
    loaders = []
    if override_dir is not None:
        loaders.append(FileSystemLoader(str(override_dir)))
    loaders.extend(FileSystemLoader(str(d)) for d in BUILTIN_DIRS)
    env = Environment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"),
                                     default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(month_year=month_year, duration_words=duration_words,
                       worked_together=worked_together, long_date=long_date, slot=slot,
                       join_and=join_and, signed=signed_percent)
    return env


def _dirs(override_dir: Path | None) -> list[Path]:
    return ([override_dir] if override_dir else []) + list(BUILTIN_DIRS)


def variants(kind: str, *, templates_dir: Path | None = None) -> list[str]:
    """The variants available for a kind (the override folder's and ours), sorted."""
    names: set[str] = set()
    for base in _dirs(templates_dir):
        folder = base / kind
        if folder.is_dir():
            names.update(p.name.removesuffix(".txt.j2") for p in folder.glob("*.txt.j2"))
    return sorted(names)


def render(kind: str, variant: str, context: Mapping[str, Any], *,
           templates_dir: Path | None = None) -> RenderedEmail:
    """Subject, plain text and HTML of one email; raises TemplateError naming what is wrong."""
    if kind not in KINDS:
        raise TemplateError(f"unknown template kind {kind!r} (expected one of {KINDS})")
    env = environment(Path(templates_dir) if templates_dir else None)
    values = {**_OPTIONAL, **context}
    parts = {}
    for part in ("subject", "txt", "html"):
        name = f"{kind}/{variant}.{part}.j2"
        try:
            parts[part] = env.get_template(name).render(values)
        except TemplateNotFound:
            known = ", ".join(variants(kind, templates_dir=templates_dir)) or "none"
            raise TemplateError(f"template {name} not found (variants of {kind}: {known})"
                                ) from None
        except UndefinedError as exc:
            raise TemplateError(f"{name}: the context lacks a value: {exc.message}") from None
        except JinjaTemplateError as exc:
            raise TemplateError(f"{name}: {exc}") from None
    subject = " ".join(parts["subject"].split())
    text = re.sub(r"\n{3,}", "\n\n", parts["txt"]).strip() + "\n"
    return RenderedEmail(subject=subject, text=text, html=parts["html"])


def leftover_placeholders(email: RenderedEmail) -> list[str]:
    """Template fields left in the subject or the text (the HTML mirrors the text)."""
    return find_placeholders(email.subject + "\n" + email.text)

"""The weekly digest: gather an owner's week from the store, render it, queue it once.

Exactly one digest per owner per ISO week, also across restarts, several
processes and missed runs: the ``digest_runs`` row (UNIQUE owner, week) is
inserted in the same transaction that queues the email in the outbox, so
either both exist or neither. A run is due when the owner's latest weekly
slot (``[schedule] digest`` in the owner's time zone) has passed and no digest
went out for that slot's week or since it; after downtime only the latest
missed week is caught up, once. Owners without clients get none.

The daemon registers :func:`schedule_digests` with the scheduler: one weekly
job per owner at the local slot, plus an hourly catch-up; both call
:func:`queue_due_digests`, which is idempotent.

The email is multipart/alternative: a plain-text part that reads on its own
and an HTML part (multipart/related) whose trend pictures are PNGs carried
inside the message and referenced by Content-ID (see service.sparkline for
why). ``--preview`` writes the same HTML with the pictures as data: URIs.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import Settings, parse_weekly
from ..digest_content import (
    AlertInput,
    ClientInput,
    DigestInput,
    DigestModel,
    DraftInput,
    FeedbackInput,
    OffboardingInput,
    OutgoingInput,
    ProblemInput,
    build_digest,
    iso_week,
)
from ..mail.compose import compose, domain_of
from ..sparkline import Band, render_sparkline, sparkline_alt, text_sparkline
from ..store.db import Store
from ..store.models import (
    ClientState,
    CommandLog,
    CommandToken,
    DigestRun,
    Draft,
    Feedback,
    HealthPoint,
    Message,
    Offboarding,
    OutboxMessage,
)

log = logging.getLogger(__name__)

__all__ = [
    "DueDigest",
    "InlineImage",
    "QueuedDigest",
    "RenderedDigest",
    "compose_digest",
    "digest_job",
    "due_digests",
    "gather",
    "last_slot",
    "next_slot",
    "owner_zone",
    "owners_with_clients",
    "preview_html",
    "queue_digest",
    "queue_due_digests",
    "render_digest",
    "schedule_digests",
]

TEMPLATE = "digest/weekly"
JOB_PREFIX = "digest:owner:"
CATCH_UP_JOB = "digest:catch-up"
CATCH_UP_EVERY = timedelta(hours=1)
#: Drafts whose approval is no longer open.
_DRAFT_CLOSED = frozenset({"approved", "rejected", "cancelled", "superseded", "sent",
                           "scheduled", "replaced"})
_OFFBOARDING_DONE = ("closed", "cancelled")
#: Colours shared by the HTML template and the pictures (state of the client).
STATE_COLORS = {
    "healthy": (22, 128, 61),
    "watch": (180, 120, 0),
    "at_risk": (214, 90, 0),
    "unhealthy": (190, 18, 60),
}
_BANDS_FALLBACK = {"unhealthy": 40.0, "at_risk": 55.0}


# -- when -------------------------------------------------------------------------


def owners_with_clients(settings: Settings) -> list[str]:
    """Owners who get a digest: those named by at least one client."""
    return sorted({c.owner.strip().lower() for c in settings.clients})


def owner_zone(settings: Settings, owner: str) -> ZoneInfo:
    return ZoneInfo(settings.owner(owner).timezone or settings.service.timezone)


def last_slot(settings: Settings, owner: str, now: datetime) -> datetime:
    """The latest weekly digest time at or before `now`, in UTC (owner's wall clock, DST-aware)."""
    day, at = parse_weekly(settings.schedule.digest)
    tz = owner_zone(settings, owner)
    local = now.astimezone(tz)
    candidate = local.date() - timedelta(days=(local.weekday() - day) % 7)
    for back in (0, 7, 14):
        slot = datetime.combine(candidate - timedelta(days=back), at, tzinfo=tz)
        # a wall time skipped by DST still maps to one instant; normalise through UTC
        slot_utc = slot.astimezone(UTC)
        if slot_utc <= now:
            return slot_utc
    raise AssertionError("unreachable: a slot two weeks back is always in the past")


def next_slot(settings: Settings, owner: str, now: datetime) -> datetime:
    """The next weekly digest time after `now`, in UTC."""
    day, at = parse_weekly(settings.schedule.digest)
    tz = owner_zone(settings, owner)
    local = now.astimezone(tz)
    candidate = local.date() + timedelta(days=(day - local.weekday()) % 7)
    for ahead in (0, 7, 14):
        slot = datetime.combine(candidate + timedelta(days=ahead), at, tzinfo=tz).astimezone(UTC)
        if slot > now:
            return slot
    raise AssertionError("unreachable: a slot two weeks ahead is always in the future")


@dataclass(frozen=True)
class DueDigest:
    owner: str
    week: str  # ISO week of the slot, in the owner's zone
    slot: datetime


def _week_of(settings: Settings, owner: str, when: datetime) -> str:
    return iso_week(when.astimezone(owner_zone(settings, owner)).date())


def due_digests(
    settings: Settings, store: Store, now: datetime | None = None,
    owners: Iterable[str] | None = None,
) -> list[DueDigest]:
    """Owners whose latest slot has passed without a digest for that week or since it."""
    now = now or datetime.now(UTC)
    wanted = owners_with_clients(settings)
    if owners is not None:
        chosen = {o.strip().lower() for o in owners}
        wanted = [o for o in wanted if o in chosen]
    due: list[DueDigest] = []
    with store.session() as session:
        for owner in wanted:
            slot = last_slot(settings, owner, now)
            week = _week_of(settings, owner, slot)
            done = session.scalar(
                select(func.count()).select_from(DigestRun).where(
                    DigestRun.owner == owner,
                    (DigestRun.week == week) | (DigestRun.created_at >= slot),
                )
            )
            if not done:
                due.append(DueDigest(owner, week, slot))
    return due


# -- gather -------------------------------------------------------------------------


def _history(details: dict[str, Any]) -> tuple[tuple[date, float], ...]:
    points = []
    for item in details.get("history") or ():
        try:
            points.append((date.fromisoformat(str(item[0])[:10]), float(item[1])))
        except (TypeError, ValueError, IndexError):
            continue
    return tuple(sorted(points))


def _weekly_points(session: Session, client: str, now: datetime, weeks: int = 12
                   ) -> tuple[tuple[date, float], ...]:
    """Weekly scores from the daily history table, when no computed history is stored."""
    start = (now - timedelta(weeks=weeks)).date()
    rows = session.execute(
        select(HealthPoint.day, HealthPoint.score)
        .where(HealthPoint.client == client, HealthPoint.day > start)
        .order_by(HealthPoint.day)
    ).all()
    points: list[tuple[date, float]] = []
    today = now.date()
    for k in range(weeks - 1, -1, -1):
        end = today - timedelta(weeks=k)
        in_week = [r for r in rows if end - timedelta(days=7) < r.day <= end]
        if in_week:
            points.append((end, float(in_week[-1].score)))
    return tuple(points)


def _token_of(raw: bytes) -> str | None:
    """The reply token in a request's Reply-To plus-address (we wrote it, so it is regular)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    match = re.search(r"(?im)^Reply-To:(.*(?:\r\n[ \t].*)*)", head)
    if not match:
        return None
    for _, addr in getaddresses([match.group(1).replace("\r\n", "")]):
        local = addr.rsplit("@", 1)[0]
        if "+" in local:
            return local.split("+", 1)[1].lower()
    return None


def _response(session: Session, settings: Settings, row: OutboxMessage
              ) -> tuple[str | None, datetime | None]:
    """The owner's accepted command on this request: its token was used then, logged then."""
    from .approvals import hash_token  # the approvals module owns the token hashing

    token = _token_of(row.raw)
    if token is None:
        return None, None
    used = session.scalar(
        select(CommandToken.used_at).where(CommandToken.token_hash == hash_token(settings, token))
    )
    if used is None:
        return None, None
    command = session.scalar(
        select(CommandLog.command).where(CommandLog.accepted.is_(True), CommandLog.at == used)
        .limit(1)
    )
    return (command or "a command"), used


def gather(session: Session, settings: Settings, owner: str, now: datetime) -> DigestInput:
    """Everything the digest says about one owner's week, as plain data."""
    owner = owner.strip().lower()
    since = now - timedelta(days=7)
    names = [c.name for c in settings.clients if c.owner.strip().lower() == owner]
    states = {s.client: s for s in session.scalars(
        select(ClientState).where(ClientState.client.in_(names)))}
    week_ago_day = since.date()
    clients: list[ClientInput] = []
    for name in names:
        config = settings.client(name)
        assert config is not None
        state = states.get(name)
        details = dict(state.details or {}) if state else {}
        history = _history(details) or _weekly_points(session, name, now)
        earlier = session.execute(
            select(HealthPoint.state, HealthPoint.score)
            .where(HealthPoint.client == name, HealthPoint.day <= week_ago_day)
            .order_by(HealthPoint.day.desc()).limit(1)
        ).first()
        mail = session.scalar(
            select(func.count()).select_from(Message).where(
                Message.client == name, Message.role == "client", Message.date >= since,
                Message.date <= now, Message.auto_generated.is_(False),
            )
        ) or 0
        metrics = details.get("metrics") or {}
        clients.append(ClientInput(
            name=name,
            score=state.score if state else None,
            state=state.state if state else "healthy",
            trend=state.trend if state else None,
            history=history,
            signals=tuple(details.get("signals") or ()),
            economics=details.get("economics"),
            monthly_revenue=config.monthly_revenue,
            currency=config.currency,
            state_week_ago=earlier.state if earlier else None,
            score_week_ago=float(earlier.score) if earlier else None,
            messages_this_week=int(mail),
            insufficient_data=bool(metrics.get("insufficient_data")),
            snoozed_until=state.snoozed_until if state else None,
            acknowledged_at=state.acknowledged_at if state else None,
        ))

    alerts = []
    for row in session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.kind == "alert", OutboxMessage.client.in_(names),
            OutboxMessage.created_at >= since, OutboxMessage.created_at <= now,
            OutboxMessage.state != "cancelled",
        ).order_by(OutboxMessage.created_at)
    ):
        command, at = _response(session, settings, row)
        alerts.append(AlertInput(row.client or "", row.sent_at or row.created_at, row.subject,
                                 None, command, at))

    offboardings = tuple(
        OffboardingInput(o.client, o.state, o.started_at, o.updated_at, o.held_reason, o.met_at)
        for o in session.scalars(
            select(Offboarding).where(Offboarding.client.in_(names),
                                      Offboarding.state.not_in(_OFFBOARDING_DONE))
        )
    )

    drafts = []
    latest = (
        select(Draft.offboarding_id, Draft.kind, func.max(Draft.version).label("version"))
        .group_by(Draft.offboarding_id, Draft.kind).subquery()
    )
    for draft, off in session.execute(
        select(Draft, Offboarding)
        .join(Offboarding, Draft.offboarding_id == Offboarding.id)
        .join(latest, (latest.c.offboarding_id == Draft.offboarding_id)
              & (latest.c.kind == Draft.kind) & (latest.c.version == Draft.version))
        .where(Offboarding.client.in_(names), Offboarding.state.not_in(_OFFBOARDING_DONE),
               Draft.approved_at.is_(None), Draft.state.not_in(_DRAFT_CLOSED))
    ):
        if off.state != "awaiting_approval" and draft.state != "awaiting_approval":
            continue
        request = session.scalars(
            select(OutboxMessage).where(OutboxMessage.draft_id == draft.id,
                                        OutboxMessage.kind == "approval_request")
            .order_by(OutboxMessage.id.desc()).limit(1)
        ).first()
        failed = tuple(str(g.get("rule")) for g in draft.guardrails or ()
                       if not g.get("passed", True))
        drafts.append(DraftInput(
            client=off.client, kind=draft.kind, version=draft.version, subject=draft.subject,
            created_at=draft.created_at, failed_rules=failed,
            request_subject=request.subject if request else None,
            request_sent_at=(request.sent_at or request.created_at) if request else None,
            scheduled_for=draft.scheduled_for,
        ))

    def outgoing(row: OutboxMessage) -> OutgoingInput:
        return OutgoingInput(row.kind, row.client, tuple(row.to_addrs), row.subject,
                             row.not_before, row.sent_at)

    scheduled = tuple(outgoing(r) for r in session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.client.in_(names), OutboxMessage.state == "scheduled",
            OutboxMessage.kind != "digest", OutboxMessage.not_before < now + timedelta(days=7),
        ).order_by(OutboxMessage.not_before)
    ))
    farewells = tuple(outgoing(r) for r in session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.client.in_(names), OutboxMessage.kind == "farewell",
            OutboxMessage.state == "sent", OutboxMessage.sent_at >= since,
            OutboxMessage.sent_at <= now,
        ).order_by(OutboxMessage.sent_at)
    ))
    feedback = tuple(
        FeedbackInput(f.client, f.received_at, f.text)
        for f in session.scalars(
            select(Feedback).where(Feedback.client.in_(names), Feedback.received_at >= since,
                                   Feedback.received_at <= now)
            .order_by(Feedback.received_at)
        )
    )
    problems = tuple(
        ProblemInput(r.kind, r.subject, r.state, tuple(r.to_addrs), r.error)
        for r in session.scalars(
            select(OutboxMessage).where(
                (OutboxMessage.owner == owner) | OutboxMessage.client.in_(names),
                OutboxMessage.kind != "digest",
                (OutboxMessage.state == "uncertain")
                | ((OutboxMessage.state == "failed") & (OutboxMessage.created_at >= since)),
            ).order_by(OutboxMessage.id)
        )
    )
    person = settings.owner(owner)
    reply_address = None
    try:
        from .approvals import command_address

        reply_address = command_address(settings)
    except ValueError:
        pass
    return DigestInput(
        owner=owner,
        now=now,
        timezone=str(owner_zone(settings, owner)),
        owner_name=person.name,
        signature=None,
        clients=tuple(clients),
        alerts=tuple(alerts),
        offboardings=offboardings,
        drafts=tuple(drafts),
        scheduled=scheduled,
        farewells=farewells,
        feedback=feedback,
        problems=problems,
        reply_address=reply_address,
    )


# -- render ------------------------------------------------------------------------


@dataclass(frozen=True)
class InlineImage:
    cid: str  # without angle brackets
    png: bytes
    width: int
    height: int
    alt: str

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass(frozen=True)
class RenderedDigest:
    subject: str
    text: str
    html: str  # images referenced as cid:
    images: tuple[InlineImage, ...]
    model: DigestModel


def _bands(settings: Settings) -> list[Band]:
    enter = {**_BANDS_FALLBACK, **settings.health.enter}
    return [
        Band(0.0, float(enter["unhealthy"]), (253, 232, 236)),
        Band(float(enter["unhealthy"]), float(enter["at_risk"]), (255, 241, 224)),
    ]


def _images(settings: Settings, model: DigestModel, domain: str) -> dict[str, InlineImage]:
    images: dict[str, InlineImage] = {}
    bands = _bands(settings)
    for i, client in enumerate(model.clients):
        spark = render_sparkline(client.values, line=STATE_COLORS.get(client.state, (37, 99, 235)),
                                 bands=bands, alt=sparkline_alt(client.values))
        # unique per message, stable per (owner, week, client): a resend shows the same parts
        seed = hashlib.sha256(f"{model.owner}|{model.week}|{client.name}".encode()).hexdigest()
        cid = f"trend{i}.{seed[:16]}@{domain}"
        images[client.name] = InlineImage(cid, spark.png, spark.width, spark.height, spark.alt)
    return images


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def render_digest(
    settings: Settings, data: DigestInput, *, domain: str | None = None
) -> RenderedDigest:
    """Subject, text and HTML (with cid: pictures) from templates/digest/weekly.*.j2."""
    from ..templating import environment

    model = build_digest(data)
    if domain is None:
        domain = domain_of(settings.smtp.from_address) if settings.smtp else "saygoodbye.invalid"
    images = _images(settings, model, domain)
    env = environment(settings.service.templates_dir)
    context = {
        "d": model,
        "images": {name: {"src": f"cid:{img.cid}", "width": img.width, "height": img.height,
                          "alt": img.alt} for name, img in images.items()},
        "colors": {state: _hex(rgb) for state, rgb in STATE_COLORS.items()},
        "sparks": {c.name: text_sparkline(c.values) for c in model.clients},
    }
    subject = " ".join(env.get_template(f"{TEMPLATE}.subject.j2").render(context).split())
    text = env.get_template(f"{TEMPLATE}.txt.j2").render(context)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    html = env.get_template(f"{TEMPLATE}.html.j2").render(context)
    return RenderedDigest(subject, text, html, tuple(images.values()), model)


def preview_html(rendered: RenderedDigest) -> str:
    """The HTML for a browser: cid: pictures become data: URIs (only here, never in mail)."""
    html = rendered.html
    for image in rendered.images:
        html = html.replace(f'"cid:{image.cid}"', f'"{image.data_uri}"')
    return html


def compose_digest(
    settings: Settings, rendered: RenderedDigest, owner: str, *, now: datetime
) -> EmailMessage:
    """multipart/alternative: text, then multipart/related (HTML + PNGs by Content-ID)."""
    if settings.smtp is None:
        raise ValueError("no [smtp] table: cannot email the digest")
    from_addr = settings.smtp.from_address
    msg = compose(
        from_addr=from_addr,
        to=[owner],
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        domain=domain_of(from_addr),
        date=now,
        message_id=make_msgid(idstring=f"digest.{rendered.model.week}",
                              domain=domain_of(from_addr)),
        headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
    )
    html_part = next(p for p in msg.iter_parts() if p.get_content_type() == "text/html")
    assert isinstance(html_part, EmailMessage)
    for image in rendered.images:
        html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.cid}>",
                              disposition="inline", filename=f"{image.cid.split('@')[0]}.png")
    return msg


# -- queue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedDigest:
    owner: str
    week: str
    outbox_id: int | None  # None: not queued (see reason)
    reason: str


def queue_digest(
    settings: Settings,
    store: Store,
    owner: str,
    *,
    now: datetime | None = None,
    week: str | None = None,
    force: bool = False,
) -> QueuedDigest:
    """Queue one owner's digest now, recording the week in the same transaction.

    Without `force`, a week already recorded is left alone (another process,
    or an earlier run, did it). With `force` (an explicit ``digest --send``)
    the digest is queued anyway; the week is recorded if it was not yet.
    """
    from . import outbox

    now = now or datetime.now(UTC)
    owner = owner.strip().lower()
    if owner not in owners_with_clients(settings):
        return QueuedDigest(owner, week or "", None, "no clients: no digest")
    week = week or _week_of(settings, owner, now)
    try:
        with store.session() as session:
            recorded = session.scalars(
                select(DigestRun).where(DigestRun.owner == owner, DigestRun.week == week)
            ).first()
            if recorded is not None and not force:
                return QueuedDigest(owner, week, None, "already queued for this week")
            run = None
            if recorded is None:
                run = DigestRun(owner=owner, week=week, created_at=now)
                session.add(run)
                session.flush()  # the UNIQUE (owner, week) index decides races here
            rendered = render_digest(settings, gather(session, settings, owner, now))
            msg = compose_digest(settings, rendered, owner, now=now)
            row = outbox.queue(session, settings, msg, kind="digest", owner=owner, now=now)
            if run is not None:
                run.outbox_id = row.id
            log.info("event=digest_queued owner=%s week=%s outbox_id=%d", owner, week, row.id)
            return QueuedDigest(owner, week, row.id, "queued")
    except IntegrityError:
        return QueuedDigest(owner, week, None, "already queued for this week")


def queue_due_digests(
    settings: Settings, store: Store, *, now: datetime | None = None,
    owners: Iterable[str] | None = None,
) -> list[QueuedDigest]:
    """Queue every digest that is due (idempotent: call it as often as you like)."""
    now = now or datetime.now(UTC)
    results = []
    for due in due_digests(settings, store, now, owners):
        try:
            results.append(queue_digest(settings, store, due.owner, now=now, week=due.week))
        except Exception:  # one owner's failure must not block the others
            log.exception("event=digest_failed owner=%s week=%s", due.owner, due.week)
    return results


def preview(settings: Settings, store: Store, owner: str, *, now: datetime | None = None
            ) -> RenderedDigest:
    """Render without queueing or recording anything."""
    now = now or datetime.now(UTC)
    with store.session() as session:
        data = gather(session, settings, owner, now)
        return render_digest(settings, data)


# -- scheduler --------------------------------------------------------------------------


def digest_job(owner: str | None = None) -> None:
    """Scheduler job: queue due digests (one owner or all), then run the outbox."""
    from . import scheduler

    settings, store = scheduler.runtime()
    queued = queue_due_digests(settings, store, owners=[owner] if owner else None)
    if any(q.outbox_id for q in queued):
        scheduler.run_outbox()


def schedule_digests(sched: Any, settings: Settings) -> list[str]:
    """Register the weekly per-owner jobs and the catch-up; drop jobs of former owners."""
    day, at = parse_weekly(settings.schedule.digest)
    owners = owners_with_clients(settings)
    ids = []
    for owner in owners:
        job_id = f"{JOB_PREFIX}{owner}"
        sched.weekly(job_id, "service.workflows.digest:digest_job", day=day, at=at,
                     timezone=str(owner_zone(settings, owner)), owner=owner)
        ids.append(job_id)
    sched.every(CATCH_UP_JOB, "service.workflows.digest:digest_job", CATCH_UP_EVERY)
    for job in sched.jobs():
        if job["id"].startswith(JOB_PREFIX) and job["id"] not in ids:
            sched.remove(job["id"])
    return [*ids, CATCH_UP_JOB]


def owner_choices(settings: Settings, wanted: Sequence[str] | None) -> list[str]:
    """The owners a command addresses: the given ones (checked) or every owner with clients."""
    owners = owners_with_clients(settings)
    if not wanted:
        return owners
    chosen = [w.strip().lower() for w in wanted]
    unknown = [w for w in chosen if w not in owners]
    if unknown:
        from ..errors import UsageError

        known = ", ".join(owners) or "none (no [[clients]] name an owner)"
        raise UsageError(f"no clients are owned by {', '.join(unknown)} (owners: {known})")
    return chosen


def write_preview(rendered: RenderedDigest, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(preview_html(rendered), encoding="utf-8")
    return path


def _preview_path(path: Path, owner: str, several: bool) -> Path:
    """One file per owner when several digests are previewed at once."""
    if not several:
        return path
    return path.with_name(f"{path.stem}-{owner}{path.suffix or '.html'}")


def command(
    settings: Settings,
    store: Store,
    *,
    owner: str | None = None,
    preview_file: Path | None = None,
    send: bool = False,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """`saygoodbye digest`: show, preview (--preview) and/or queue now (--send), per owner."""
    now = now or datetime.now(UTC)
    owners = owner_choices(settings, [owner] if owner else None)
    results: list[dict[str, Any]] = []
    for person in owners:
        rendered = preview(settings, store, person, now=now)
        result: dict[str, Any] = {
            "owner": person,
            "week": rendered.model.week,
            "subject": rendered.subject,
            "text": rendered.text,
            "preview": None,
            "outbox_id": None,
            "queued": None,
            "next_scheduled": next_slot(settings, person, now).isoformat(),
        }
        if preview_file is not None:
            path = write_preview(rendered, _preview_path(preview_file, person, len(owners) > 1))
            result["preview"] = str(path)
        if send:
            queued = queue_digest(settings, store, person, now=now, force=True)
            result["outbox_id"] = queued.outbox_id
            result["queued"] = queued.reason
        results.append(result)
    return results

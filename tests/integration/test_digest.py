"""The weekly digest on a seeded store, as an email, in a browser, and in a real mailbox."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from selectolax.lexbor import LexborHTMLParser as HTMLParser
from sqlalchemy import func, select

from service.config import Settings, settings_from_mapping
from service.mail.compose import compose
from service.store.db import Store
from service.store.models import (
    ClientState,
    CommandLog,
    CommandToken,
    DigestRun,
    Draft,
    Feedback,
    HealthPoint,
    Offboarding,
    OutboxMessage,
)
from service.workflows import digest, outbox
from service.workflows.approvals import issue_token, reply_headers
from tests.integration.test_outbox_env import OWNER, Env, open_env
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration

OTHER = "piet@northwind.test"
IDLE = "ida@northwind.test"  # named in [[owners]] but owns no client
# Monday 9 March 2026, 08:00 in Berlin (CET, UTC+1): the default "mon 08:00" slot
SLOT = datetime(2026, 3, 9, 7, 0, tzinfo=UTC)
NOW = SLOT + timedelta(minutes=1)


def settings_for(url: str, **extra: Any) -> Settings:
    data: dict[str, Any] = {
        "service": {"database": url, "timezone": "Europe/Berlin",
                    "own_domains": ["northwind.test"]},
        "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none",
                 "from_address": "team@northwind.test"},
        "clients": [
            {"name": "Acme", "domains": ["acme.test"], "owner": OWNER, "monthly_revenue": 900},
            {"name": "Globex", "domains": ["globex.test"], "owner": OWNER.upper()},
            {"name": "Initech", "domains": ["initech.test"], "owner": OTHER},
        ],
        "owners": [
            {"email": OWNER, "name": "Olga"},
            {"email": OTHER, "name": "Piet", "timezone": "America/New_York"},
            {"email": IDLE, "name": "Ida"},
        ],
    }
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    return settings_from_mapping(data)


def seed(settings: Settings, store: Store, now: datetime = NOW) -> None:
    """Acme worsened this week (alert answered OFFBOARD, farewell awaiting approval),
    Globex is calm and sent feedback, Initech belongs to another owner."""
    fresh = (now - timedelta(days=2)).isoformat()
    history = [[(now - timedelta(weeks=k)).date().isoformat(), 80.0 - 3 * (11 - k)]
               for k in range(11, -1, -1)]  # 80 eleven weeks ago down to 47 now
    with store.session() as s:
        s.add(ClientState(
            client="Acme", score=38.0, state="unhealthy", trend=-30.0, computed_at=now,
            details={
                "signals": [
                    {"kind": "blame", "weight": 22.0, "evidence": [
                        {"date": fresh, "quote": "This is the third time I have asked you."}]},
                    {"kind": "price_pressure", "weight": 9.0, "evidence": [
                        {"date": (now - timedelta(days=50)).isoformat(),
                         "quote": "Your invoice is far too high."}]},
                ],
                "economics": {"revenue": 900.0, "currency": "EUR", "effort_units": 40.0,
                              "revenue_per_effort": 22.5, "flag": True,
                              "reason": "much work for little revenue"},
                "history": history,
                "metrics": {"insufficient_data": 0.0},
            },
        ))
        s.add(ClientState(client="Globex", score=91.0, state="healthy", trend=2.0,
                          computed_at=now, details={"signals": [], "history": []}))
        s.add(ClientState(client="Initech", score=20.0, state="unhealthy", trend=-5.0,
                          computed_at=now, details={}))
        s.add(HealthPoint(client="Acme", day=(now - timedelta(days=8)).date(), score=62.0,
                          state="watch"))
        for k in range(3):
            s.add(HealthPoint(client="Globex", day=(now - timedelta(weeks=k)).date(),
                              score=90.0 + k, state="healthy"))

        token = issue_token(s, settings, owner=OWNER, purpose="alert", subject_id="Acme",
                            now=now - timedelta(days=3))
        alert = compose(from_addr="team@northwind.test", to=[OWNER],
                        subject="Acme looks unhealthy", text="Reply OFFBOARD, SNOOZE or OK.",
                        **reply_headers(settings, token))  # type: ignore[arg-type]
        row = outbox.queue(s, settings, alert, kind="alert", client="Acme",
                           now=now - timedelta(days=3))
        row.state, row.sent_at = "sent", now - timedelta(days=3)
        answered = now - timedelta(days=2, hours=20)
        for used in s.scalars(select(CommandToken)):
            used.used_at = answered
        s.add(CommandLog(message_id="<reply-1@northwind.test>", from_addr=OWNER,
                         command="OFFBOARD", accepted=True, reason="started", at=answered))

        off = Offboarding(client="Acme", owner=OWNER, state="awaiting_approval",
                          started_at=answered, updated_at=answered)
        s.add(off)
        s.flush()
        draft = Draft(offboarding_id=off.id, kind="farewell", version=1,
                      subject="Thank you, Acme", text="Dear Ana, thank you.",
                      guardrails=[{"rule": "gratitude", "passed": True, "detail": ""}],
                      state="awaiting_approval", created_at=answered)
        s.add(draft)
        s.flush()
        request = compose(from_addr="team@northwind.test", to=[OWNER],
                          subject="Approve: farewell to Acme", text="Reply APPROVE.")
        req = outbox.queue(s, settings, request, kind="approval_request", owner=OWNER,
                           draft_id=draft.id, now=answered)
        req.state, req.sent_at = "sent", answered
        s.add(Feedback(client="Globex", message_id="<fb-1@globex.test>",
                       received_at=now - timedelta(days=1),
                       text="The launch went well.\nThanks to the whole team."))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(f"sqlite:///{tmp_path / 'state' / 'sg.db'}")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store(settings.database_url)
    yield store
    store.dispose()


def digest_rows(store: Store) -> list[OutboxMessage]:
    with store.session() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "digest")
                              .order_by(OutboxMessage.id)))


def as_message(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


# -- content on a seeded store -------------------------------------------------------


def test_content_from_the_store_covers_the_owners_week(settings: Settings, store: Store) -> None:
    seed(settings, store)
    rendered = digest.preview(settings, store, OWNER, now=NOW)
    model = rendered.model
    assert [c.name for c in model.clients] == ["Acme", "Globex"]  # not Piet's Initech
    acme = model.clients[0]
    assert acme.week_text == "Worsened from Watch to Unhealthy"
    assert acme.changes[0].quote == "This is the third time I have asked you." and \
        acme.changes[0].new
    assert acme.values[0] == 80.0 and acme.values[-1] == 47.0 and len(acme.values) == 12
    assert model.clients[1].values == (92.0, 91.0, 90.0)  # from the daily history table
    assert [(a.client, a.action) for a in model.alerts] == [
        ("Acme", "You replied OFFBOARD on Fri 6 Mar")]
    assert [(d.client, d.request_subject) for d in model.drafts] == [
        ("Acme", "Approve: farewell to Acme")]
    assert model.decisions[0].text.startswith("Approve the farewell to Acme (version 1")
    assert model.feedback[0].quote == "The launch went well."

    text = rendered.text
    assert text.index("NEEDS YOUR DECISION") < text.index("CLIENTS, WORST FIRST")
    assert text.index("Acme: Unhealthy") < text.index("Globex: Healthy")
    assert '"This is the third time I have asked you."' in text
    assert "Economics: 900 EUR/month; 40 effort units" in text
    assert "APPROVE on the first line" in text
    assert "Initech" not in text and "Initech" not in rendered.html


def test_the_email_is_alternative_with_related_pictures_by_content_id(
    settings: Settings, store: Store
) -> None:
    seed(settings, store)
    queued = digest.queue_digest(settings, store, OWNER, now=NOW)
    assert queued.outbox_id is not None and queued.week == "2026-W11"
    (row,) = digest_rows(store)
    assert row.to_addrs == [OWNER] and row.not_before == NOW  # staff mail: no send window
    msg = as_message(row.raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Auto-Submitted"] == "auto-generated"
    plain, related = msg.get_payload()  # type: ignore[misc]
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *pictures = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    html = html_part.get_content()
    assert_no_external_resources(html)
    cids = {p["Content-ID"].strip("<>") for p in pictures}
    assert {p.get_content_type() for p in pictures} == {"image/png"}
    referenced = set(re.findall(r'src="cid:([^"]+)"', html))
    assert referenced == cids and len(cids) == 2  # one trend picture per client
    for picture in pictures:
        assert picture.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert "Acme" in plain.get_content() and "Globex" in plain.get_content()


def assert_no_external_resources(html: str) -> None:
    tree = HTMLParser(html)
    assert not tree.css("script, link, iframe, object, embed, video, audio, base, form")
    for node in tree.css("[src], [background], [srcset], [poster]"):
        for attr in ("src", "background", "srcset", "poster"):
            value = (node.attributes.get(attr) or "").strip().lower()
            assert not value or value.startswith(("cid:", "data:image/png;base64,")), value
    assert not re.search(r"url\s*\(", html, re.I)  # no CSS-loaded resources either
    for node in tree.css("a[href]"):
        assert (node.attributes.get("href") or "").startswith("mailto:")


# -- exactly once per week -----------------------------------------------------------


def test_once_per_iso_week_across_restarts_and_catch_up_once(
    settings: Settings, store: Store
) -> None:
    seed(settings, store)
    assert digest.due_digests(settings, store, SLOT - timedelta(minutes=1)) == [
        digest.DueDigest(OWNER, "2026-W10", SLOT - timedelta(days=7)),
        digest.DueDigest(OTHER, "2026-W10", datetime(2026, 3, 2, 13, 0, tzinfo=UTC)),
    ]
    first = digest.queue_due_digests(settings, store, now=NOW)
    assert {(q.owner, q.week) for q in first} == {(OWNER, "2026-W11"), (OTHER, "2026-W10")}
    assert IDLE not in {q.owner for q in first}  # no clients: no digest
    assert digest.queue_due_digests(settings, store, now=NOW + timedelta(hours=1)) == []

    restarted = Store(settings.database_url)  # a new process over the same database
    try:
        assert digest.queue_due_digests(settings, restarted, now=NOW + timedelta(days=2),
                                        owners=[OWNER]) == []
        # Piet's Monday 08:00 in New York is 12:00 UTC (EDT began on 8 March 2026)
        before = digest.queue_due_digests(settings, restarted,
                                          now=datetime(2026, 3, 9, 11, 59, tzinfo=UTC))
        assert before == []
        piet = digest.queue_due_digests(settings, restarted,
                                        now=datetime(2026, 3, 9, 12, 1, tzinfo=UTC))
        assert [(q.owner, q.week) for q in piet] == [(OTHER, "2026-W11")]
        # down for three weeks: one catch-up, for the latest week only
        later = NOW + timedelta(weeks=3, days=2)
        caught = digest.queue_due_digests(settings, restarted, now=later, owners=[OWNER])
        assert [q.week for q in caught] == ["2026-W14"]
        assert digest.queue_due_digests(settings, restarted, now=later, owners=[OWNER]) == []
    finally:
        restarted.dispose()
    with store.session() as s:
        weeks = sorted(s.scalars(select(DigestRun.week).where(DigestRun.owner == OWNER)))
        linked = s.scalar(select(func.count()).select_from(DigestRun)
                          .where(DigestRun.outbox_id.is_not(None)))
    assert weeks == ["2026-W11", "2026-W14"]
    assert linked == len(digest_rows(store)) == 4


def test_a_second_queue_for_the_same_week_is_refused_unless_forced(
    settings: Settings, store: Store
) -> None:
    seed(settings, store)
    assert digest.queue_digest(settings, store, OWNER, now=NOW).reason == "queued"
    again = digest.queue_digest(settings, store, OWNER, now=NOW)
    assert (again.outbox_id, again.reason) == (None, "already queued for this week")
    forced = digest.queue_digest(settings, store, OWNER, now=NOW, force=True)
    assert forced.outbox_id is not None  # an explicit `digest --send`
    assert len(digest_rows(store)) == 2
    assert digest.queue_digest(settings, store, IDLE, now=NOW).outbox_id is None
    # the manual one counts for the week: the schedule does not add a third
    assert digest.queue_due_digests(settings, store, now=NOW, owners=[OWNER]) == []


def test_slots_follow_the_owners_wall_clock_across_dst(settings: Settings) -> None:
    # Berlin switches to summer time on 29 March 2026: 08:00 is 06:00 UTC from then on
    assert digest.next_slot(settings, OWNER, datetime(2026, 3, 25, tzinfo=UTC)) == datetime(
        2026, 3, 30, 6, 0, tzinfo=UTC)
    assert digest.last_slot(settings, OWNER, datetime(2026, 3, 29, 12, tzinfo=UTC)) == datetime(
        2026, 3, 23, 7, 0, tzinfo=UTC)
    assert digest.last_slot(settings, OWNER, SLOT) == SLOT
    later = settings_for(settings.database_url, schedule={"digest": "fri 16:30"})
    assert digest.next_slot(later, OTHER, NOW) == datetime(2026, 3, 13, 20, 30, tzinfo=UTC)


def test_cli_previews_and_sends(settings: Settings, store: Store, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli import main

    seed(settings, store, now=datetime.now(UTC))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[service]\ndatabase = "{settings.database_url}"\nown_domains = ["northwind.test"]\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 2525\nsecurity = "none"\n'
        'from_address = "team@northwind.test"\n'
        f'[[clients]]\nname = "Acme"\ndomains = ["acme.test"]\nowner = "{OWNER}"\n'
        f'[[clients]]\nname = "Globex"\ndomains = ["globex.test"]\nowner = "{OWNER}"\n',
        encoding="utf-8",
    )
    out = tmp_path / "digest.html"
    assert main(["--config", str(config), "digest", "--owner", OWNER, "--preview", str(out),
                 "--send"]) == 0
    printed = capsys.readouterr().out
    assert f"preview: {out}" in printed and "queued as outbox message" in printed
    html = out.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html and "cid:" not in html
    assert len(digest_rows(store)) == 1
    assert main(["--config", str(config), "digest", "--owner", "nobody@x.test"]) == 2
    assert main(["--config", str(config), "digest"]) == 0
    assert "Acme: Unhealthy" in capsys.readouterr().out


# -- in a browser ------------------------------------------------------------------------

_PROBE = (
    "<script>addEventListener('load',function(){var b=0;for(var i of document.images)"
    "{if(!i.complete||i.naturalWidth===0)b++;}document.body.setAttribute('data-images',"
    "document.images.length);document.body.setAttribute('data-broken',b);});</script>"
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium not installed: run tools/install_test_deps.sh")
    return found


def _png_pixels(png: bytes) -> tuple[int, int, bytes]:
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", png[pos + 8:pos + 16])
        elif kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_html_renders_in_headless_chromium(settings: Settings, store: Store,
                                           tmp_path: Path) -> None:
    chromium = _chromium()
    seed(settings, store)
    rendered = digest.preview(settings, store, OWNER, now=NOW)
    page = digest.write_preview(rendered, tmp_path / "digest.html")
    assert_no_external_resources(page.read_text(encoding="utf-8"))
    probed = tmp_path / "probed.html"  # the test's own copy gets the image probe
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                      encoding="utf-8")
    shot = tmp_path / "shot.png"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=800,1400"]
    subprocess.run([*base, f"--screenshot={shot}", page.as_uri()], check=True,
                   capture_output=True, timeout=60)
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (800, 1400)
    assert len(set(pixels)) > 50  # text, colours and pictures, not a blank page

    dom = subprocess.run([*base, "--virtual-time-budget=3000", "--dump-dom", probed.as_uri()],
                         check=True, capture_output=True, timeout=60, text=True).stdout
    tree = HTMLParser(dom)
    body = tree.body
    assert body is not None
    assert body.attributes.get("data-images") == "2"
    assert body.attributes.get("data-broken") == "0"
    text = body.text(separator=" ")
    for name in ("Acme", "Globex"):
        assert name in text
    assert "Needs your decision" in text and "This is the third time I have asked you." in text


# -- in the owner's real mailbox ---------------------------------------------------------


@pytest.fixture
def env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from open_env(dovecot, tmp_path, monkeypatch)


def test_digest_arrives_once_in_the_owners_mailbox_with_pictures(env: Env) -> None:
    now = datetime.now(UTC)
    with env.store.session() as s:
        s.add(ClientState(client="Acme", score=41.0, state="at_risk", trend=-20.0,
                          computed_at=now, details={
                              "signals": [{"kind": "dismissal", "weight": 15.0, "evidence": [
                                  {"date": now.isoformat(), "quote": "Just do it."}]}],
                              "history": [[(now - timedelta(weeks=k)).date().isoformat(),
                                           90.0 - 4 * (11 - k)] for k in range(12)][::-1],
                          }))
    queued = digest.queue_due_digests(env.settings, env.store, now=now)
    assert {q.owner for q in queued} == {OWNER, "piet@northwind.test"}
    report = outbox.send_due(env.settings, env.store)
    assert len(report.sent) == 2
    assert digest.queue_due_digests(env.settings, env.store, now=now) == []
    assert outbox.send_due(env.settings, env.store).sent == []

    (raw,) = env.raw_inbox(OWNER)  # exactly one message
    msg = as_message(raw)
    assert msg["Subject"].startswith("Your clients this week (")
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert "Acme: At risk, score 41/100" in plain.get_content()
    markup = html.get_content()
    assert "Acme" in markup
    parts = {p["Content-ID"].strip("<>"): p for p in msg.walk() if p["Content-ID"]}
    for cid in re.findall(r'src="cid:([^"]+)"', markup):
        picture = parts[cid]  # resolved by Content-ID within the delivered message
        assert picture.get_content_type() == "image/png"
        assert picture.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(parts) == 1
    with env.store.session() as s:
        assert s.scalar(select(func.count()).select_from(DigestRun)) == 2


def test_history_rows_feed_the_picture_when_no_weekly_history_is_stored(
    settings: Settings, store: Store
) -> None:
    with store.session() as s:
        s.add(ClientState(client="Initech", score=50.0, state="at_risk", trend=-10.0,
                          computed_at=NOW, details={}))
        for days, score in ((1, 50.0), (3, 55.0), (9, 60.0), (30, 70.0)):
            s.add(HealthPoint(client="Initech", day=(NOW - timedelta(days=days)).date(),
                              score=score, state="watch"))
    model = digest.preview(settings, store, OTHER, now=NOW).model
    assert model.clients[0].values == (70.0, 60.0, 50.0)
    assert model.clients[0].week_text == "Worsened from Watch to At risk"


def test_scheduler_jobs_per_owner_at_the_local_slot_and_former_owners_dropped(
    settings: Settings, store: Store
) -> None:
    from service.workflows.scheduler import Scheduler

    sched = Scheduler(settings, store)
    sched.start()
    try:
        sched.weekly(f"{digest.JOB_PREFIX}gone@northwind.test", "service.workflows.digest:"
                     "digest_job", day=0, at=SLOT.time(), timezone="UTC", owner="gone")
        ids = digest.schedule_digests(sched, settings)
        jobs = {j["id"]: j for j in sched.jobs()}
    finally:
        sched.shutdown()
    assert ids == [f"{digest.JOB_PREFIX}{OWNER}", f"{digest.JOB_PREFIX}{OTHER}",
                   digest.CATCH_UP_JOB]
    assert f"{digest.JOB_PREFIX}gone@northwind.test" not in jobs
    olga = datetime.fromisoformat(jobs[f"{digest.JOB_PREFIX}{OWNER}"]["next_run"])
    assert olga.astimezone(digest.owner_zone(settings, OWNER)).strftime("%a %H:%M") == \
        "Mon 08:00"

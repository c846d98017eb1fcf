"""The `saygoodbye` command: parse arguments, call a use case, print the result.

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.
`--json` output goes to stdout as one document; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import app, views
from .config import Settings, load_settings
from .errors import ConfigError, SaygoodbyeError, UsageError
from .logs import setup_logging

log = logging.getLogger("saygoodbye")


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saygoodbye",
        description="Know when a client relationship has gone bad, and end it well.",
    )
    parser.add_argument(
        "--config", metavar="PATH",
        help="configuration file (default: $SAYGOODBYE_CONFIG, else ./config.toml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("sync", help="one pass of ingest + analysis, then exit")
    p.add_argument("--source", metavar="mbox:FILE|maildir:DIR",
                   help="read an export instead of the IMAP mailbox")
    p.add_argument("--workers", type=int, default=None,
                   help="analysis processes (default: one per core, up to 4)")
    _add_json(p)

    p = sub.add_parser("clients", help="one row per client: score, state, trend, signals")
    p.add_argument("--unassigned", action="store_true",
                   help="list senders not mapped to any client instead")
    _add_json(p)

    p = sub.add_parser("client", help="one client: signals with quoted evidence, economics")
    p.add_argument("name")
    _add_json(p)

    p = sub.add_parser("status", help="last sync, stored messages, queue sizes, errors")
    _add_json(p)

    p = sub.add_parser("outbox", help="scheduled and sent emails; `outbox cancel ID` stops one")
    p.add_argument("action", nargs="?", choices=("cancel",), help="cancel a message not sent yet")
    p.add_argument("id", nargs="?", type=int, metavar="ID", help="outbox message id")
    _add_json(p)

    p = sub.add_parser("inspect", help="how raw emails are read (needs no database)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.eml")
    _add_json(p)

    p = sub.add_parser("check", help="the farewell guardrails over hand-written drafts")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--client", metavar="NAME",
                   help="also check this client's names, the owner's signature and open work "
                        "(needs a config)")
    p.add_argument("--kind", default="farewell",
                   choices=("farewell", "feedback_request", "conversation_request"),
                   help="what the draft is (default: farewell)")
    _add_json(p)

    p = sub.add_parser("offboard", help="start parting ways with a client (or take the next "
                                        "step); each email is approved by your reply")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--skip-conversation", action="store_true",
                   help="no conversation request: draft the farewell straight away")
    p.add_argument("--met", action="store_true",
                   help="the meeting was held: draft the farewell")
    p.add_argument("--agreed", metavar="TEXT",
                   help="with --met: what was agreed (the farewell confirms it)")
    p.add_argument("--fresh-thread", action="store_true",
                   help="send the farewell as a new thread, not in the client's latest one")
    _add_json(p)

    p = sub.add_parser("drafts", help="offboarding drafts with guardrail results and state")
    _add_json(p)

    p = sub.add_parser("pending", help="open work with a client: add, done, list")
    p.add_argument("action", choices=("add", "done", "list"))
    p.add_argument("args", nargs="*", metavar="ARG",
                   help='add CLIENT "text" | done ID | list [CLIENT]')
    _add_json(p)

    sub.add_parser("migrate", help="apply database migrations now (also done at every start)")

    sub.add_parser("run", help="the daemon: mailbox watcher, outbox, retention (systemd)")

    p = sub.add_parser("forget", help="erase everything stored about a client")
    p.add_argument("name", metavar="CLIENT")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_json(p)

    p = sub.add_parser("demo", help="bundled sample mailbox into a local SQLite, then the table")
    p.add_argument("--state-dir", type=Path, default=Path("demo-state"),
                   help="where the demo database and previews go (default: ./demo-state)")
    _add_json(p)

    p = sub.add_parser("digest", help="the weekly digest: show it, preview the HTML, or send now")
    p.add_argument("--owner", metavar="EMAIL", help="only this owner (default: every owner)")
    p.add_argument("--preview", type=Path, metavar="FILE.html",
                   help="write the HTML for a browser (one file per owner when several)")
    p.add_argument("--send", action="store_true",
                   help="queue it in the outbox now (the daemon also sends it weekly)")
    _add_json(p)

    p = sub.add_parser("auth", help="one-time OAuth2 consent for Google or Microsoft 365")
    p.add_argument("provider", choices=["google", "microsoft"])
    p.add_argument("--section", choices=["mailbox", "smtp"], default="mailbox",
                   help="whose oauth2_* keys to use (default: mailbox)")
    p.add_argument("--output", type=Path, metavar="FILE",
                   help="store the refresh token here (default: oauth2_refresh_token_file)")
    p.add_argument("--manual", action="store_true",
                   help="Google, no browser on this machine: paste the redirected address")
    p.add_argument("--no-browser", action="store_true",
                   help="Google: print the address instead of opening a browser")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _emit(args: argparse.Namespace, data: Any, render: Callable[[Any], None]) -> None:
    if getattr(args, "json", False):
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        render(data)


def cmd_sync(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not args.source:
        if settings.mailbox is None:
            raise ConfigError("no [mailbox] table; add one or pass --source mbox:FILE",
                              path=str(settings.source_path), key="mailbox")
        from .pipeline import live_pass  # the live path needs the IMAP stack

        result = live_pass(settings, app.open_store(settings),
                           progress=views.progress_factory(args))
        _emit(args, result, views.print_sync)
        return 0
    store = app.open_store(settings)
    with views.ingest_progress(enabled=not args.json) as (advance, set_total):
        stats = app.sync_offline(settings, store, args.source, progress=advance,
                                 on_total=set_total, workers=args.workers)
    data = {"source": args.source, "seen": stats.seen, "stored": stats.stored,
            "duplicates": stats.duplicates, "defective": stats.defective}
    _emit(args, data, views.print_sync)
    return 0


def cmd_clients(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = app.open_store(settings)
    if args.unassigned:
        _emit(args, app.unassigned_report(store), views.print_unassigned)
    else:
        _emit(args, app.clients_report(settings, store), views.print_clients)
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    settings = _settings(args)
    report = app.client_report(settings, app.open_store(settings), args.name)
    if report is None:
        known = ", ".join(c.name for c in settings.clients) or "none configured"
        raise UsageError(f"no client named {args.name!r} (known: {known})")
    _emit(args, report, views.print_client)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _emit(args, app.status_report(settings, app.open_store(settings)), views.print_status)
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    from .workflows import outbox

    settings = _settings(args)
    store = app.open_store(settings)
    if args.action == "cancel":
        if args.id is None:
            raise UsageError("outbox cancel needs the message ID (see `saygoodbye outbox`)")
        _emit(args, outbox.cancel(store, args.id), views.print_outbox_cancelled)
        return 0
    if args.id is not None:
        raise UsageError("an ID is only taken by `outbox cancel ID`")
    _emit(args, outbox.listing(store), views.print_outbox)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    settings = _settings(args) if args.config else None
    results = app.inspect_files(args.files, settings)
    data: Any = results[0] if len(results) == 1 else results
    _emit(args, data, views.print_inspect)
    return 1 if any("error" in r for r in results) else 0


def _check_context(args: argparse.Namespace) -> Any:
    """Client-specific guardrail facts: names from the config, open work from the store."""
    from .workflows.guardrails import GuardrailContext

    if not args.client:
        return GuardrailContext()
    settings = _settings(args)
    client = settings.client(args.client)
    if client is None:
        known = ", ".join(c.name for c in settings.clients) or "none configured"
        raise UsageError(f"no client named {args.client!r} (known: {known})")
    from sqlalchemy import select

    from .store.models import PendingItem

    store = app.open_store(settings)
    try:
        with store.session() as session:
            pending = tuple(session.scalars(
                select(PendingItem.text)
                .where(PendingItem.client == client.name, PendingItem.done_at.is_(None))
                .order_by(PendingItem.id)))
    finally:
        store.dispose()
    owner = settings.owner(client.owner)
    return GuardrailContext(
        client_name=client.name, owner_name=owner.name, owner_signature=owner.signature,
        other_clients=tuple(c.name for c in settings.clients if c.name != client.name),
        pending_items=pending)


def cmd_check(args: argparse.Namespace) -> int:
    from .workflows.guardrails import check_draft, passed

    context = _check_context(args)
    results = []
    for path in args.files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
        found = check_draft(text, kind=args.kind, context=context)
        results.append({
            "file": str(path), "kind": args.kind, "passed": passed(found),
            "failures": [{"rule": r.rule, "sentence": r.sentence, "why": r.detail}
                         for r in found if not r.passed],
            "checks": [{"rule": r.rule, "passed": r.passed, "detail": r.detail}
                       for r in found],
        })
    _emit(args, results, views.print_check)
    return 0 if all(r["passed"] for r in results) else 1


def cmd_offboard(args: argparse.Namespace) -> int:
    from .workflows import offboarding

    if args.agreed and not args.met:
        raise UsageError("--agreed goes with --met (what the meeting agreed)")
    settings = _settings(args)
    result = offboarding.start(settings, app.open_store(settings), args.name,
                               skip_conversation=args.skip_conversation, met=args.met,
                               agreed=args.agreed, fresh_thread=args.fresh_thread)
    _emit(args, result, views.print_offboard)
    return 0


def cmd_drafts(args: argparse.Namespace) -> int:
    from .workflows import offboarding

    settings = _settings(args)
    _emit(args, offboarding.drafts_listing(settings, app.open_store(settings)),
          views.print_drafts)
    return 0


def cmd_pending(args: argparse.Namespace) -> int:
    from .workflows import pending

    settings = _settings(args)
    store = app.open_store(settings)
    if args.action == "add":
        if len(args.args) != 2:
            raise UsageError('usage: saygoodbye pending add CLIENT "what is still open"')
        _emit(args, pending.add_item(settings, store, args.args[0], args.args[1]),
              views.print_pending_item)
    elif args.action == "done":
        if len(args.args) != 1 or not args.args[0].lstrip("#").isdigit():
            raise UsageError("usage: saygoodbye pending done ID (see `saygoodbye pending list`)")
        _emit(args, pending.done_item(store, int(args.args[0].lstrip("#"))),
              views.print_pending_item)
    else:
        if len(args.args) > 1:
            raise UsageError("usage: saygoodbye pending list [CLIENT]")
        client = args.args[0] if args.args else None
        _emit(args, pending.list_items(settings, store, client), views.print_pending)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    app.open_store(settings).dispose()
    log.info("event=migrated database=%s", app._redacted_url(settings.database_url))
    return 0


def _print_forget(data: dict[str, Any]) -> None:
    removed = {k: v for k, v in data["removed"].items() if v}
    if not removed:
        print(f"Nothing was stored about {data['client']!r}.")
        return
    print(f"Erased {data['total']} records about {data['client']!r}:")
    for what, count in removed.items():
        print(f"  {what.replace('_', ' ')}: {count}")


def cmd_run(args: argparse.Namespace) -> int:
    from .daemon import main as run_daemon

    return run_daemon(args.config, verbose=args.verbose)


def cmd_forget(args: argparse.Namespace) -> int:
    from .privacy import forget

    settings = _settings(args)
    client = settings.client(args.name)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("forget needs confirmation: run it in a terminal or pass --yes")
        answer = input(f"Erase everything stored about {args.name!r}? "
                       "This cannot be undone. Type the client name to confirm: ")
        if answer.strip().casefold() != args.name.strip().casefold():
            print("saygoodbye: nothing erased", file=sys.stderr)
            return 1
    report = forget(app.open_store(settings), client.name if client else args.name,
                    addresses=client.addresses if client else (),
                    domains=client.domains if client else ())
    data = {"client": report.client, "removed": report.removed, "total": report.total}
    _emit(args, data, _print_forget)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.state_dir, json_output=args.json)
    return 0


def _print_digest(results: list[dict[str, Any]]) -> None:
    if not results:
        print("No owner has clients: no digest.")
    for result in results:
        if result["preview"] is None and result["queued"] is None:
            print(result["text"])
            continue
        print(f"{result['owner']} ({result['week']}): {result['subject']}")
        if result["preview"]:
            print(f"  preview: {result['preview']}")
        if result["outbox_id"]:
            print(f"  queued as outbox message {result['outbox_id']} "
                  "(sent by the next outbox pass: `saygoodbye run` or `sync`)")


def cmd_digest(args: argparse.Namespace) -> int:
    from .workflows import digest

    settings = _settings(args)
    store = app.open_store(settings)
    try:
        results = digest.command(settings, store, owner=args.owner, preview_file=args.preview,
                                 send=args.send)
    finally:
        store.dispose()
    _emit(args, results, _print_digest)
    return 0


def cmd_auth(args: argparse.Namespace) -> int:
    from .auth_setup import run_auth_setup

    run_auth_setup(_settings(args), args.provider, section=args.section, output=args.output,
                   manual=args.manual, open_browser=not args.no_browser)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "sync": cmd_sync,
    "clients": cmd_clients,
    "client": cmd_client,
    "status": cmd_status,
    "outbox": cmd_outbox,
    "inspect": cmd_inspect,
    "check": cmd_check,
    "offboard": cmd_offboard,
    "drafts": cmd_drafts,
    "pending": cmd_pending,
    "migrate": cmd_migrate,
    "run": cmd_run,
    "forget": cmd_forget,
    "demo": cmd_demo,
    "digest": cmd_digest,
    "auth": cmd_auth,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging("debug" if args.verbose else "info")
    try:
        return COMMANDS[args.command](args)
    except SaygoodbyeError as exc:
        print(f"saygoodbye: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("saygoodbye: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Terminal rendering with rich: tables for listings, a progress bar for long work."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

_STATE_STYLE = {
    "healthy": "green",
    "watch": "yellow",
    "at_risk": "dark_orange",
    "unhealthy": "bold red",
}


def _fmt_score(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _fmt_trend(value: float | None) -> str:
    if value is None:
        return "–"
    arrow = "▲" if value > 0.5 else "▼" if value < -0.5 else "·"
    shown = round(value) or 0  # never "-0"
    return f"{arrow} {shown:+d}"


def _state(value: str) -> str:
    return f"[{_STATE_STYLE.get(value, 'white')}]{value}[/]"


def _top_signals(signals: list[dict[str, Any]], limit: int = 3) -> str:
    positive = [s for s in signals if s.get("weight", 0) > 0][:limit]
    return ", ".join(s["kind"].replace("_", " ") for s in positive) or "–"


def _money(amount: float | None, currency: str | None) -> str:
    if amount is None:
        return "–"
    return f"{amount:,.0f} {currency or ''}".strip()


def print_clients(rows: list[dict[str, Any]]) -> None:
    # On a narrow terminal (80 columns, or output captured by a pipe) the columns that can
    # be read elsewhere give way, so every row stays on one or two lines.
    narrow = console.width < 110
    table = Table(title="Clients (worst first)", header_style="bold")
    table.add_column("Client", no_wrap=True, overflow="ellipsis", max_width=22)
    if not narrow:
        table.add_column("Owner", style="dim", no_wrap=True)
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("State", no_wrap=True)
    table.add_column("Trend 30d" if not narrow else "30d", justify="right", no_wrap=True)
    if not narrow:
        table.add_column("Msgs", justify="right", no_wrap=True)
    table.add_column("Revenue/mo" if not narrow else "Rev/mo", justify="right", no_wrap=True)
    table.add_column("Top signals", ratio=1)
    for row in rows:
        cells = [row["name"]]
        if not narrow:
            cells.append(row["owner"].split("@")[0])
        cells += [_fmt_score(row["score"]), _state(row["state"]), _fmt_trend(row["trend"])]
        if not narrow:
            cells.append(str(row["messages"]))
        cells += [_money(row.get("monthly_revenue"), row.get("currency")),
                  _top_signals(row["signals"], limit=2 if narrow else 3)]
        table.add_row(*cells)
    console.print(table)


def print_unassigned(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Unassigned senders", header_style="bold")
    table.add_column("Sender (domain, or address at free mail)")
    table.add_column("Msgs", justify="right")
    table.add_column("First")
    table.add_column("Last")
    for row in rows:
        table.add_row(row["sender"], str(row["messages"]), (row["first"] or "")[:10],
                      (row["last"] or "")[:10])
    console.print(table)


def print_client(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]{report['name']}[/]  owner {report['owner']}  "
        f"score {_fmt_score(report['score'])}  {_state(report['state'])}  "
        f"trend {_fmt_trend(report['trend'])}  messages {report['messages']}"
    )
    economics = report.get("economics")
    if economics:
        flag = " [bold red]⚑[/] " + economics["reason"] if economics.get("flag") else ""
        console.print(
            f"Economics: revenue {_money(economics.get('revenue'), economics.get('currency'))}"
            f"/month, effort {economics.get('effort_units')} units/30d{flag}"
        )
    signals = Table(title="Signals", header_style="bold", show_lines=True)
    signals.add_column("Signal")
    signals.add_column("Weight", justify="right")
    signals.add_column("Evidence")
    for signal in report["signals"]:
        quotes = "\n".join(
            f"“{e['quote']}” — {(e.get('date') or '')[:10]} {e.get('sender') or ''}".strip()
            for e in signal.get("evidence", [])
        )
        signals.add_row(signal["kind"].replace("_", " "), f"{signal['weight']:+.1f}", quotes)
    console.print(signals)
    recent = Table(title="Recent messages", header_style="bold")
    for column in ("Date", "Side", "From", "Subject", "Friction"):
        recent.add_column(column)
    for item in report["recent"]:
        friction = "auto" if item["auto_generated"] else (
            "–" if item["friction"] is None else f"{item['friction']:.2f}")
        recent.add_row((item["date"] or "")[:16], item["role"], item["from"] or "",
                       item["subject"][:60], friction)
    console.print(recent)
    off = report.get("offboarding")
    if off:
        if off.get("state"):
            line = f"Offboarding: {off['state'].replace('_', ' ')}"
            if off.get("held_reason"):
                line += f" (held: {off['held_reason']})"
            console.print(escape(line), highlight=False)
        for item in off.get("feedback", []):
            console.print(f"Feedback {item['received_at'][:10]}: {escape(item['text'][:300])}",
                          highlight=False)


def print_status(status: dict[str, Any]) -> None:
    table = Table(title="saygoodbye status", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("database", status["database"])
    table.add_row("messages stored", str(status["messages"]))
    table.add_row("clients configured", str(status["clients"]))
    source = status.get("last_sync_source") or ""
    table.add_row("last sync", f"{status['last_sync'] or 'never'} {source}".strip())
    if status.get("mailbox_lag_seconds") is not None:
        table.add_row("mailbox lag", f"{status['mailbox_lag_seconds']} s since the last sync")
    daemon = status.get("daemon")
    if daemon is None:
        table.add_row("daemon", "not started on this state directory")
    else:
        running = "running" if daemon.get("running") else "[red]not running[/]"
        table.add_row("daemon", f"{running} (pid {daemon.get('pid')})")
    for folder in status["mailbox"]:
        table.add_row(f"folder {folder['folder']}",
                      f"uid {folder['last_uid']} (validity {folder['uidvalidity']})")
    outbox = ", ".join(f"{k}: {v}" for k, v in sorted(status["outbox"].items())) or "empty"
    table.add_row("outbox", outbox)
    for job in status.get("next_jobs", []):
        table.add_row("next job", f"{job.get('next_run')} {job.get('name')}")
    for error in status["errors"][:5]:
        table.add_row(f"[red]{error['level']}[/]", f"{error['at']} {error['component']}: "
                      f"{error['message']}")
    console.print(table)


def print_sync(data: dict[str, Any]) -> None:
    console.print(
        f"Read {data['seen']} messages from {data.get('source', 'the mailbox')}: "
        f"{data['stored']} stored, {data['duplicates']} already known, "
        f"{data['defective']} with parse defects (stored, listed in `inspect`)."
    )


def print_inspect(data: dict[str, Any] | list[dict[str, Any]]) -> None:
    for item in data if isinstance(data, list) else [data]:
        if "error" in item:
            console.print(f"[red]{item['file']}: {item['error']}[/]")
            continue
        console.rule(item["file"])
        console.print(f"From: {item['from_name'] or ''} <{item['from']}>   Date: {item['date']}")
        console.print(f"Subject: {item['subject']}")
        console.print(f"Client: {item['client'] or '–'} ({item['role']})")
        if item["auto_generated"]:
            console.print(f"[yellow]auto-generated[/]: {item['auto_reason']}")
        else:
            tone = item["tone"]
            console.print(f"Tone: polarity {tone['polarity']:+.2f}, subjectivity "
                          f"{tone['subjectivity']:.2f}   Friction: {item['friction']:.2f}")
        console.print("[bold]New text:[/]")
        console.print(item["new_text"] or "[dim](empty)[/]", markup=False)
        for signal in item["signals"]:
            quotes = "; ".join(f"“{e['quote']}”" for e in signal["evidence"])
            console.print(f"  {signal['kind']} {signal['weight']:+.2f} {quotes}", markup=False)
        if item["defects"]:
            console.print(f"[yellow]defects:[/] {'; '.join(item['defects'])}")


@contextmanager
def ingest_progress(
    enabled: bool = True,
) -> Iterator[tuple[Callable[[int], None], Callable[[int | None], None]]]:
    """A progress bar on a terminal; silent (and free) otherwise."""
    if not (enabled and sys.stderr.isatty()):
        yield (lambda n: None), (lambda total: None)
        return
    progress = Progress(
        SpinnerColumn(), TextColumn("ingest"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True,
    )
    task = progress.add_task("ingest", total=None)
    with progress:
        yield (
            lambda n: progress.advance(task, n),
            lambda total: progress.update(task, total=total),
        )


def progress_factory(args: Any) -> Callable[..., Any] | None:
    """For the IMAP backfill: the same bar, driven by the sync's callbacks."""
    if getattr(args, "json", False) or not sys.stderr.isatty():
        return None
    return ingest_progress


def print_check(results: list[dict[str, Any]]) -> None:
    """A verdict per file; for a failing file, a table of what to fix and where."""
    for item in results:
        if item["passed"]:
            console.print(f"[green]✓[/] {item['file']}: passes every check", highlight=False)
            continue
        table = Table(title=f"✗ {item['file']}", title_justify="left", header_style="bold",
                      show_lines=True, expand=True)
        table.add_column("Rule", no_wrap=True, style="red")
        table.add_column("Why, and the sentence", overflow="fold", ratio=1)
        for failure in item["failures"]:
            why = escape(failure["why"])
            if failure["sentence"]:
                why += f"\n[italic]“{escape(failure['sentence'])}”[/]"
            table.add_row(failure["rule"].replace("_", " "), why)
        console.print(table)
    failed = sum(1 for item in results if not item["passed"])
    console.print(f"{len(results) - failed} of {len(results)} drafts pass.")


def _short_time(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "–"


def print_outbox(rows: list[dict[str, Any]]) -> None:
    """Pending mail first, then what went out; errors say what the server said."""
    table = Table(title="Outbox", header_style="bold")
    for name, justify in (("ID", "right"), ("Kind", "left"), ("To", "left"),
                          ("Subject", "left"), ("State", "left"), ("When (UTC)", "left"),
                          ("Note", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    styles = {"sent": "green", "failed": "bold red", "uncertain": "yellow",
              "cancelled": "dim", "sending": "cyan"}
    for row in rows:
        when = row["sent_at"] if row["state"] == "sent" else row["not_before"]
        state = row["state"]
        table.add_row(
            str(row["id"]), row["kind"], ", ".join(row["to"]), row["subject"],
            f"[{styles.get(state, 'white')}]{state}[/]", _short_time(when),
            row.get("error") or "",
        )
    if not rows:
        console.print("The outbox is empty.")
        return
    console.print(table)


def print_outbox_cancelled(row: dict[str, Any]) -> None:
    console.print(f"Message {row['id']} ({row['subject']!r}) is {row['state']}.",
                  highlight=False)


def print_drafts(rows: list[dict[str, Any]]) -> None:
    """Offboarding drafts: where each stands, which checks fail, what is still open."""
    if not rows:
        console.print("No offboarding drafts. Start one with `saygoodbye offboard CLIENT`.")
        return
    table = Table(title="Offboarding drafts", header_style="bold")
    for name, justify in (("ID", "right"), ("Client", "left"), ("Kind", "left"),
                          ("Ver", "right"), ("Offboarding", "left"), ("Draft", "left"),
                          ("Checks", "left"), ("Open", "right"), ("Scheduled (UTC)", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        failed = [g["rule"] for g in row["guardrails"] if not g["passed"]]
        checks = "[green]pass[/]" if not failed else "[bold red]fail: " + escape(
            ", ".join(failed)) + "[/]"
        table.add_row(str(row["id"]), escape(row["client"]), row["kind"].replace("_", " "),
                      str(row["version"]), row["state"].replace("_", " "),
                      row.get("draft_state", "").replace("_", " "), checks,
                      str(len(row["pending"])), _short_time(row["scheduled_for"]))
    console.print(table)
    held = {r["client"]: r["held_reason"] for r in rows if r.get("held_reason")}
    for client, reason in held.items():
        console.print(f"[yellow]Held[/] {escape(client)}: {escape(reason)}", highlight=False)


def print_offboard(data: dict[str, Any]) -> None:
    console.print(f"{escape(data['client'])}: {escape(data['action'])} "
                  f"(offboarding #{data['offboarding_id']}, {data['state'].replace('_', ' ')}).",
                  highlight=False)
    for draft in data["drafts"]:
        failed = [g["rule"] for g in draft["guardrails"] if not g["passed"]]
        note = "passes its checks" if not failed else "fails: " + ", ".join(failed)
        console.print(f"  {draft['kind'].replace('_', ' ')} v{draft['version']} "
                      f"({draft['draft_state'].replace('_', ' ')}): {escape(note)}",
                      highlight=False)
    console.print(f"The approval request goes to {escape(data['owner'])} with the next outbox "
                  "pass; reply to it to decide.", highlight=False)


def print_pending(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("Nothing open.")
        return
    table = Table(title="Open work", header_style="bold")
    for name, justify in (("ID", "right"), ("Client", "left"), ("Item", "left"),
                          ("From", "left"), ("Since (UTC)", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(str(row["id"]), escape(row["client"]), escape(row["text"]),
                      row["source"], _short_time(row["created_at"]))
    console.print(table)


def print_pending_item(row: dict[str, Any]) -> None:
    status = "open" if row["open"] else "done"
    console.print(f"#{row['id']} {escape(row['client'])}: {escape(row['text'])} ({status})",
                  highlight=False)

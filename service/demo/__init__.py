"""The embedded default: the bundled sample mailbox into a local SQLite file.

Runs the same pipeline as `sync --source mbox:…`, with the demo config that
ships inside the package, and assesses health as of the newest sample message
(the sample is history; judging it against today's date would only show decay).
"""

from __future__ import annotations

import json
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from .. import app, views
from ..config import Settings, settings_from_mapping


def demo_files() -> tuple[Path, Path]:
    base = resources.files("service") / "demo"
    return Path(str(base / "demo.toml")), Path(str(base / "sample.mbox"))


def demo_settings(state_dir: Path) -> Settings:
    """The bundled demo config pointed at ``state_dir``; also written there for follow-ups."""
    config_path, _ = demo_files()
    text = config_path.read_text(encoding="utf-8")
    database = f"sqlite:///{(state_dir / 'demo.db').resolve()}"
    text = text.replace(
        "[service]\n",
        f"[service]\ndatabase = {json.dumps(database)}\n"
        f"state_dir = {json.dumps(str(state_dir.resolve()))}\n",
        1,
    )
    written = state_dir / "config.toml"
    written.write_text(text, encoding="utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return settings_from_mapping(data, path=str(written))


def run_demo(state_dir: Path, *, json_output: bool = False) -> dict[str, Any]:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings = demo_settings(state_dir)
    _, mbox = demo_files()
    store = app.open_store(settings)
    with views.ingest_progress(enabled=not json_output) as (advance, set_total):
        stats = app.sync_offline(settings, store, f"mbox:{mbox}", progress=advance,
                                 on_total=set_total)
    as_of = app.latest_message_date(store)
    if as_of is not None:
        app.refresh_health(settings, store, now=as_of)
    clients = app.clients_report(settings, store)
    digests = _digest_previews(settings, store, state_dir, as_of)
    summary = {
        "database": str(state_dir / "demo.db"),
        "mailbox": str(mbox),
        "as_of": app.iso(as_of),
        "seen": stats.seen,
        "stored": stats.stored,
        "duplicates": stats.duplicates,
        "clients": clients,
        "digests": [str(p) for p in digests],
    }
    if json_output:
        json.dump(summary, sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
    else:
        views.console.print(
            f"Ingested the sample mailbox ({stats.seen} messages, {stats.stored} new) into "
            f"{summary['database']}; health as of {(summary['as_of'] or '')[:10]}."
        )
        views.print_clients(clients)
        for path in digests:
            views.console.print(f"Weekly digest preview (open in a browser): {path}",
                                soft_wrap=True)
        views.console.print(
            f"Next: .venv/bin/saygoodbye --config {state_dir / 'config.toml'} client NAME "
            "(evidence and economics for one client)."
        )
    store.dispose()
    return summary


def _digest_previews(settings: Settings, store: Any, state_dir: Path, as_of: Any) -> list[Path]:
    """Each owner's weekly digest as of the newest sample message, as HTML files."""
    from ..workflows import digest

    paths = []
    for owner in digest.owners_with_clients(settings):
        rendered = digest.preview(settings, store, owner, now=as_of)
        paths.append(digest.write_preview(rendered, state_dir / f"digest-{owner}.html"))
    return paths

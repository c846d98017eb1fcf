"""Health refreshes in a process of their own, beside the mailbox watcher.

Scoring reads every message of a client and costs seconds of pure Python on a big
mailbox. Run in a thread of the daemon it holds the GIL in 5 ms slices against the
watcher thread, whose every IMAP read, parse and commit then waits its turn: new mail
took over a second to reach the database at 100k messages. A separate process
(spawned, so no locks or threads of the daemon are inherited) scores in parallel on
the other core and writes its results in one short transaction of its own.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlalchemy.engine import make_url

from .config import Settings
from .store.db import Store

log = logging.getLogger(__name__)

# Child-process state: one store per database URL, opened on first use.
_child_stores: dict[str, Any] = {}


def _child_init(level: str, fmt: str) -> None:
    from .logs import setup_logging

    setup_logging(level, fmt)


def _refresh_in_child(settings: Settings, clients: Sequence[str] | None) -> None:
    from .app import open_store, refresh_health

    url = settings.database_url
    store = _child_stores.get(url)
    if store is None:
        store = _child_stores[url] = open_store(settings)
    refresh_health(settings, store, clients=clients)


def _in_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


class HealthRefresher:
    """refresh_health in one long-lived child process (the same call in-thread, on the
    daemon's own store, for an in-memory database, which another process cannot see)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._pool: ProcessPoolExecutor | None = None

    def refresh(self, clients: Sequence[str] | None = None) -> None:
        if _in_memory(self.settings.database_url):
            from .app import refresh_health

            refresh_health(self.settings, self.store, clients=clients)
            return
        if self._pool is None:
            service = self.settings.service
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_init, initargs=(service.log_level, service.log_format),
            )
        try:
            self._pool.submit(_refresh_in_child, self.settings,
                              list(clients) if clients is not None else None).result()
        except BrokenProcessPool:
            # The child died (OOM killer, a signal): nothing half-written (one transaction);
            # a fresh child takes the next refresh.
            self._pool = None
            raise

    def close(self) -> None:
        """Stop the child now: an interrupted refresh is a rolled-back transaction."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # ProcessPoolExecutor has no public terminate before Python 3.14.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)

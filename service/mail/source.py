"""Offline sources: mbox files and Maildir folders (Thunderbird, Gmail Takeout).

They yield raw messages one at a time, so memory does not grow with the size
of the export; the ingest pipeline does the rest exactly as for IMAP.
"""

from __future__ import annotations

import mailbox
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from ..ingest import RawMail


@dataclass(frozen=True)
class OfflineSource:
    kind: str  # "mbox" or "maildir"
    path: Path

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.path}"

    def count(self) -> int | None:
        """How many messages, when it is cheap to know (for the progress bar)."""
        if self.kind == "maildir":
            return sum(
                1
                for sub in ("cur", "new")
                if (self.path / sub).is_dir()
                for entry in os.scandir(self.path / sub)
                if entry.is_file() and not entry.name.startswith(".")
            )
        return None

    def __iter__(self) -> Iterator[RawMail]:
        if self.kind == "mbox":
            return iter_mbox(self.path)
        return iter_maildir(self.path)


def parse_source(spec: str) -> OfflineSource:
    """'mbox:FILE' or 'maildir:DIR' -> OfflineSource, checked before any work starts."""
    kind, sep, location = spec.partition(":")
    if not sep or kind not in ("mbox", "maildir") or not location:
        raise SourceError(f"--source expects 'mbox:FILE' or 'maildir:DIR', got {spec!r}")
    path = Path(location).expanduser()
    if kind == "mbox" and not path.is_file():
        raise SourceError(f"mbox file not found: {path}")
    if kind == "maildir":
        if not path.is_dir():
            raise SourceError(f"Maildir folder not found: {path}")
        if not any((path / sub).is_dir() for sub in ("cur", "new")):
            raise SourceError(f"not a Maildir (no cur/ or new/ inside): {path}")
    return OfflineSource(kind, path)


def iter_mbox(path: Path) -> Iterator[RawMail]:
    """Stream an mbox with the stdlib reader, one message's bytes at a time."""
    try:
        box = mailbox.mbox(path, factory=None, create=False)
    except (OSError, mailbox.Error) as exc:
        raise SourceError(f"cannot open mbox {path}: {exc}") from None
    try:
        for position, key in enumerate(box.iterkeys(), start=1):
            yield RawMail(raw=box.get_bytes(key, from_=False), folder=path.name, uid=position)
    finally:
        box.close()


def iter_maildir(path: Path) -> Iterator[RawMail]:
    """Stream a Maildir in a stable order (by file name), without taking ownership of it."""
    try:
        box = mailbox.Maildir(path, factory=None, create=False)
        keys = sorted(box.iterkeys())
    except (OSError, mailbox.Error) as exc:
        raise SourceError(f"cannot open Maildir {path}: {exc}") from None
    for key in keys:
        try:
            raw = box.get_bytes(key)
        except KeyError:  # removed by a mail client while we read: nothing to store
            continue
        yield RawMail(raw=raw, folder=path.name, uid=None)

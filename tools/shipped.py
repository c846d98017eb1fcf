"""Writing model parameters that ship with the package, reproducibly."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def write_json_gz(path: Path, payload: dict) -> None:
    """Compact JSON with sorted keys, gzipped with no name or mtime in the header, so the
    same parameters always give the same bytes (a reviewable diff, a checkable rebuild)."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    with open(path, "wb") as out, gzip.GzipFile(filename="", fileobj=out, mode="wb",
                                                mtime=0) as gz:
        gz.write(raw)

"""Structured logs to stderr: one line per event, key=value or JSON.

journald picks stderr up under systemd. Message bodies and secrets never go
into a log line at info level; callers log identifiers and counts.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))


def _fields(record: logging.LogRecord, formatter: logging.Formatter, ts: str) -> dict[str, object]:
    fields: dict[str, object] = {
        "ts": ts,
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _RESERVED and not key.startswith("_"):
            fields[key] = value
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    return fields


class KeyValueFormatter(logging.Formatter):
    """`ts=… level=… logger=… msg="…" key=value …` (extra= fields appended)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields = _fields(record, self, ts)
        return " ".join(f"{k}={_quote(v)}" for k, v in fields.items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record, self, datetime.fromtimestamp(record.created, UTC).isoformat())
        return json.dumps(fields, default=str, ensure_ascii=False)


def _quote(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n\t'):
        return text
    return json.dumps(text, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "keyvalue") -> None:
    """Idempotent: safe to call again on reload with new settings."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_saygoodbye", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._saygoodbye = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("alembic", "imapclient", "apscheduler", "aiosmtplib", "mail.log"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

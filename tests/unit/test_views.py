"""The clients table reads well at 80 columns (a pipe, a small terminal) and when wide."""

from __future__ import annotations

import pytest
from rich.console import Console

from service import views

ROWS = [
    {"name": "Harborview Hotels International", "owner": "maria@agency.example", "score": 21,
     "state": "unhealthy", "trend": -19.4, "messages": 45, "monthly_revenue": 6000,
     "currency": "EUR", "signals": [{"kind": "revision_loop", "weight": 1.2},
                                    {"kind": "escalation", "weight": 0.9},
                                    {"kind": "gratitude", "weight": -0.3}]},
    {"name": "Acme", "owner": "jonas@agency.example", "score": 98, "state": "healthy",
     "trend": -0.2, "messages": 3, "monthly_revenue": None, "currency": None, "signals": []},
]


def _render(monkeypatch: pytest.MonkeyPatch, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    monkeypatch.setattr(views, "console", console)
    views.print_clients(ROWS)
    return console.export_text().splitlines()


def test_narrow_table_keeps_each_client_on_at_most_two_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = _render(monkeypatch, 80)
    assert all(len(line) <= 80 for line in lines)
    body = [line for line in lines if line.startswith("│")]
    assert len(body) <= 2 * len(ROWS)
    text = "\n".join(lines)
    assert "unhealthy" in text and "6,000 EUR" in text and "escalation" in text
    assert "gratitude" not in text  # healthy signals are not "top signals"
    assert "-0" not in text  # a flat trend reads +0


def test_wide_table_shows_owner_and_message_count(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "\n".join(_render(monkeypatch, 140))
    assert "maria" in text and "Msgs" in text and "Trend 30d" in text
    assert "Harborview Hotels" in text

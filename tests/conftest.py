"""Shared fixtures: real databases (SQLite file, PostgreSQL) and the mail server rig."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

# CI runs the property tests on a fixed seed so a red build is reproducible and is
# never a coin toss; `make fuzz` (SAYGOODBYE_FUZZ=1) explores fresh random inputs.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("fuzz", deadline=None)
settings.load_profile("fuzz" if os.environ.get("SAYGOODBYE_FUZZ") else "ci")

pytest_plugins = ["tests.rig.fixtures"]

# The machine's PostgreSQL (trust auth); CI starts it through tools/ensure_postgres.sh.
PG_ADMIN_URL = os.environ.get(
    "SAYGOODBYE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """cli.main() installs a stderr handler bound to pytest's capture: undo it after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """Fail loudly (never skip) when PostgreSQL is not there: its leg must run in CI."""
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    return PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database per test, dropped afterwards."""
    name = f"sg_test_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'saygoodbye.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every storage test runs against both backends (one contract suite)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'saygoodbye.db'}"
    return request.getfixturevalue("postgres_url")

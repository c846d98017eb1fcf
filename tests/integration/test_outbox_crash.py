"""SIGKILL the sending process at each point; count deliveries in the real mailbox: never two."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.mail.compose import compose
from service.store.models import OutboxMessage
from service.workflows import outbox
from tests.integration.test_outbox_env import CLIENT, OWNER, SERVICE, Env, open_env
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, os, signal, sys
from datetime import timedelta
from service.config import settings_from_mapping
from service.store.db import Store
from service.workflows import outbox

settings = settings_from_mapping(json.loads(sys.argv[1]))
point = sys.argv[2]

def hook(where, outbox_id):
    if where == point:
        os.kill(os.getpid(), signal.SIGKILL)

policy = outbox.SendPolicy(backoff_base=timedelta(0), backoff_cap=timedelta(0))
outbox.send_due(settings, Store(settings.database_url), policy_=policy, hook=hook)
"""


@pytest.fixture
def env(dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from open_env(dovecot, tmp_path, monkeypatch)


def _queue(env: Env) -> int:
    msg = compose(from_addr=SERVICE, to=[CLIENT], subject="Goodbye", text="Thank you.\n")
    with env.store.session() as session:
        return outbox.queue(session, env.settings, msg, kind="farewell", client="Acme").id


def _run_child(env: Env, point: str) -> int:
    config = env.settings.model_dump(mode="json", exclude_none=True)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(config), point],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, timeout=60, check=False,
    )
    return proc.returncode


def _state(env: Env, row_id: int) -> OutboxMessage:
    with env.store.session() as session:
        row = session.get(OutboxMessage, row_id)
        assert row is not None
        return row


@pytest.mark.parametrize("point", ["claimed", "connected"])
def test_killed_before_data_sends_exactly_once_after_restart(env: Env, point: str) -> None:
    row_id = _queue(env)
    assert _run_child(env, point) == -signal.SIGKILL
    assert _state(env, row_id).state == "sending"
    assert env.raw_inbox(CLIENT) == []
    # the restarted service: startup recovery, then the normal loop
    outbox.recover_interrupted(env.settings, env.store)
    assert _state(env, row_id).state == "scheduled"
    outbox.send_due(env.settings, env.store)
    outbox.send_due(env.settings, env.store)
    assert len(env.raw_inbox(CLIENT)) == 1
    assert _state(env, row_id).state == "sent"


def test_killed_after_data_is_never_sent_twice(env: Env) -> None:
    row_id = _queue(env)
    assert _run_child(env, "accepted") == -signal.SIGKILL
    assert len(env.raw_inbox(CLIENT)) == 1  # the server had it
    outbox.recover_interrupted(env.settings, env.store)
    assert _state(env, row_id).state == "uncertain"
    for _ in range(3):
        outbox.send_due(env.settings, env.store)
    assert len(env.raw_inbox(CLIENT)) == 1
    # no Sent copy was made before the crash, so the owner decides
    assert _state(env, row_id).state == "uncertain"
    asks = [m for m in env.dovecot.messages(OWNER) if b"Was it delivered?" in m]
    assert len(asks) == 1


def test_killed_after_data_with_provider_sent_copy_resolves_to_sent(env: Env) -> None:
    from tests.integration.test_outbox_env import make_settings

    env.settings = make_settings(env.dovecot, env.smtp, env.store.url, save_to_sent="never")
    row_id = _queue(env)
    assert _run_child(env, "accepted") == -signal.SIGKILL
    # the provider filed the message in Sent on its own (Gmail, Exchange do)
    env.dovecot.append(SERVICE, _state(env, row_id).raw, folder="Sent")
    outbox.recover_interrupted(env.settings, env.store)
    report = outbox.send_due(env.settings, env.store)
    assert report.resolved == [row_id]
    assert _state(env, row_id).state == "sent"
    assert len(env.raw_inbox(CLIENT)) == 1
    assert env.dovecot.messages(OWNER) == []  # nobody had to be asked

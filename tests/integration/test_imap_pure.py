"""Pure helpers of service.mail.imap (no server): UID sets, batching, backoff.

Kept next to the IMAP integration tests they support; they need no fixtures.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from service.errors import MailboxError
from service.mail.backoff import Backoff
from service.mail.imap import (
    as_mailbox_error,
    chunk_ranges,
    parse_sequence_set,
    ranges_from_uids,
)


def test_parse_sequence_set() -> None:
    assert parse_sequence_set("1:3,7,12:9") == [(1, 3), (7, 7), (9, 12)]
    assert parse_sequence_set("") == []


@given(st.sets(st.integers(min_value=1, max_value=5000), max_size=400), st.integers(1, 64))
def test_chunks_cover_every_uid_once_in_order(uids: set[int], size: int) -> None:
    ranges = ranges_from_uids(sorted(uids))
    assert all(a <= b for a, b in ranges)
    chunks = list(chunk_ranges(ranges, size))
    flat = [uid for chunk in chunks for uid in chunk]
    assert flat == sorted(uids)
    assert all(0 < len(chunk) <= size for chunk in chunks)
    assert all(len(chunk) == size for chunk in chunks[:-1])


def test_ranges_stay_small_for_dense_mailboxes() -> None:
    assert ranges_from_uids(range(1, 100_001)) == [(1, 100_000)]


def test_backoff_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=8.0, rng=random.Random(4))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_error_classification() -> None:
    assert as_mailbox_error(TimeoutError("read timed out"), "x").transient
    assert as_mailbox_error(ConnectionResetError(), "x").transient
    from imapclient.exceptions import IMAPClientError

    assert not as_mailbox_error(IMAPClientError("SELECT failed: no such mailbox"), "x").transient
    assert as_mailbox_error(IMAPClientError("[UNAVAILABLE] try later"), "x").transient
    already = MailboxError("kept", transient=False)
    assert as_mailbox_error(already, "x") is already

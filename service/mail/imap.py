"""The live mailbox: incremental IMAP sync, and a watcher that waits with IDLE.

Sync is driven by a per-folder checkpoint (UIDVALIDITY, last UID) committed in
the same transaction as the messages of each batch, so an interruption at any
point (SIGKILL included) resumes exactly where the database says, and nothing
is stored twice. The mailbox is never changed: folders are selected
read-only, bodies are fetched with BODY.PEEK[], and \\Seen is never used as a
"processed" marker (people read the shared mailbox too).

Everything here is blocking I/O with a timeout on every socket operation; the
daemon runs :class:`MailboxWatcher` in a thread.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from ..errors import MailboxError
from ..ingest import BatchStats, Checkpoint, Ingestor, RawMail
from . import quirks as provider_quirks
from .auth import imap_login, password_for
from .backoff import Backoff

log = logging.getLogger(__name__)

SOURCE = "imap"
# IDLE is re-issued before servers may drop it (RFC 2177: at least every 29 min;
# NATs and some servers time out after 10), so 9 minutes.
IDLE_RENEW_SECONDS = 540.0
# Bytes fetched per round trip at most; a batch is split when its messages are large.
MAX_BATCH_BYTES = 32 * 1024 * 1024
# A single message larger than this is fetched truncated (its text is at the start).
MAX_MESSAGE_BYTES = 25 * 1024 * 1024
# Kept for the caller (e.g. approvals to check); a backfill reports counts only.
MAX_REPORTED_IDS = 5000
# NO/BAD response codes that say "try again later" rather than "you are wrong".
_TRANSIENT_CODES = re.compile(rb"\[(UNAVAILABLE|INUSE|LIMIT|SERVERBUG|CONTACTADMIN)\]", re.I)

Progress = Callable[[int], None]
OnTotal = Callable[[int | None], None]


# -- results --------------------------------------------------------------


@dataclass
class FolderResult:
    """What one pass over one folder did."""

    folder: str
    uidvalidity: int = 0
    last_uid: int = 0
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    defective: int = 0
    rescanned: bool = False  # UIDVALIDITY changed: read again from the start

    def add(self, stats: BatchStats) -> None:
        self.seen += stats.seen
        self.stored += stats.stored
        self.duplicates += stats.duplicates
        self.defective += stats.defective


@dataclass
class SyncResult:
    """What one sync pass did over every folder (plus retries it needed)."""

    folders: list[FolderResult] = field(default_factory=list)
    retries: int = 0
    seconds: float = 0.0
    stored_ids: list[str] = field(default_factory=list)  # at most MAX_REPORTED_IDS

    def folder(self, name: str) -> FolderResult:
        for result in self.folders:
            if result.folder == name:
                return result
        result = FolderResult(name)
        self.folders.append(result)
        return result

    @property
    def seen(self) -> int:
        return sum(f.seen for f in self.folders)

    @property
    def stored(self) -> int:
        return sum(f.stored for f in self.folders)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.folders)

    @property
    def defective(self) -> int:
        return sum(f.defective for f in self.folders)

    def as_dict(self, source: str = SOURCE) -> dict[str, Any]:
        return {
            "source": source,
            "seen": self.seen,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "defective": self.defective,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
            "folders": [
                {
                    "folder": f.folder,
                    "uidvalidity": f.uidvalidity,
                    "last_uid": f.last_uid,
                    "seen": f.seen,
                    "stored": f.stored,
                    "duplicates": f.duplicates,
                    "rescanned": f.rescanned,
                }
                for f in self.folders
            ],
        }


# -- errors -----------------------------------------------------------------


def as_mailbox_error(exc: BaseException, what: str) -> MailboxError:
    """Map any I/O or protocol failure to MailboxError, transient or not.

    Network faults, timeouts and a server that hangs up are transient; a
    refused login, a missing folder or a rejected command are not (retrying
    cannot fix them), unless the server says so with a response code.
    """
    if isinstance(exc, MailboxError):
        return exc
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError | EOFError | IMAPClientAbortError | imaplib.IMAP4.abort):
        return MailboxError(f"{what}: {detail}", transient=True)
    if isinstance(exc, IMAPClientError | imaplib.IMAP4.error):
        text = str(exc).encode(errors="replace")
        return MailboxError(f"{what}: {detail}", transient=bool(_TRANSIENT_CODES.search(text)))
    return MailboxError(f"{what}: {detail}", transient=False)


def server_throttle(exc: BaseException) -> float | None:
    """Seconds the server asked us to stay away (Exchange/Gmail throttling), else None.

    Only the server's own words count: a socket error's text ("Resource
    temporarily unavailable") is the network's, and gets the generic backoff.
    """
    if isinstance(exc, MailboxError) and exc.__context__ is not None:
        return server_throttle(exc.__context__)  # connect() raises `from None`: look inside
    if isinstance(exc, OSError | EOFError):
        return None
    return provider_quirks.throttle_delay(str(exc))


# -- connection ---------------------------------------------------------------


def _enable_keepalive(sock: socket.socket) -> None:
    """Let the kernel notice a peer that vanished without a FIN (NAT, power loss)."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)


def connect(mailbox: Any, *, password: str | None = None) -> IMAPClient:
    """Open and log in to the configured mailbox (settings.mailbox).

    Raises MailboxError; its message names host and user, never the password.
    """
    where = f"IMAP {mailbox.username}@{mailbox.host}:{mailbox.port}"
    secret = password_for(mailbox, password)  # None: OAuth2 (see mail.auth)
    timeout = SocketTimeout(connect=mailbox.timeout, read=mailbox.timeout)
    client: IMAPClient | None = None
    try:
        if mailbox.security == "ssl":
            client = IMAPClient(
                mailbox.host,
                port=mailbox.port,
                ssl=True,
                ssl_context=ssl.create_default_context(),
                timeout=timeout,
            )
        else:
            client = IMAPClient(mailbox.host, port=mailbox.port, ssl=False, timeout=timeout)
            if mailbox.security == "starttls":
                # built only when used: loading the CA store takes 20-30 ms
                client.starttls(ssl.create_default_context())
        imap_login(client, mailbox, secret)
    except LoginError as exc:
        _logout_quietly(client)
        text = str(exc).encode(errors="replace")
        raise MailboxError(
            f"{where}: login refused ({exc})", transient=bool(_TRANSIENT_CODES.search(text))
        ) from None
    except Exception as exc:
        _logout_quietly(client)
        raise as_mailbox_error(exc, where) from None
    _enable_keepalive(client.socket())
    return client


def _logout_quietly(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.logout()
    except Exception:  # already broken: just drop the socket
        with contextlib.suppress(Exception):
            client.shutdown()


def sent_folder(client: IMAPClient, mailbox: Any) -> str | None:
    """The configured Sent folder, else the one the server flags \\Sent (RFC 6154)."""
    from .folders import special_folder  # RFC 6154 flags, then localised well-known names

    return special_folder(client, "sent", mailbox.sent_folder)


def folders_to_sync(client: IMAPClient, mailbox: Any) -> list[str]:
    """The inbox, then the Sent folder when there is one (found with LIST)."""
    folders = [str(mailbox.folder)]
    sent = sent_folder(client, mailbox)
    if sent and sent not in folders:
        if client.folder_exists(sent):
            folders.append(sent)
        else:
            log.warning("event=imap_sent_missing folder=%s", sent)
    return folders


# -- the selected folder ------------------------------------------------------

# What each connection has selected (read-only), and that folder's UIDVALIDITY.
# Opening a folder is what costs on a big mailbox (SELECT or STATUS: Dovecot
# on Maildir reads its index again, ~0.5 ms per 1,000 messages, 55 ms at 100k);
# a folder kept selected answers NOOP and UID SEARCH from the open index.
_selected: weakref.WeakKeyDictionary[Any, tuple[str, int]] = weakref.WeakKeyDictionary()


def _select(client: IMAPClient, folder: str) -> dict[bytes, Any]:
    """SELECT read-only, and remember it for this connection."""
    _selected.pop(client, None)
    info = client.select_folder(folder, readonly=True)
    # EXISTS counted by the SELECT is covered by its UIDNEXT: only later ones are news
    _pop_untagged(client, "EXISTS")
    if info.get(b"UIDVALIDITY"):
        _selected[client] = (folder, int(info[b"UIDVALIDITY"]))
    return info


def _selection(client: IMAPClient) -> tuple[str, int] | None:
    """(folder, UIDVALIDITY) selected on this connection, if it still holds."""
    held = _selected.get(client)
    if held is None:
        return None
    imap = getattr(client, "_imap", None)
    announced = _untagged(client, "UIDVALIDITY")
    if getattr(imap, "state", None) != "SELECTED" or (
        announced and _word(announced[-1]).strip() != str(held[1])
    ):
        _selected.pop(client, None)  # unselected, or the server renumbered the folder
        return None
    return held


# -- UID sets -----------------------------------------------------------------


def parse_sequence_set(text: str) -> list[tuple[int, int]]:
    """'1:3,7,9:12' -> [(1, 3), (7, 7), (9, 12)]; pure, for ESEARCH ALL replies."""
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition(":")
        a, b = int(lo), int(hi or lo)
        ranges.append((min(a, b), max(a, b)))
    return ranges


def ranges_from_uids(uids: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted UIDs -> compact ranges (memory follows gaps, not messages)."""
    ranges: list[tuple[int, int]] = []
    for uid in sorted(uids):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], uid)
        else:
            ranges.append((uid, uid))
    return ranges


def chunk_ranges(ranges: Sequence[tuple[int, int]], size: int) -> Iterator[list[int]]:
    """Walk ranges in UID order, yielding lists of at most `size` UIDs."""
    chunk: list[int] = []
    for lo, hi in ranges:
        uid = lo
        while uid <= hi:
            take = min(hi, uid + size - len(chunk) - 1)
            chunk.extend(range(uid, take + 1))
            uid = take + 1
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _uids_after(client: IMAPClient, last_uid: int) -> list[tuple[int, int]]:
    """UIDs above last_uid as ranges; ESEARCH keeps the reply as small as the gaps."""
    lo = last_uid + 1
    criteria = f"{lo}:*".encode()
    # EXISTS announced from here on is mail this search may not see (see _idle)
    _pop_untagged(client, "EXISTS")
    if client.has_capability("ESEARCH"):
        data = client._raw_command_untagged(
            b"SEARCH", [b"RETURN", b"(ALL)", b"UID", criteria], response_name="ESEARCH"
        )
        ranges: list[tuple[int, int]] = []
        for line in data:
            text = line.decode() if isinstance(line, bytes) else str(line)
            match = re.search(r"\bALL\s+([0-9:,]+)", text)
            if match:
                ranges.extend(parse_sequence_set(match.group(1)))
    else:
        ranges = ranges_from_uids(client.search([b"UID", criteria]))
    # "n:*" also matches the highest UID when it is below n (RFC 3501 6.4.8)
    return [(max(a, lo), b) for a, b in ranges if b >= lo]


def _split_by_size(uids: list[int], sizes: dict[int, int], budget: int) -> Iterator[list[int]]:
    part: list[int] = []
    used = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if part and used + size > budget:
            yield part
            part, used = [], 0
        part.append(uid)
        used += size
    if part:
        yield part


# -- one sync pass --------------------------------------------------------------


class _Syncer:
    """One pass over the folders on an open connection; all state is in the DB."""

    def __init__(
        self,
        client: IMAPClient,
        ingestor: Ingestor,
        batch_size: int,
        result: SyncResult,
        progress: Progress | None,
        on_total: OnTotal | None,
        quirks: provider_quirks.Quirks | None = None,
    ) -> None:
        self.client = client
        self.ingestor = ingestor
        self.batch_size = batch_size
        self.result = result
        self.progress = progress
        self.on_total = on_total
        self.total = 0
        # Gmail shows one message in several labels (INBOX, Sent Mail): its
        # X-GM-MSGID, fetched with the sizes, spares a second body download.
        self.extra_items = list(provider_quirks.fetch_items(quirks or provider_quirks.Quirks()))
        self.seen_keys: set[str] = set()
        # (items, rows when ready, folder, checkpoint): fetched, in the workers, not stored
        self._pending: tuple[list[RawMail], Callable[[], list[dict[str, Any]]], str,
                             Checkpoint] | None = None

    def folder(self, folder: str) -> None:
        client = self.client
        checkpoint = self.ingestor.checkpoint(folder)
        if checkpoint is not None:
            if _selection(client) == (folder, checkpoint.uidvalidity):
                # Kept selected (the watcher's IDLE folder): NOOP lets the server
                # catch up with its disk, then UID SEARCH on the open folder answers.
                client.noop()
                if _selection(client) == (folder, checkpoint.uidvalidity):
                    self._resume(checkpoint)
                    self._fetch_new(folder, checkpoint.uidvalidity, checkpoint.last_uid, None)
                    return
            else:
                # STATUS reads the server's index; SELECT may rescan the folder.
                status = client.folder_status(folder, [b"UIDVALIDITY", b"UIDNEXT"])
                if (
                    int(status[b"UIDVALIDITY"]) == checkpoint.uidvalidity
                    and int(status[b"UIDNEXT"]) - 1 <= checkpoint.last_uid
                ):
                    self._resume(checkpoint)
                    return
        info = _select(client, folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        exists = int(info.get(b"EXISTS", 0))
        uidnext = int(info[b"UIDNEXT"]) if info.get(b"UIDNEXT") else None
        summary = self.result.folder(folder)
        summary.uidvalidity = uidvalidity
        last = 0
        if checkpoint is not None:
            if checkpoint.uidvalidity == uidvalidity:
                last = checkpoint.last_uid
            else:
                # UIDs were renumbered (server rebuilt, folder recreated): read
                # everything again; Message-ID dedupe keeps stored rows single.
                summary.rescanned = True
                log.warning(
                    "event=imap_uidvalidity_changed folder=%s old=%d new=%d",
                    folder,
                    checkpoint.uidvalidity,
                    uidvalidity,
                )
        summary.last_uid = last
        if exists == 0 or (uidnext is not None and uidnext - 1 <= last):
            # Nothing new: no SEARCH, no FETCH.
            settled = max(last, (uidnext or 1) - 1) if exists == 0 else last
            if checkpoint is None or summary.rescanned or settled > last:
                self._commit([], folder, Checkpoint(folder, uidvalidity, settled))
            return
        self._fetch_new(folder, uidvalidity, last, uidnext)

    def _resume(self, checkpoint: Checkpoint) -> None:
        """The folder's summary starts where its checkpoint stands."""
        summary = self.result.folder(checkpoint.folder)
        summary.uidvalidity = checkpoint.uidvalidity
        summary.last_uid = checkpoint.last_uid

    def _fetch_new(self, folder: str, uidvalidity: int, last: int, uidnext: int | None) -> None:
        """Fetch and store every UID above `last` in the selected folder."""
        ranges = _uids_after(self.client, last)
        count = sum(b - a + 1 for a, b in ranges)
        self.total += count
        if self.on_total:
            self.on_total(self.total)
        for chunk in chunk_ranges(ranges, self.batch_size):
            self._fetch_and_store(folder, uidvalidity, chunk)
        self.flush()
        # Every UID below UIDNEXT (as of the SELECT) was fetched or no longer exists
        # (expunged): settle there, or the watcher would see "new mail" for ever.
        summary = self.result.folder(folder)
        if uidnext is not None and uidnext - 1 > summary.last_uid:
            self._commit([], folder, Checkpoint(folder, uidvalidity, uidnext - 1))

    def _fetch_and_store(self, folder: str, uidvalidity: int, chunk: list[int]) -> None:
        meta = self.client.fetch(chunk, ["RFC822.SIZE", *self.extra_items])
        sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for uid, data in meta.items()}
        already = self._seen_in_other_labels(meta)
        for part in _split_by_size(chunk, sizes, MAX_BATCH_BYTES):
            items: list[RawMail] = []
            small = [
                uid for uid in part if sizes.get(uid, 0) <= MAX_MESSAGE_BYTES and uid not in already
            ]
            if small:
                fetched = self.client.fetch(small, ["BODY.PEEK[]"])
                for uid in small:
                    body = fetched.get(uid, {}).get(b"BODY[]")
                    if body is not None:  # None: expunged meanwhile
                        items.append(RawMail(bytes(body), folder, uid))
            for uid in part:
                if sizes.get(uid, 0) > MAX_MESSAGE_BYTES and uid not in already:
                    log.warning(
                        "event=imap_message_truncated folder=%s uid=%d size=%d",
                        folder,
                        uid,
                        sizes[uid],
                    )
                    spec = f"BODY.PEEK[]<0.{MAX_MESSAGE_BYTES}>"
                    data = self.client.fetch([uid], [spec]).get(uid, {})
                    body = data.get(b"BODY[]<0>")
                    if body is not None:
                        items.append(RawMail(bytes(body), folder, uid))
            items.sort(key=lambda item: item.uid or 0)
            # the checkpoint covers every UID asked for, even ones expunged meanwhile
            self._commit(items, folder, Checkpoint(folder, uidvalidity, part[-1]))
            skipped = sum(1 for uid in part if uid in already)
            if skipped:
                summary = self.result.folder(folder)
                summary.seen += skipped
                summary.duplicates += skipped
            if self.progress:
                self.progress(len(part))

    def _seen_in_other_labels(self, meta: dict[int, dict[bytes, Any]]) -> set[int]:
        """UIDs whose X-GM-MSGID this pass already fetched (none off Gmail).

        Only skips the download: a message first met in an earlier pass is
        fetched and the store's Message-ID dedupe (content hash when there is
        no Message-ID; Gmail serves the same bytes in every label) keeps it single.
        """
        if not self.extra_items:
            return set()
        already: set[int] = set()
        for uid in sorted(meta):
            key = provider_quirks.dedupe_key(meta[uid], None)
            if key is None:
                continue
            if key in self.seen_keys:
                already.add(uid)
            else:
                self.seen_keys.add(key)
        return already

    def _commit(self, items: list[RawMail], folder: str, checkpoint: Checkpoint) -> None:
        """Hand a batch to the workers, then store the previous one while they work.

        Batches are stored strictly in order, each with its checkpoint, so an
        interruption anywhere loses only work that is fetched again next time.
        """
        ready = self.ingestor.prepare_async(items, SOURCE)
        self.flush()
        self._pending = (items, ready, folder, checkpoint)

    def flush(self) -> None:
        """Store the batch still in the workers' hands, if any."""
        if self._pending is None:
            return
        items, ready, folder, checkpoint = self._pending
        self._pending = None
        stats = self.ingestor.ingest_batch(items, source=SOURCE, checkpoint=checkpoint,
                                           rows=ready())
        summary = self.result.folder(folder)
        summary.add(stats)
        summary.last_uid = checkpoint.last_uid
        room = MAX_REPORTED_IDS - len(self.result.stored_ids)
        if room > 0:
            self.result.stored_ids.extend(stats.stored_ids[:room])


def _inbox_then_the_rest(client: IMAPClient, mailbox: Any) -> Iterator[str]:
    """The inbox before any LIST: on Dovecot, once a session has used its folder-list
    index (LIST, or STATUS of another folder), opening a 100k inbox costs ~100 ms
    instead of ~4 (it re-reads the folder's whole UID list)."""
    inbox = str(mailbox.folder)
    yield inbox
    yield from (folder for folder in folders_to_sync(client, mailbox) if folder != inbox)


def sync_folders(
    client: IMAPClient,
    folders: Iterable[str],
    ingestor: Ingestor,
    *,
    batch_size: int = 200,
    result: SyncResult | None = None,
    progress: Progress | None = None,
    on_total: OnTotal | None = None,
    quirks: provider_quirks.Quirks | None = None,
) -> SyncResult:
    """One pass over `folders` on an open connection (no retries: see sync_once)."""
    result = result if result is not None else SyncResult()
    started = time.monotonic()
    syncer = _Syncer(client, ingestor, batch_size, result, progress, on_total, quirks)
    try:
        for folder in folders:
            syncer.folder(folder)
            syncer.flush()
    except BaseException:
        # Keep what was fetched and prepared before the failure (a dropped connection):
        # it is in order and carries its own checkpoint.
        with contextlib.suppress(Exception):
            syncer.flush()
        raise
    # The last folder stays selected: the watcher's next pass and IDLE use it as is.
    result.seconds = time.monotonic() - started
    return result


def sync_once(
    settings: Any,
    ingestor: Ingestor,
    progress: Progress | None = None,
    *,
    on_total: OnTotal | None = None,
    max_attempts: int = 6,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncResult:
    """Bring the store up to date with the inbox and the Sent folder, then return.

    Network faults reconnect with exponential backoff and jitter, resuming from
    the committed checkpoints; after `max_attempts` the last error is raised.
    """
    mailbox = settings.mailbox
    if mailbox is None:
        raise MailboxError("no [mailbox] configured", transient=False)
    backoff = backoff or Backoff(base=1.0, cap=60.0)
    result = SyncResult()
    started = time.monotonic()
    while True:
        client: IMAPClient | None = None
        try:
            client = connect(mailbox)
            sync_folders(
                client,
                _inbox_then_the_rest(client, mailbox),
                ingestor,
                batch_size=mailbox.batch_size,
                result=result,
                progress=progress,
                on_total=on_total,
                quirks=provider_quirks.detect(client, mailbox.host),
            )
            result.seconds = time.monotonic() - started
            return result
        except Exception as exc:
            error = as_mailbox_error(exc, f"IMAP {mailbox.host}")
            if not isinstance(exc, MailboxError | OSError | IMAPClientError | EOFError):
                raise  # not a mail-server problem (e.g. the database): let it surface
            result.retries += 1
            throttled = server_throttle(exc)
            if (not error.transient and throttled is None) or result.retries >= max_attempts:
                raise error from None
            delay = throttled if throttled is not None else backoff.next_delay()
            log.warning(
                "event=imap_retry attempt=%d delay_s=%.1f throttled=%s error=%s",
                result.retries,
                delay,
                throttled is not None,
                error,
            )
            sleep(delay)
        finally:
            _logout_quietly(client)


def sync_mailbox(settings: Any, progress: Callable[..., Any] | None = None) -> dict[str, Any]:
    """The `saygoodbye sync` use case for the live mailbox (see pipeline.live_pass).

    `progress` is the CLI's bar factory (a context manager yielding
    ``(advance, set_total)``), or None for no display.
    """
    from ..app import open_store
    from ..pipeline import live_pass  # the use-case layer; imported late

    return live_pass(settings, open_store(settings), progress=progress)


# -- the daemon's watcher -------------------------------------------------------


class MailboxWatcher:
    """Keeps the store in step with the mailbox for as long as the daemon runs.

    Waits with IDLE on the inbox (re-issued every 9 minutes, every 4 on
    Exchange, which drops quiet IDLEs) and syncs on every EXISTS. The inbox
    stays selected between passes, so a wake-up costs a NOOP and a UID SEARCH
    rather than re-opening the folder, whatever its size. Polls every
    ``poll_seconds`` when IDLE is off or the server lacks it. Every wake-up
    (and every IDLE renewal) syncs the Sent folder too. Gmail sessions are
    renewed after 23 hours, before Gmail cuts them. Any failure reconnects with
    exponential backoff and jitter, or after the pause a throttling server
    asks for; the loop only ends on stop(). ``on_sync`` is called (in the
    watcher's thread) after each pass.
    """

    def __init__(
        self,
        settings: Any,
        ingestor: Ingestor,
        *,
        on_sync: Callable[[SyncResult], None] | None = None,
        idle_renew: float = IDLE_RENEW_SECONDS,
        poll_seconds: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if settings.mailbox is None:
            raise MailboxError("no [mailbox] configured", transient=False)
        self.settings = settings
        self.mailbox = settings.mailbox
        self.ingestor = ingestor
        self.on_sync = on_sync
        self.idle_renew = idle_renew
        self.poll_seconds = float(poll_seconds or self.mailbox.poll_seconds)
        self.backoff = backoff or Backoff(base=1.0, cap=300.0)
        self.mode: str | None = None  # "idle" or "poll" once connected
        self.quirks: provider_quirks.Quirks | None = None  # of the current server
        self.syncs = 0
        self.last_sync: datetime | None = None
        self.last_error: str | None = None
        # Seconds the last wake-up kept the watcher from waiting: the pass plus
        # getting back into IDLE (or the poll wait). What a no-new-mail round costs.
        self.round_seconds: float | None = None
        self._round_began = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: IMAPClient | None = None

    # -- control (any thread) --
    def start(self) -> threading.Thread:
        """Run the watcher in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="imap-watcher", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the loop to end; waits for the thread when started with start()."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wake(self) -> None:
        """Sync now (e.g. after the service sent mail, or on SIGHUP)."""
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- the loop --
    def run(self) -> None:
        """Blocking loop: connect, sync, wait for mail, repeat, until stop()."""
        while not self._stop.is_set():
            try:
                self._client = connect(self.mailbox)
                self._connected(self._client)
            except Exception as exc:
                error = as_mailbox_error(exc, f"IMAP {self.mailbox.host}")
                if self._stop.is_set():
                    break
                self.last_error = str(error)
                throttled = server_throttle(exc)
                if throttled is not None:
                    # The server named its price (Exchange: "Suggested Backoff
                    # Time"); reconnecting sooner only extends the throttling.
                    delay = throttled
                    log.warning("event=imap_throttled delay_s=%.1f error=%s", delay, error)
                else:
                    delay = self.backoff.next_delay()
                    level = logging.WARNING if error.transient else logging.ERROR
                    log.log(
                        level,
                        "event=imap_reconnect attempt=%d delay_s=%.1f transient=%s error=%s",
                        self.backoff.attempt,
                        delay,
                        error.transient,
                        error,
                        exc_info=not isinstance(exc, MailboxError | OSError | IMAPClientError),
                    )
                self._stop.wait(delay)
            finally:
                client, self._client = self._client, None
                _logout_quietly(client)
        self.mode = None

    def _connected(self, client: IMAPClient) -> None:
        connected_at = time.monotonic()
        quirks = provider_quirks.detect(client, self.mailbox.host)
        self.quirks = quirks
        folders = folders_to_sync(client, self.mailbox)
        use_idle = bool(self.mailbox.idle) and client.has_capability("IDLE")
        self.mode = "idle" if use_idle else "poll"
        renew = min(self.idle_renew, quirks.idle_renew_seconds)
        log.info(
            "event=imap_watch mode=%s provider=%s idle_renew_s=%.0f folders=%s",
            self.mode,
            quirks.provider,
            renew,
            ",".join(folders),
        )
        while not self._stop.is_set():
            age = time.monotonic() - connected_at
            if provider_quirks.session_due_for_renewal(quirks, age):
                # Gmail cuts sessions about daily; leave between passes, not mid-batch.
                log.info("event=imap_session_renew provider=%s age_s=%.0f", quirks.provider, age)
                return
            self._wake.clear()
            self._round_began = time.monotonic()
            result = sync_folders(
                client,
                folders,
                self.ingestor,
                batch_size=self.mailbox.batch_size,
                quirks=quirks,
            )
            self.syncs += 1
            self.last_sync = datetime.now(UTC)
            self.last_error = None
            self.backoff.reset()
            if result.stored:
                log.info("event=imap_synced stored=%d seen=%d", result.stored, result.seen)
            if self.on_sync is not None:
                self.on_sync(result)
            if use_idle:
                self._idle(client, folders[0], renew)
            else:
                self._poll(client, folders[0])

    def _poll(self, client: IMAPClient, folder: str) -> None:
        selected = _selection(client)
        if selected is None or selected[0] != folder:
            _select(client, folder)  # kept selected, the next pass is a NOOP and a SEARCH
        self.round_seconds = time.monotonic() - self._round_began
        deadline = time.monotonic() + self.poll_seconds
        while not self._wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.wait(min(remaining, 60.0))
            if not self._wake.is_set() and deadline - time.monotonic() > 0:
                client.noop()  # keep the connection (and NAT state) alive; fails if dead

    def _idle(self, client: IMAPClient, folder: str, renew: float) -> None:
        selected = _selection(client)
        if selected is not None and selected[0] == folder:
            # Still selected since the pass searched it (no re-open: that is what
            # costs on a big folder). EXISTS filed since that search is mail it may
            # have missed, and the server will not announce it again: sync first.
            if _untagged(client, "EXISTS"):
                return
        else:
            info = _select(client, folder)
            # Mail that arrived between the sync and this SELECT raises no EXISTS
            # during IDLE: compare UIDNEXT with the checkpoint and sync at once.
            checkpoint = self.ingestor.checkpoint(folder)
            uidnext = int(info.get(b"UIDNEXT", 0) or 0)
            if (
                checkpoint is not None
                and uidnext
                and (
                    int(info.get(b"UIDVALIDITY", 0)) != checkpoint.uidvalidity
                    or uidnext - 1 > checkpoint.last_uid
                )
            ):
                return
        seen_exists = len(_untagged(client, "EXISTS"))
        client.idle()
        self.round_seconds = time.monotonic() - self._round_began
        deadline = time.monotonic() + renew
        try:
            # EXISTS sent before the server's "+ idling" is filed away by imaplib; one
            # sent right after it (Dovecot announces mail that came during the pass
            # there) may sit unread in imaplib's buffer, where idle_check's poll()
            # cannot see it. Either way: sync now, not at the next IDLE renewal.
            if len(_untagged(client, "EXISTS")) > seen_exists or _EXISTS_LINE.search(
                _unread(client)
            ):
                return
            while not self._wake.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return  # renew: idle_done, sync (cheap), IDLE again
                wait = min(remaining, 1.0)
                began = time.monotonic()
                responses = client.idle_check(timeout=wait)
                bye = next((r for r in responses if _is(r, b"BYE")), None)
                if bye is not None:
                    # its text may be a throttling notice ("Server Unavailable"): keep it
                    said = " ".join(_word(x) for x in bye[1:])
                    raise MailboxError(f"server closed the IDLE connection (BYE {said})")
                if any(_is(r, b"EXISTS") for r in responses):
                    return
                if not responses and time.monotonic() - began < wait / 2:
                    # readable but no line: the peer hung up; idle_done will tell
                    return
        finally:
            client.idle_done()


def _untagged(client: IMAPClient, kind: str) -> list[Any]:
    """Untagged responses imaplib collected (imapclient has no public view of them)."""
    responses = getattr(getattr(client, "_imap", None), "untagged_responses", None) or {}
    return list(responses.get(kind, ()))


_EXISTS_LINE = re.compile(rb"^\* \d+ EXISTS\r?$", re.M)


def _unread(client: IMAPClient) -> bytes:
    """What the server sent that imaplib has buffered but nothing has parsed yet.

    Never blocks: the socket is non-blocking while its buffer is peeked at.
    """
    peek = getattr(getattr(getattr(client, "_imap", None), "file", None), "peek", None)
    if peek is None:
        return b""
    sock = client.socket()
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return bytes(peek(0) or b"")
    except OSError:  # nothing buffered: EAGAIN, or SSLWantReadError on TLS
        return b""
    finally:
        sock.settimeout(timeout)


def _pop_untagged(client: IMAPClient, kind: str) -> None:
    """Forget the collected untagged responses of one kind (they were acted on)."""
    responses = getattr(getattr(client, "_imap", None), "untagged_responses", None) or {}
    filed = responses.get(kind)
    if isinstance(filed, list):
        filed.clear()  # in place: imaplib appends to the list it filed them in


def _is(response: Any, word: bytes) -> bool:
    return isinstance(response, tuple) and word in response[:2]


def _word(token: Any) -> str:
    return token.decode("utf-8", "replace") if isinstance(token, bytes) else str(token)

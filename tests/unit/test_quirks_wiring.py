"""The provider quirks where the live code consults them: sync, the watcher, the Sent folder.

Dovecot cannot act as Gmail (labels, X-GM-MSGID, daily cut-offs) or as
Exchange (BADCHARSET, throttling, IDLE limits), so these run against fake
IMAPClient objects implementing only the calls used, fed recorded answers.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from imapclient.exceptions import IMAPClientError, LoginError

from service.errors import MailboxError
from service.ingest import BatchStats, Checkpoint, RawMail
from service.mail import imap
from service.mail.backoff import Backoff
from service.mail.parse import parse_message
from service.mail.quirks import Provider, quirks_for
from service.mail.send import SentFolder

GMAIL_CAPS = (b"IMAP4REV1", b"UNSELECT", b"IDLE", b"X-GM-EXT-1", b"UIDPLUS", b"SPECIAL-USE")
GMAIL_GREETING = b"* OK Gimap ready for requests from 198.51.100.7 a1mb12345678abc"
M365_CAPS = (b"IMAP4", b"IMAP4REV1", b"AUTH=XOAUTH2", b"SASL-IR", b"UIDPLUS", b"ID",
             b"UNSELECT", b"CHILDREN", b"IDLE", b"NAMESPACE", b"LITERAL+")
M365_GREETING = (b"* OK The Microsoft Exchange IMAP4 service is ready. "
                 b"[TQBOADIAUABSADAAMQBDAEEAMAAwADEAMwAuAG8AdQB0AGwAbwBvAGsALgBjAG8AbQA=]")
# Exchange Online, recorded: a throttled LOGIN and a throttled command, as imapclient raises them.
M365_THROTTLED_LOGIN = (b"[UNAVAILABLE] Request is throttled. Suggested Backoff Time: "
                        b"29000 milliseconds")
M365_BADCHARSET = ("search command error: NO [b'[BADCHARSET (US-ASCII)] The requested "
                   "character set is not supported.']")


def _mail(subject: str, message_id: str | None) -> bytes:
    mid = f"Message-ID: {message_id}\r\n" if message_id else ""
    return (f"From: ana@client.test\r\nTo: team@agency.test\r\nSubject: {subject}\r\n{mid}"
            "Date: Tue, 9 Apr 2024 14:30:00 +0200\r\n\r\nHello\r\n").encode()


class FakeGmail:
    """Labels as folders: the same message (same X-GM-MSGID, same bytes) under two UIDs."""

    def __init__(self, folders: dict[str, dict[int, tuple[int, bytes]]], gmail: bool = True):
        self.folders = folders
        self.gmail = gmail
        self.selected: str | None = None
        self.fetch_requests: list[tuple[str, list[int], list[str]]] = []
        self._imap = SimpleNamespace(state="AUTH")

    def capabilities(self) -> tuple[bytes, ...]:
        return GMAIL_CAPS if self.gmail else (b"IMAP4REV1", b"UNSELECT")

    def has_capability(self, name: str) -> bool:
        return name.upper().encode() in self.capabilities()

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
        assert readonly
        self.selected = folder
        self._imap.state = "SELECTED"
        uids = self.folders[folder]
        return {b"UIDVALIDITY": 7, b"EXISTS": len(uids), b"UIDNEXT": max(uids) + 1}

    def unselect_folder(self) -> None:
        self._imap.state = "AUTH"

    def search(self, criteria: list[Any], charset: str | None = None) -> list[int]:
        assert criteria[0] == b"UID"
        return sorted(self.folders[self.selected or ""])

    def fetch(self, uids: list[int], items: list[str]) -> dict[int, dict[bytes, Any]]:
        self.fetch_requests.append((self.selected or "", list(uids), list(items)))
        box = self.folders[self.selected or ""]
        out: dict[int, dict[bytes, Any]] = {}
        for uid in uids:
            gm_id, body = box[uid]
            data: dict[bytes, Any] = {b"SEQ": uid}
            for item in items:
                if item == "RFC822.SIZE":
                    data[b"RFC822.SIZE"] = len(body)
                elif item == "X-GM-MSGID":
                    assert self.gmail, "X-GM-MSGID asked of a server without X-GM-EXT-1"
                    data[b"X-GM-MSGID"] = gm_id
                elif item == "BODY.PEEK[]":
                    data[b"BODY[]"] = body
            out[uid] = data
        return out


class FakeIngestor:
    def __init__(self) -> None:
        self.stored: dict[str, RawMail] = {}

    def checkpoint(self, folder: str) -> Checkpoint | None:
        return None

    def prepare_async(self, items: list[RawMail], source: str) -> Callable[[], list[dict]]:
        return lambda: [{} for _ in items]  # this fake stores the raw items themselves

    def ingest_batch(
        self, items: list[RawMail], *, source: str, checkpoint: Checkpoint | None = None,
        rows: list[dict] | None = None,
    ) -> BatchStats:
        stats = BatchStats(seen=len(items))
        for item in items:
            key = parse_message(item.raw).message_id  # what the real store dedupes on
            if key in self.stored:
                stats.duplicates += 1
            else:
                self.stored[key] = item
                stats.stored += 1
                stats.stored_ids.append(key)
        return stats


def _gmail_mailbox() -> dict[str, dict[int, tuple[int, bytes]]]:
    to_self = _mail("note to self", None)  # no Message-ID, in INBOX and Sent Mail
    return {
        "INBOX": {1: (1001, _mail("hello", "<a@client.test>")), 2: (1002, to_self)},
        "[Gmail]/Sent Mail": {5: (1002, to_self), 6: (1003, _mail("re", "<b@agency.test>"))},
    }


def _bodies_fetched(client: FakeGmail) -> list[tuple[str, int]]:
    return [(folder, uid) for folder, uids, items in client.fetch_requests
            if "BODY.PEEK[]" in items for uid in uids]


def test_gmail_message_in_two_labels_is_downloaded_and_stored_once() -> None:
    client = FakeGmail(_gmail_mailbox())
    ingestor = FakeIngestor()
    quirks = quirks_for(Provider.GMAIL, GMAIL_CAPS)
    result = imap.sync_folders(client, ["INBOX", "[Gmail]/Sent Mail"], ingestor,  # type: ignore[arg-type]
                               quirks=quirks)
    # the sizes round trip carries the Gmail id; the label copy's body is never fetched
    assert all("X-GM-MSGID" in items for _, _, items in client.fetch_requests
               if "RFC822.SIZE" in items)
    assert _bodies_fetched(client) == [("INBOX", 1), ("INBOX", 2), ("[Gmail]/Sent Mail", 6)]
    assert len(ingestor.stored) == 3
    assert (result.seen, result.stored, result.duplicates) == (4, 3, 1)
    sent = result.folder("[Gmail]/Sent Mail")
    assert sent.last_uid == 6 and sent.duplicates == 1  # checkpoint passes the skipped UID


def test_without_gmail_ids_the_store_still_keeps_one_copy() -> None:
    # a server without X-GM-EXT-1 is never asked for X-GM-MSGID; the content-hash
    # Message-ID of the message that has none is the same in both folders
    client = FakeGmail(_gmail_mailbox(), gmail=False)
    ingestor = FakeIngestor()
    result = imap.sync_folders(client, ["INBOX", "[Gmail]/Sent Mail"], ingestor,  # type: ignore[arg-type]
                               quirks=quirks_for(Provider.OTHER, client.capabilities()))
    assert len(_bodies_fetched(client)) == 4
    assert (result.stored, result.duplicates) == (3, 1)


# -- throttling -------------------------------------------------------------------


def _connect_error(inner: BaseException) -> MailboxError:
    """A MailboxError raised the way imap.connect raises it (``from None``)."""
    try:
        try:
            raise inner
        except LoginError as exc:
            raise MailboxError(f"IMAP team@outlook.office365.com:993: login refused ({exc})",
                               transient=False) from None
        except Exception as exc:
            raise imap.as_mailbox_error(exc, "IMAP team@outlook.office365.com:993") from None
    except MailboxError as error:
        return error


def test_server_throttle_reads_the_servers_words_only() -> None:
    assert imap.server_throttle(IMAPClientError(
        "fetch command error: NO [b'Request is throttled. Suggested Backoff Time: "
        "29000 milliseconds']")) == 29.0
    assert imap.server_throttle(_connect_error(LoginError(M365_THROTTLED_LOGIN.decode()))) == 29.0
    assert imap.server_throttle(IMAPClientError("BAD [b'Command Argument Error. 11']")) is None
    # the network's "temporarily unavailable" is no throttling answer
    assert imap.server_throttle(BlockingIOError(11, "Resource temporarily unavailable")) is None
    assert imap.server_throttle(
        _connect_error(BlockingIOError(11, "Resource temporarily unavailable"))) is None
    assert imap.server_throttle(MailboxError(
        "server closed the IDLE connection (BYE Server Unavailable. 15)")) == 60.0


def _settings(host: str = "outlook.office365.com", **mailbox: Any) -> Any:
    box = dict(host=host, port=993, username="team@agency.test", folder="INBOX",
               sent_folder=None, idle=True, poll_seconds=60, batch_size=50, timeout=30)
    box.update(mailbox)
    return SimpleNamespace(mailbox=SimpleNamespace(**box))


def test_sync_once_waits_as_long_as_exchange_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [_connect_error(LoginError(M365_THROTTLED_LOGIN.decode())),
               _connect_error(LoginError("[AUTHENTICATIONFAILED] Invalid credentials"))]

    def connect(mailbox: Any) -> Any:
        raise answers.pop(0)

    monkeypatch.setattr(imap, "connect", connect)
    delays: list[float] = []
    # a throttled login is not a wrong password: retried, after the suggested pause
    with pytest.raises(MailboxError, match="Invalid credentials"):
        imap.sync_once(_settings(), FakeIngestor(), sleep=delays.append,  # type: ignore[arg-type]
                       backoff=Backoff(base=1.0, cap=2.0))
    assert delays == [29.0]


def test_watcher_backs_off_for_the_throttling_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imap, "connect", lambda mailbox: (_ for _ in ()).throw(
        _connect_error(LoginError(M365_THROTTLED_LOGIN.decode()))))
    watcher = imap.MailboxWatcher(_settings(), FakeIngestor(),  # type: ignore[arg-type]
                                  backoff=Backoff(base=1.0, cap=2.0))
    waits: list[float | None] = []

    def wait(timeout: float | None = None) -> bool:
        waits.append(timeout)
        watcher._stop.set()
        return True

    monkeypatch.setattr(watcher._stop, "wait", wait)
    watcher.run()
    assert waits == [29.0] and watcher.backoff.attempt == 0
    assert "throttled" in (watcher.last_error or "")


# -- the watcher's sessions --------------------------------------------------------------


class FakeServer:
    def __init__(self, capabilities: tuple[bytes, ...], welcome: bytes):
        self._caps = capabilities
        self.welcome = welcome

    def capabilities(self) -> tuple[bytes, ...]:
        return self._caps

    def has_capability(self, name: str) -> bool:
        return name.upper().encode() in self._caps


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def _watch(monkeypatch: pytest.MonkeyPatch, server: FakeServer, host: str,
           on_idle: Any) -> imap.MailboxWatcher:
    clock = Clock()
    monkeypatch.setattr(imap, "time", SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(imap, "folders_to_sync", lambda client, mailbox: ["INBOX"])
    monkeypatch.setattr(imap, "sync_folders", lambda *a, **k: imap.SyncResult())
    watcher = imap.MailboxWatcher(_settings(host), FakeIngestor())  # type: ignore[arg-type]
    monkeypatch.setattr(watcher, "_idle", lambda client, folder, renew: on_idle(
        watcher, clock, renew))
    watcher._connected(server)  # type: ignore[arg-type]
    return watcher


def test_exchange_idle_is_renewed_within_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    renewals: list[float] = []

    def idle(watcher: imap.MailboxWatcher, clock: Clock, renew: float) -> None:
        renewals.append(renew)
        watcher._stop.set()

    watcher = _watch(monkeypatch, FakeServer(M365_CAPS, M365_GREETING), "mail.agency.test", idle)
    assert watcher.quirks is not None and watcher.quirks.provider is Provider.EXCHANGE
    assert renewals == [240.0]  # not the standard 9 minutes


def test_other_servers_keep_the_standard_idle_renewal(monkeypatch: pytest.MonkeyPatch) -> None:
    renewals: list[float] = []

    def idle(watcher: imap.MailboxWatcher, clock: Clock, renew: float) -> None:
        renewals.append(renew)
        watcher._stop.set()

    dovecot = FakeServer((b"IMAP4REV1", b"IDLE"), b"* OK Dovecot ready.")
    _watch(monkeypatch, dovecot, "imap.agency.test", idle)
    assert renewals == [imap.IDLE_RENEW_SECONDS]


def test_gmail_session_is_renewed_before_google_cuts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def idle(watcher: imap.MailboxWatcher, clock: Clock, renew: float) -> None:
        clock.now += 8 * 3600.0  # a quiet mailbox: each IDLE renewal 8 hours apart

    watcher = _watch(monkeypatch, FakeServer(GMAIL_CAPS, GMAIL_GREETING), "imap.gmail.com", idle)
    # synced at 0, 8 and 16 hours; at 24 hours _connected returns so run() reconnects
    assert watcher.syncs == 3 and not watcher.stopping


# -- the Sent folder ----------------------------------------------------------------------


class FakeExchangeSent:
    def __init__(self) -> None:
        self.searches: list[tuple[list[Any], str | None]] = []

    def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
        return {b"EXISTS": 3}

    def search(self, criteria: list[Any], charset: str | None = None) -> list[int]:
        self.searches.append((criteria, charset))
        if charset is not None:
            raise IMAPClientError(M365_BADCHARSET)
        return [3]


def test_sent_folder_search_survives_exchanges_badcharset() -> None:
    sent = SentFolder(_settings())  # type: ignore[arg-type]
    client = FakeExchangeSent()
    sent._client, sent.folder = client, "Sent Items"  # type: ignore[assignment]
    assert sent.contains("<20240409.abc@agency.test>")
    assert [charset for _, charset in client.searches] == ["UTF-8", None]
    assert client.searches[-1][0] == ["HEADER", "Message-ID", "<20240409.abc@agency.test>"]


def test_sent_folder_not_found_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoSent:
        logged_out = False

        def logout(self) -> None:
            self.logged_out = True

    client = NoSent()
    monkeypatch.setattr(imap, "connect", lambda mailbox: client)
    monkeypatch.setattr(imap, "sent_folder", lambda c, mailbox: None)
    with pytest.raises(MailboxError, match="sent_folder") as info:
        SentFolder(_settings().mailbox).open()
    assert not info.value.transient and client.logged_out


# -- Exchange's References ----------------------------------------------------------------


@pytest.mark.parametrize("header", [
    b"References: <AM0PR01MB1.eurprd01.prod.outlook.com>,<DB7PR02MB2.eurprd02.prod.outlook.com>,"
    b"\r\n <AM0PR01MB3.eurprd01.prod.outlook.com>",
    b"References: <AM0PR01MB1.eurprd01.prod.outlook.com>, <DB7PR02MB2.eurprd02.prod.outlook.com>"
    b",\r\n\t<AM0PR01MB3.eurprd01.prod.outlook.com>",
])
def test_exchange_comma_separated_references(header: bytes) -> None:
    raw = (b"From: a@client.test\r\nTo: team@agency.test\r\nSubject: Re: x\r\n"
           b"Message-ID: <AM0PR01MB4.eurprd01.prod.outlook.com>\r\n" + header +
           b"\r\nIn-Reply-To: <AM0PR01MB3.eurprd01.prod.outlook.com>\r\n\r\nbody\r\n")
    parsed = parse_message(raw)
    assert parsed.references == ("<AM0PR01MB1.eurprd01.prod.outlook.com>",
                                 "<DB7PR02MB2.eurprd02.prod.outlook.com>",
                                 "<AM0PR01MB3.eurprd01.prod.outlook.com>")
    assert parsed.thread_key == "<AM0PR01MB1.eurprd01.prod.outlook.com>"


def test_a_bye_during_idle_keeps_the_servers_reason() -> None:
    class ByeDuringIdle:
        done = False

        def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
            return {b"UIDVALIDITY": 7, b"UIDNEXT": 4, b"EXISTS": 3}

        def idle(self) -> None:
            pass

        def idle_check(self, timeout: float) -> list[tuple[Any, ...]]:
            # recorded from Exchange Online, as imapclient parses it
            return [(b"BYE", b"Server", b"Unavailable.", 15)]

        def idle_done(self) -> None:
            self.done = True

    client = ByeDuringIdle()
    watcher = imap.MailboxWatcher(_settings(), FakeIngestor())  # type: ignore[arg-type]
    with pytest.raises(MailboxError) as info:
        watcher._idle(client, "INBOX", 240.0)  # type: ignore[arg-type]
    assert "BYE Server Unavailable. 15" in str(info.value) and client.done
    assert imap.server_throttle(info.value) == 60.0  # so run() pauses a minute


def test_mail_arriving_with_the_idle_handshake_is_not_left_waiting() -> None:
    """EXISTS sent between SELECT and '+ idling' is filed by imaplib, not by idle_check."""

    class ExistsDuringHandshake:
        done = False
        checks = 0

        def __init__(self) -> None:
            self._imap = SimpleNamespace(untagged_responses={"EXISTS": [b"3"]})

        def select_folder(self, folder: str, readonly: bool = False) -> dict[bytes, Any]:
            return {b"UIDVALIDITY": 7, b"UIDNEXT": 4, b"EXISTS": 3}

        def idle(self) -> None:
            self._imap.untagged_responses["EXISTS"].append(b"4")  # as imaplib files it

        def idle_check(self, timeout: float) -> list[tuple[Any, ...]]:
            self.checks += 1
            return []

        def idle_done(self) -> None:
            self.done = True

    client = ExistsDuringHandshake()
    watcher = imap.MailboxWatcher(_settings(), FakeIngestor())  # type: ignore[arg-type]
    watcher._idle(client, "INBOX", 540.0)  # type: ignore[arg-type]
    assert client.done and client.checks == 0  # back to sync at once, IDLE ended cleanly

"""Special-use discovery and provider quirks against a real Dovecot.

Folders carry non-English names and RFC 6154 flags set in Dovecot's config,
as a German or French Exchange/Gmail mailbox would; the name fallback is
exercised on a server that flags nothing. BADCHARSET is provoked for real
(Dovecot answers it for a charset it lacks) to run the US-ASCII fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from service.mail.folders import discover_special_folders, list_folders, special_folder
from service.mail.quirks import Provider, detect, search_with_fallback
from tests.rig import mailgen
from tests.rig.dovecot import Dovecot

pytestmark = pytest.mark.integration

TEAM = "team@northwind.test"
LOCALIZED = {
    "Gesendete Elemente": "\\Sent",
    "Éléments supprimés": "\\Trash",
    "Entwürfe": "\\Drafts",
    "Archiv": "\\Archive",
    "Alle Nachrichten": "\\All",
    "Junk-E-Mail": "\\Junk",
}


@pytest.fixture
def localized(dovecot_factory: Callable[..., Dovecot]) -> Dovecot:
    server = dovecot_factory()
    # move every flag off the rig's English defaults onto the localized folders
    server.special_use_folders = dict(LOCALIZED)
    server._write_config()
    server.restart()
    server.add_user(TEAM)
    return server


def test_flags_find_localized_folders(localized: Dovecot) -> None:
    with localized.session(TEAM) as client:
        assert client.has_capability("SPECIAL-USE")
        found = discover_special_folders(client)
        names = {f.name for f in list_folders(client)}
    assert found.sent == "Gesendete Elemente"
    assert found.trash == "Éléments supprimés"  # modified UTF-7 on the wire
    assert found.drafts == "Entwürfe"
    assert found.archive == "Archiv"
    assert found.all == "Alle Nachrichten"
    assert found.junk == "Junk-E-Mail"
    assert all(found.how[role] == "special-use" for role in ("sent", "trash", "archive"))
    assert {"INBOX", "Gesendete Elemente", "Éléments supprimés"} <= names


def test_configured_folder_wins(localized: Dovecot) -> None:
    with localized.session(TEAM) as client:
        client.create_folder("Clients/Sent by hand")
        assert special_folder(client, "sent", "Clients/Sent by hand") == "Clients/Sent by hand"
        assert special_folder(client, "sent") == "Gesendete Elemente"


def test_names_are_the_fallback_when_nothing_is_flagged(
    dovecot_factory: Callable[..., Dovecot],
) -> None:
    server = dovecot_factory()
    server.special_use_folders = {}
    server._write_config()
    server.restart()
    server.add_user(TEAM)
    with server.session(TEAM) as client:
        for name in ("Gesendete Elemente", "Papierkorb", "Clients"):
            client.create_folder(name)
        found = discover_special_folders(client)
    assert (found.sent, found.how["sent"]) == ("Gesendete Elemente", "name")
    assert found.trash == "Papierkorb"
    assert found.archive is None and found.all is None


def test_dovecot_is_recognised_and_has_no_gmail_or_exchange_quirks(dovecot: Dovecot) -> None:
    dovecot.add_user(TEAM)
    with dovecot.session(TEAM) as client:
        quirks = detect(client, dovecot.host)
    assert quirks.provider is Provider.DOVECOT
    assert not quirks.gmail_ids and not quirks.search_ascii_fallback


def test_badcharset_answer_falls_back_to_an_ascii_search(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.mail.quirks")
    dovecot.add_user(TEAM)
    raw = mailgen.message("charset test")
    message_id = next(
        line.split(b":", 1)[1].strip().decode()
        for line in raw.split(b"\r\n") if line.lower().startswith(b"message-id:")
    )
    dovecot.deliver(TEAM, raw)
    with dovecot.session(TEAM) as client:
        client.select_folder("INBOX", readonly=True)
        # a charset Dovecot does not know: a real NO [BADCHARSET ...] answer
        # (bytes criteria: imapclient would otherwise encode them in that charset)
        uids = search_with_fallback(client, [b"HEADER", b"Message-ID", message_id.encode()],
                                    charset="X-SAYGOODBYE-NONE")
    assert len(uids) == 1
    assert "event=imap_search_badcharset" in caplog.text  # the server did refuse first

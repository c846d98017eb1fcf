"""Special-use folder discovery on LIST answers recorded from real servers (byte literals)."""

from __future__ import annotations

from service.mail.folders import (
    FolderInfo,
    find_special_folders,
    parse_list_lines,
)

GMAIL_LIST = [
    b'* LIST (\\HasNoChildren) "/" "INBOX"',
    b'* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"',
    b'* LIST (\\All \\HasNoChildren) "/" "[Gmail]/All Mail"',
    b'* LIST (\\Drafts \\HasNoChildren) "/" "[Gmail]/Drafts"',
    b'* LIST (\\HasNoChildren \\Important) "/" "[Gmail]/Important"',
    b'* LIST (\\HasNoChildren \\Sent) "/" "[Gmail]/Sent Mail"',
    b'* LIST (\\HasNoChildren \\Junk) "/" "[Gmail]/Spam"',
    b'* LIST (\\Flagged \\HasNoChildren) "/" "[Gmail]/Starred"',
    b'* LIST (\\HasNoChildren \\Trash) "/" "[Gmail]/Trash"',
    b'* LIST (\\HasNoChildren) "/" "Clients/Acme"',
]

# Gmail with a German interface: same attributes, localized names.
GMAIL_DE_LIST = [
    b'* LIST (\\HasNoChildren) "/" "INBOX"',
    b'* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"',
    b'* LIST (\\All \\HasNoChildren) "/" "[Gmail]/Alle Nachrichten"',
    b'* LIST (\\Drafts \\HasNoChildren) "/" "[Gmail]/Entw&APw-rfe"',
    b'* LIST (\\HasNoChildren \\Sent) "/" "[Gmail]/Gesendet"',
    b'* LIST (\\HasNoChildren \\Trash) "/" "[Gmail]/Papierkorb"',
]

GMAIL_XLIST = [
    b'* XLIST (\\HasNoChildren \\Inbox) "/" "Inbox"',
    b'* XLIST (\\HasChildren \\Noselect) "/" "[Gmail]"',
    b'* XLIST (\\HasNoChildren \\AllMail) "/" "[Gmail]/All Mail"',
    b'* XLIST (\\HasNoChildren \\Sent) "/" "[Gmail]/Sent Mail"',
    b'* XLIST (\\HasNoChildren \\Spam) "/" "[Gmail]/Spam"',
    b'* XLIST (\\HasNoChildren \\Starred) "/" "[Gmail]/Starred"',
    b'* XLIST (\\HasNoChildren \\Trash) "/" "[Gmail]/Trash"',
]

EXCHANGE_ONLINE_LIST = [
    b'* LIST (\\HasNoChildren) "/" Archive',
    b'* LIST (\\HasChildren) "/" Calendar',
    b'* LIST (\\HasNoChildren) "/" "Conversation History"',
    b'* LIST (\\HasNoChildren \\Trash) "/" "Deleted Items"',
    b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    b'* LIST (\\Marked \\HasNoChildren) "/" INBOX',
    b'* LIST (\\HasNoChildren \\Junk) "/" "Junk Email"',
    b'* LIST (\\HasNoChildren) "/" Outbox',
    b'* LIST (\\HasNoChildren \\Sent) "/" "Sent Items"',
]

# An older Exchange in French without special-use attributes: names only (UTF-7).
EXCHANGE_FR_NO_ATTRIBUTES = [
    b'* LIST (\\HasNoChildren) "/" Archives',
    b'* LIST (\\HasNoChildren) "/" "&AMk-l&AOk-ments envoy&AOk-s"',
    b'* LIST (\\HasNoChildren) "/" "&AMk-l&AOk-ments supprim&AOk-s"',
    b'* LIST (\\HasNoChildren) "/" "Courrier ind&AOk-sirable"',
    b'* LIST (\\HasNoChildren) "/" Brouillons',
    b'* LIST (\\Marked \\HasNoChildren) "/" INBOX',
]

# Courier-style: everything under INBOX with a dot separator.
COURIER_LIST = [
    b'* LIST (\\Unmarked \\HasChildren) "." "INBOX"',
    b'* LIST (\\HasNoChildren) "." "INBOX.Sent"',
    b'* LIST (\\HasNoChildren) "." "INBOX.Trash"',
    b'* LIST (\\HasNoChildren) "." "INBOX.Drafts"',
    b'* LIST (\\HasNoChildren) "." "INBOX.spam"',
]


def test_gmail_list_by_attributes() -> None:
    found = find_special_folders(parse_list_lines(GMAIL_LIST))
    assert found.sent == "[Gmail]/Sent Mail"
    assert found.all == "[Gmail]/All Mail"
    assert found.drafts == "[Gmail]/Drafts"
    assert found.trash == "[Gmail]/Trash"
    assert found.junk == "[Gmail]/Spam"
    assert found.archive is None  # Gmail has no \Archive; All Mail is its archive
    assert found.how["sent"] == "special-use"


def test_localized_gmail_names_are_decoded_and_found_by_attribute() -> None:
    found = find_special_folders(parse_list_lines(GMAIL_DE_LIST))
    assert found.sent == "[Gmail]/Gesendet"
    assert found.drafts == "[Gmail]/Entwürfe"
    assert found.all == "[Gmail]/Alle Nachrichten"


def test_gmail_xlist_attributes() -> None:
    found = find_special_folders(parse_list_lines(GMAIL_XLIST))
    assert (found.sent, found.all, found.junk, found.trash) == (
        "[Gmail]/Sent Mail", "[Gmail]/All Mail", "[Gmail]/Spam", "[Gmail]/Trash",
    )


def test_exchange_online() -> None:
    found = find_special_folders(parse_list_lines(EXCHANGE_ONLINE_LIST))
    assert found.sent == "Sent Items"
    assert found.trash == "Deleted Items"
    assert found.junk == "Junk Email"
    # Exchange flags no \Archive: the well-known name is used, and said to be a guess
    assert found.archive == "Archive" and found.how["archive"] == "name"


def test_names_only_server_in_french() -> None:
    found = find_special_folders(parse_list_lines(EXCHANGE_FR_NO_ATTRIBUTES))
    assert found.sent == "Éléments envoyés"
    assert found.trash == "Éléments supprimés"
    assert found.junk == "Courrier indésirable"
    assert found.drafts == "Brouillons"
    assert found.archive == "Archives"
    assert all(found.how[r] == "name" for r in ("sent", "trash", "junk", "drafts"))


def test_courier_dot_hierarchy() -> None:
    found = find_special_folders(parse_list_lines(COURIER_LIST))
    assert (found.sent, found.trash, found.drafts, found.junk) == (
        "INBOX.Sent", "INBOX.Trash", "INBOX.Drafts", "INBOX.spam",
    )


def test_config_wins_over_attributes() -> None:
    found = find_special_folders(parse_list_lines(GMAIL_LIST), {"sent": "Clients/Acme"})
    assert found.sent == "Clients/Acme" and found.how["sent"] == "config"
    assert found.trash == "[Gmail]/Trash"


def test_attribute_wins_over_a_folder_with_the_english_name() -> None:
    folders = [
        FolderInfo("Sent", frozenset({"\\hasnochildren"})),  # left over from an old client
        FolderInfo("Gesendete Elemente", frozenset({"\\sent"})),
    ]
    found = find_special_folders(folders)
    assert found.sent == "Gesendete Elemente"


def test_shallowest_flagged_folder_wins_and_unselectable_is_skipped() -> None:
    folders = [
        FolderInfo("Projects/Sent", frozenset({"\\sent"})),
        FolderInfo("Sent Items", frozenset({"\\sent"})),
        FolderInfo("Trash", frozenset({"\\trash", "\\noselect"})),
        FolderInfo("Bin", frozenset()),
    ]
    found = find_special_folders(folders)
    assert found.sent == "Sent Items"
    assert found.trash == "Bin"


def test_name_matching_ignores_case_and_accents_but_not_other_words() -> None:
    folders = [FolderInfo("ENVOYES"), FolderInfo("Sent to Acme"), FolderInfo("Geloschte Elemente")]
    found = find_special_folders(folders)
    assert found.sent == "ENVOYES"
    assert found.trash == "Geloschte Elemente"


def test_all_mail_by_name_only_under_gmail() -> None:
    assert find_special_folders([FolderInfo("All Mail")]).all is None
    assert find_special_folders([FolderInfo("[Gmail]/All Mail")]).all == "[Gmail]/All Mail"


def test_literal_and_unquoted_names() -> None:
    lines = [(b'(\\HasNoChildren \\Sent) "/" {10}', b"Sent Items"), b'() "/" Archive']
    folders = parse_list_lines(lines)
    assert [f.name for f in folders] == ["Sent Items", "Archive"]
    assert folders[0].flags == frozenset({"\\hasnochildren", "\\sent"})


def test_no_folders_no_guesses() -> None:
    found = find_special_folders([FolderInfo("INBOX"), FolderInfo("Clients")])
    assert all(found.get(role) is None for role in ("sent", "trash", "drafts", "junk", "all"))
    assert dict(found.how) == {}


class _Recorded:
    """An IMAPClient stand-in answering LIST/XLIST with recorded data."""

    folder_encode = True

    def __init__(self, capabilities: set[str], answers: dict[str, list[tuple]]) -> None:
        self.capabilities = capabilities
        self.answers = answers
        self.asked: list[str] = []

    def has_capability(self, name: str) -> bool:
        return name in self.capabilities

    def xlist_folders(self) -> list[tuple]:
        self.asked.append("XLIST")
        return self.answers["XLIST"]

    def list_folders(self) -> list[tuple]:
        self.asked.append("LIST")
        return self.answers["LIST"]


def test_old_gmail_without_special_use_is_asked_with_xlist() -> None:
    from service.mail.folders import discover_special_folders

    client = _Recorded({"XLIST"}, {
        "XLIST": [((b"\\HasNoChildren", b"\\AllMail"), b"/", "[Gmail]/All Mail"),
                  ((b"\\HasNoChildren", b"\\Sent"), b"/", "[Gmail]/Sent Mail")],
        "LIST": [],
    })
    found = discover_special_folders(client)
    assert client.asked == ["XLIST"]
    assert (found.sent, found.all) == ("[Gmail]/Sent Mail", "[Gmail]/All Mail")


def test_server_without_extensions_gets_a_plain_list_and_a_name_guess() -> None:
    from service.mail.folders import discover_special_folders, special_folder

    client = _Recorded(set(), {"LIST": [((b"\\HasNoChildren",), b".", "INBOX.Gesendet")]})
    assert discover_special_folders(client).sent == "INBOX.Gesendet"
    assert client.asked == ["LIST"]
    assert special_folder(client, "sent", "Configured") == "Configured"
    assert client.asked == ["LIST"]  # configured: nothing asked

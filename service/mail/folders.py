"""Finding Sent, All Mail, Archive, Drafts, Trash and Junk whatever they are called.

Names differ by provider and language (Gmail's ``[Gmail]/Sent Mail``,
Exchange's ``Sent Items``, ``Gesendete Elemente``, ``Éléments envoyés``), so
folders are found by their RFC 6154 special-use attributes (or the older
XLIST ones Gmail still speaks), and only when a server announces none, by
well-known names in many languages. A folder named in the config always wins.

``find_special_folders`` is pure (LIST data in, names out);
``discover_special_folders`` is the thin I/O around it.
"""

from __future__ import annotations

import imaplib
import logging
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imapclient.imap_utf7 import decode as decode_utf7
from imapclient.response_parser import parse_response

log = logging.getLogger(__name__)

__all__ = [
    "ROLES",
    "FolderInfo",
    "SpecialFolders",
    "discover_special_folders",
    "find_special_folders",
    "folder_info",
    "list_folders",
    "parse_list_lines",
    "special_folder",
]

ROLES = ("sent", "all", "archive", "drafts", "trash", "junk")

# RFC 6154 attributes and Gmail's XLIST ones, lower-cased, to a role.
_FLAG_ROLES = {
    "\\sent": "sent",
    "\\all": "all",
    "\\allmail": "all",  # XLIST
    "\\archive": "archive",
    "\\drafts": "drafts",
    "\\trash": "trash",
    "\\junk": "junk",
    "\\spam": "junk",  # XLIST
}
_UNSELECTABLE = {"\\noselect", "\\nonexistent"}

# Well-known names (compared case- and accent-insensitively against the last
# hierarchy level), most specific first. Sources: the defaults of Outlook,
# Exchange/Microsoft 365, Gmail, Apple Mail, Thunderbird and common webmails
# in their localisations.
_NAMES: dict[str, tuple[str, ...]] = {
    "sent": (
        "Sent", "Sent Items", "Sent Messages", "Sent Mail", "Sent-Mail", "Sent Email",
        "Gesendet", "Gesendete Elemente", "Gesendete Objekte", "Gesendete Nachrichten",
        "Envoyés", "Éléments envoyés", "Messages envoyés", "Envoyé",
        "Enviados", "Elementos enviados", "Mensajes enviados", "Enviadas",
        "Itens Enviados", "Mensagens enviadas", "Enviats", "Elements enviats",
        "Posta inviata", "Inviati", "Elementi inviati", "Messaggi inviati",
        "Verzonden", "Verzonden items", "Verzonden berichten",
        "Skickat", "Skickade", "Skickade objekt", "Skickade meddelanden",
        "Sendt", "Sendte", "Sendte elementer", "Sendte meldinger", "Sendte e-mails",
        "Lähetetyt", "Lähetetyt kohteet", "Lähetetyt viestit",
        "Wysłane", "Elementy wysłane", "Odeslané", "Odeslaná pošta", "Odoslané",
        "Elküldött", "Elküldött elemek", "Elküldött üzenetek", "Trimise", "Elemente trimise",
        "Poslano", "Poslane stavke", "Poslato", "Отправленные", "Надіслані",
        "Gönderilmiş Öğeler", "Gönderilenler", "Απεσταλμένα",
        "送信済み", "送信済みアイテム", "送信済みメール", "已发送", "已发送邮件", "寄件備份",
        "已傳送郵件", "보낸 편지함", "보낸편지함", "العناصر المرسلة", "المرسلة", "פריטים שנשלחו",
    ),
    "drafts": (
        "Drafts", "Draft", "Entwürfe", "Brouillons", "Borradores", "Rascunhos", "Esborranys",
        "Bozze", "Concepten", "Utkast", "Kladder", "Udkast", "Luonnokset", "Kopie robocze",
        "Koncepty", "Rozepsané", "Piszkozatok", "Ciorne", "Nedovršeno", "Черновики",
        "Чернетки", "Taslaklar", "Πρόχειρα", "下書き", "草稿", "임시 보관함", "المسودات",
        "טיוטות",
    ),
    "trash": (
        "Trash", "Deleted Items", "Deleted Messages", "Deleted", "Bin",
        "Papierkorb", "Gelöschte Elemente", "Gelöschte Objekte", "Corbeille",
        "Éléments supprimés", "Papelera", "Elementos eliminados", "Lixeira", "Lixo",
        "Itens Excluídos", "Paperera", "Cestino", "Posta eliminata", "Elementi eliminati",
        "Prullenbak", "Verwijderde items", "Papperskorgen", "Borttagna objekt",
        "Papirkurv", "Slettede elementer", "Slettet post", "Roskakori", "Poistetut",
        "Poistetut kohteet", "Kosz", "Elementy usunięte", "Koš", "Odstraněná pošta",
        "Kuka", "Törölt elemek", "Coș de gunoi", "Elemente șterse", "Smeće", "Корзина",
        "Удаленные", "Удалённые", "Кошик", "Çöp Kutusu", "Silinmiş Öğeler", "Κάδος",
        "ごみ箱", "削除済みアイテム", "已删除", "已删除邮件", "垃圾桶", "휴지통",
        "العناصر المحذوفة", "פריטים שנמחקו",
    ),
    "junk": (
        "Junk", "Junk E-mail", "Junk Email", "Junk Mail", "Spam", "Bulk Mail",
        "Junk-E-Mail", "Spamverdacht", "Courrier indésirable", "Pourriel",
        "Correo no deseado", "Lixo Eletrônico", "Posta indesiderata", "Ongewenste e-mail",
        "Skräppost", "Uønsket e-post", "Uønsket e-mail", "Roskaposti", "Wiadomości-śmieci",
        "Nevyžádaná pošta", "Levélszemét", "Спам", "Нежелательная почта", "Gereksiz",
        "迷惑メール", "垃圾邮件", "스팸 메일함",
    ),
    "archive": (
        "Archive", "Archives", "Archiv", "Archivio", "Archivo", "Archief", "Arkiv",
        "Arkisto", "Archiwum", "Archívum", "Arhivă", "Arquivo", "Arxiu", "Архив", "Архів",
        "Arşiv", "Αρχειοθέτηση", "アーカイブ", "存档", "归档", "보관",
    ),
    "all": ("All Mail", "Alle Nachrichten", "Tous les messages", "Todos", "Tutti i messaggi",
            "Alle berichten", "Alle e-mails", "Toda a correspondência"),
}


def _fold(text: str) -> str:
    """Case- and accent-insensitive form (users and servers disagree on both)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


_NAME_RANK = {
    role: {_fold(name): rank for rank, name in enumerate(names)} for role, names in _NAMES.items()
}


@dataclass(frozen=True)
class FolderInfo:
    """One LIST/XLIST answer: the folder's name, its attributes (lower-cased), its separator."""

    name: str
    flags: frozenset[str] = frozenset()
    delimiter: str | None = "/"

    @property
    def selectable(self) -> bool:
        return not (self.flags & _UNSELECTABLE)

    @property
    def leaf(self) -> str:
        if self.delimiter and self.delimiter in self.name:
            return self.name.rsplit(self.delimiter, 1)[1]
        return self.name

    @property
    def depth(self) -> int:
        return self.name.count(self.delimiter) if self.delimiter else 0


@dataclass(frozen=True)
class SpecialFolders:
    """Folder name per role (None: none found), and how each was found.

    ``how[role]`` is ``config``, ``special-use`` (RFC 6154 or XLIST attribute)
    or ``name`` (a well-known name; a guess the log should show).
    """

    sent: str | None = None
    all: str | None = None
    archive: str | None = None
    drafts: str | None = None
    trash: str | None = None
    junk: str | None = None
    how: Mapping[str, str] = field(default_factory=dict)

    def get(self, role: str) -> str | None:
        if role not in ROLES:
            raise KeyError(role)
        return getattr(self, role)  # type: ignore[no-any-return]


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def folder_info(
    flags: Iterable[Any], delimiter: Any, name: Any, *, utf7: bool = False
) -> FolderInfo:
    """One folder from imapclient's ``(flags, delimiter, name)`` tuple."""
    if isinstance(name, bytes):
        name = decode_utf7(name) if utf7 else name.decode("utf-8", errors="replace")
    return FolderInfo(
        name=str(name),
        flags=frozenset(_as_text(f).lower() for f in flags),
        delimiter=_as_text(delimiter) if delimiter is not None else None,
    )


def parse_list_lines(lines: Iterable[bytes | tuple[bytes, bytes]]) -> list[FolderInfo]:
    """Raw LIST/XLIST untagged answers (with or without ``* LIST``) -> folders.

    Names are decoded from modified UTF-7 (RFC 3501 5.1.3), as servers send
    them unless UTF8=ACCEPT was enabled; already-decoded UTF-8 passes through.
    """
    data: list[bytes | tuple[bytes, bytes]] = []
    for line in lines:
        if isinstance(line, bytes):
            for prefix in (b"* LIST ", b"* XLIST ", b"* LSUB "):
                if line[: len(prefix)].upper() == prefix:
                    line = line[len(prefix):]
                    break
            line = line.rstrip(b"\r\n")
            if not line:
                continue
        data.append(line)
    parsed = parse_response(data)
    folders = []
    for i in range(0, len(parsed) - 2, 3):
        flags, delimiter, name = parsed[i], parsed[i + 1], parsed[i + 2]
        if isinstance(name, int):
            name = str(name)
        if isinstance(name, bytes):
            try:
                text = decode_utf7(name)
            except Exception:  # not valid modified UTF-7: the server sent UTF-8
                text = name.decode("utf-8", errors="replace")
            name = text
        folders.append(folder_info(flags, delimiter, name))
    return folders


def find_special_folders(
    folders: Sequence[FolderInfo], overrides: Mapping[str, str | None] | None = None
) -> SpecialFolders:
    """Pick one folder per role: config, else attribute, else well-known name.

    When several folders carry the same attribute (a user flagged a subfolder
    too), the shallowest, then the first listed, wins. Name matching looks at
    the last hierarchy level, so ``INBOX.Sent`` and ``[Gmail]/Sent Mail``
    match, and never picks a folder that another role already owns by
    attribute, or one that cannot be selected.
    """
    overrides = overrides or {}
    chosen: dict[str, str] = {}
    how: dict[str, str] = {}
    for role in ROLES:
        if overrides.get(role):
            chosen[role] = str(overrides[role])
            how[role] = "config"
    usable = [f for f in folders if f.selectable]
    by_attribute: dict[str, list[FolderInfo]] = {}
    for info in usable:
        for flag in info.flags:
            role = _FLAG_ROLES.get(flag)
            if role:
                by_attribute.setdefault(role, []).append(info)
    for role, candidates in by_attribute.items():
        if role not in chosen:
            best = min(candidates, key=lambda f: f.depth)
            chosen[role] = best.name
            how[role] = "special-use"
    taken = set(chosen.values())
    for role in ROLES:
        if role in chosen:
            continue
        ranks = _NAME_RANK[role]
        matches = [
            (ranks[_fold(f.leaf)], f.depth, index, f)
            for index, f in enumerate(usable)
            if _fold(f.leaf) in ranks and f.name not in taken and f.name.upper() != "INBOX"
        ]
        if role == "all":  # "All Mail" by name only where Gmail puts it
            matches = [m for m in matches if m[3].name.startswith(("[Gmail]", "[Google Mail]"))]
        if matches:
            found = min(matches, key=lambda m: m[:3])[3]
            chosen[role] = found.name
            how[role] = "name"
            taken.add(found.name)
    return SpecialFolders(**{role: chosen.get(role) for role in ROLES}, how=how)


# -- I/O ---------------------------------------------------------------------------------


def list_folders(client: Any) -> list[FolderInfo]:
    """Every folder with its attributes, asking the way the server understands best.

    RFC 6154 servers are asked ``LIST "" "*" RETURN (SPECIAL-USE)`` (attributes
    are only promised then); Gmail-style servers without it, XLIST; others a
    plain LIST.
    """
    utf7 = bool(getattr(client, "folder_encode", True))
    if client.has_capability("SPECIAL-USE") and client.has_capability("LIST-EXTENDED"):
        try:
            imap = client._imap
            typ, data = imap._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
            if typ == "OK":
                _, data = imap._untagged_response(typ, data, "LIST")
                return [folder_info(*item, utf7=utf7) for item in client._proc_folder_list(data)]
        except imaplib.IMAP4.error as exc:  # refused the extended form: plain LIST below
            log.debug("event=imap_list_extended_refused error=%s", exc)
    if client.has_capability("XLIST") and not client.has_capability("SPECIAL-USE"):
        return [folder_info(*item, utf7=utf7) for item in client.xlist_folders()]
    return [folder_info(*item, utf7=utf7) for item in client.list_folders()]


def discover_special_folders(
    client: Any, overrides: Mapping[str, str | None] | None = None
) -> SpecialFolders:
    """List the folders of a logged-in IMAPClient and pick one per role."""
    found = find_special_folders(list_folders(client), overrides)
    for role in ROLES:
        if found.how.get(role) == "name":
            log.info("event=imap_folder_by_name role=%s folder=%s", role, found.get(role))
    return found


def special_folder(client: Any, role: str, configured: str | None = None) -> str | None:
    """One role's folder (e.g. ``special_folder(client, "sent", mailbox.sent_folder)``)."""
    if configured:
        return configured
    return discover_special_folders(client).get(role)

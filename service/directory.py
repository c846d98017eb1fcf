"""Who is who: map email addresses to clients, our own staff, or unassigned senders.

Pure logic over the configured client list, so it runs unchanged inside
worker processes and in tests without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .analysis.types import Role

# Free-mail providers: a sender there is identified by address, not by domain,
# because the domain says nothing about which company they belong to.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk",
        "live.com", "msn.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de",
        "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "gmx.de", "gmx.net",
        "gmx.com", "web.de", "t-online.de", "freenet.de", "posteo.de", "mailbox.org",
        "proton.me", "protonmail.com", "pm.me", "zoho.com", "yandex.ru", "yandex.com",
        "mail.ru", "orange.fr", "free.fr", "laposte.net", "libero.it", "virgilio.it",
        "fastmail.com", "hey.com", "tutanota.com", "qq.com", "163.com", "seznam.cz",
        "wp.pl", "o2.pl", "interia.pl", "btinternet.com", "comcast.net", "verizon.net",
    }
)


@dataclass(frozen=True)
class ClientRef:
    name: str
    owner: str
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Party:
    """Where one message belongs."""

    role: Role
    client: str | None
    unassigned_key: str | None = None


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower() if "@" in address else ""


def _domain_matches(domain: str, configured: str) -> bool:
    return domain == configured or domain.endswith("." + configured)


class Directory:
    """Lookup tables built once from the config."""

    def __init__(self, clients: Iterable[ClientRef], own_domains: Sequence[str]) -> None:
        self.clients = tuple(clients)
        self.own_domains = tuple(d.lower() for d in own_domains)
        self._by_address: dict[str, str] = {}
        self._by_domain: list[tuple[str, str]] = []
        for client in self.clients:
            for address in client.addresses:
                self._by_address[address.lower()] = client.name
            for domain in client.domains:
                self._by_domain.append((domain.lower(), client.name))
        # Longest domain first, so "eu.acme.com" wins over "acme.com".
        self._by_domain.sort(key=lambda item: -len(item[0]))

    @classmethod
    def from_settings(cls, settings: object) -> Directory:
        clients = [
            ClientRef(c.name, c.owner, tuple(c.domains), tuple(c.addresses))
            for c in getattr(settings, "clients", ())
        ]
        return cls(clients, getattr(settings, "own_domains", ()))

    def is_staff(self, address: str | None) -> bool:
        if not address:
            return False
        domain = _domain(address)
        return any(_domain_matches(domain, own) for own in self.own_domains)

    def client_of(self, address: str | None) -> str | None:
        if not address:
            return None
        address = address.lower()
        if address in self._by_address:
            return self._by_address[address]
        domain = _domain(address)
        for configured, name in self._by_domain:
            if _domain_matches(domain, configured):
                return name
        return None

    @staticmethod
    def unassigned_key(address: str) -> str:
        """Group unknown senders by company domain, or by address at free-mail providers."""
        domain = _domain(address)
        return address.lower() if domain in FREE_MAIL_DOMAINS or not domain else domain

    def classify(
        self, sender: str | None, recipients: Sequence[str] = ()
    ) -> Party:
        """Decide the message's side and client.

        Staff messages belong to the client they are addressed to; a client's
        own address list wins over domains; anything else is unassigned.
        """
        if self.is_staff(sender):
            for address in recipients:
                client = self.client_of(address)
                if client:
                    return Party("staff", client)
            for address in recipients:
                if address and not self.is_staff(address):
                    return Party("staff", None, self.unassigned_key(address))
            return Party("staff", None)
        client = self.client_of(sender)
        if client:
            return Party("client", client)
        if sender:
            return Party("unassigned", None, self.unassigned_key(sender))
        return Party("unassigned", None, None)

    def owner_of(self, client: str) -> str | None:
        for ref in self.clients:
            if ref.name == client:
                return ref.owner
        return None

"""Who writes in the sample mailbox: Northwind Studio staff and the client contacts.

``style`` is the sender's mail client, which decides how replies quote history:
gmail (On … wrote: + gmail_quote HTML), outlook (From/Sent/To/Subject block,
divRplyFwdMsg HTML), apple (plain text, "On 3 Mar 2026, at 09:14"), german /
french (localized attribution lines), plain.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    handle: str
    name: str
    email: str
    client: str | None  # None = Northwind staff
    tz: str = "Europe/Berlin"
    style: str = "gmail"
    signature: str = ""
    charset: str = "utf-8"
    html_only: bool = False


@dataclass(frozen=True)
class Client:
    key: str
    name: str
    domains: tuple[str, ...]
    owner: str  # staff handle
    revenue: int  # EUR per month
    contacts: tuple[str, ...]  # handles, first one receives invoices
    service: str
    code: str  # invoice number suffix
    tz: str = "Europe/Berlin"
    addresses: tuple[str, ...] = ()


_STAFF = [
    Person("maria", "Maria Keller", "maria@northwind.studio", None,
           signature="Maria Keller\nFounder, Northwind Studio\n+49 30 5557 1201"),
    Person("jonas", "Jonas Brandt", "jonas@northwind.studio", None,
           signature="Jonas Brandt\nManaging Partner | Northwind Studio\n+49 30 5557 1202"),
    Person("priya", "Priya Nair", "priya@northwind.studio", None,
           signature="Priya Nair\nSenior Designer, Northwind Studio"),
    Person("tom", "Tom Becker", "tom@northwind.studio", None,
           signature="Tom\n--\nTom Becker · Developer · Northwind Studio"),
    Person("accounts", "Northwind Studio Accounts", "accounts@northwind.studio", None,
           style="plain"),
]

_CONTACTS = [
    # Acme Retail: big, healthy, organised.
    Person("anna", "Anna Schmidt", "anna.schmidt@acme-retail.com", "acme",
           signature="Anna Schmidt\nHead of eCommerce | Acme Retail GmbH\n"
                     "T +49 40 3344 210 | M +49 171 220 4410"),
    Person("ben", "Ben Okafor", "ben.okafor@acme-retail.com", "acme",
           signature="Ben Okafor\nOnline Marketing Manager, Acme Retail"),
    Person("acmeap", "Acme Accounts Payable", "ap@acme-retail.com", "acme", style="plain",
           signature="Acme Retail GmbH – Accounts Payable"),
    # Helios Energie: German, Outlook, umlauts.
    Person("juergen", "Jürgen Müller", "j.mueller@helios-energie.de", "helios",
           style="german", signature="Mit freundlichen Grüßen\nJürgen Müller\n"
                                     "Leitung Marketing & Kommunikation\nHelios Energie AG\n"
                                     "Tel. +49 711 908 442-10"),
    Person("soeren", "Sören Köhler", "s.koehler@helios-energie.de", "helios",
           style="german", signature="Viele Grüße\nSören Köhler\nHelios Energie AG"),
    # Maison Delacroix: French bakery chain, latin-1 mail client, terse but happy.
    Person("claude", "Claude Delacroix", "claude@maison-delacroix.fr", "delacroix",
           tz="Europe/Paris", style="french", charset="windows-1252",
           signature="Claude Delacroix\nMaison Delacroix – Boulangerie Pâtisserie"),
    # Brightline Fitness: app onboarding flow, endless revisions.
    Person("kyle", "Kyle Dawson", "kyle@brightline-fitness.com", "brightline",
           tz="Europe/London", signature="Kyle Dawson\nProduct Lead, Brightline Fitness"),
    Person("rachel", "Rachel Tan", "rachel.tan@brightline-fitness.com", "brightline",
           tz="Europe/London", signature="Rachel Tan\nCEO, Brightline Fitness"),
    # Greenleaf Organics: lovely, tiny budget, constant scope creep.
    Person("holly", "Holly Whitfield", "holly@greenleaf-organics.co.uk", "greenleaf",
           tz="Europe/London", style="apple",
           signature="Holly x\nGreenleaf Organics · Farm shop & veg boxes"),
    Person("hollyg", "Holly Whitfield", "hollywhitfield.greenleaf@gmail.com", "greenleaf",
           tz="Europe/London", style="gmail", signature="Holly x"),
    # Harborview Hotels: healthy at first, sours, escalates. Outlook, HTML only.
    Person("daniel", "Daniel Moreau", "d.moreau@harborview-hotels.com", "harborview",
           style="outlook", html_only=True,
           signature="Daniel Moreau\nDirector of Marketing\nHarborview Hotels & Resorts\n"
                     "+49 40 808 1190"),
    Person("victoria", "Victoria Hale", "v.hale@harborview-hotels.com", "harborview",
           style="outlook", html_only=True,
           signature="Victoria Hale\nChief Operating Officer\nHarborview Hotels & Resorts"),
    # Kestrel Motors: unreasonable urgency, dismissive. Mostly from the phone.
    Person("marco", "Marco Rinaldi", "marco.rinaldi@kestrel-motors.com", "kestrel",
           style="outlook", signature="Marco Rinaldi\nSales & Marketing Director\nKestrel Motors"),
    # Pixelpoint: late payment, discount pressure.
    Person("sven", "Sven Aalto", "sven@pixelpoint.io", "pixelpoint", tz="Europe/Helsinki",
           signature="Sven Aalto | Co-founder & CEO | Pixelpoint"),
    Person("lea", "Lea Virtanen", "lea@pixelpoint.io", "pixelpoint", tz="Europe/Helsinki",
           signature="Lea Virtanen\nOperations, Pixelpoint"),
    # Lindqvist Arkitekter: calm, appreciative, Apple Mail.
    Person("ingrid", "Ingrid Lindqvist", "ingrid@lindqvist-ark.se", "lindqvist",
           tz="Europe/Stockholm", style="apple",
           signature="Ingrid Lindqvist\nPartner, Lindqvist Arkitekter\n+46 8 522 180 40"),
    # Oakridge Dental: terse, happy, pays on time.
    Person("drpatel", "Dr. Samir Patel", "spatel@oakridge-dental.com", "oakridge",
           tz="Europe/London", style="plain", signature="S. Patel"),
    Person("oakfront", "Oakridge Dental Reception", "frontdesk@oakridge-dental.com",
           "oakridge", tz="Europe/London", style="plain",
           signature="Oakridge Dental Practice\n12 Oakridge Road, Bristol"),
]

PEOPLE: dict[str, Person] = {p.handle: p for p in _STAFF + _CONTACTS}

CLIENTS: dict[str, Client] = {c.key: c for c in [
    Client("acme", "Acme Retail", ("acme-retail.com",), "maria", 9500,
           ("anna", "ben"), "website relaunch and shop retainer", "AR"),
    Client("helios", "Helios Energie", ("helios-energie.de",), "jonas", 3800,
           ("juergen", "soeren"), "Markenauffrischung / brand refresh", "HE"),
    Client("delacroix", "Maison Delacroix", ("maison-delacroix.fr",), "maria", 1200,
           ("claude",), "menu and shop-window design retainer", "MD", tz="Europe/Paris"),
    Client("brightline", "Brightline Fitness", ("brightline-fitness.com",), "jonas", 2800,
           ("kyle", "rachel"), "app onboarding flow", "BF", tz="Europe/London"),
    Client("greenleaf", "Greenleaf Organics", ("greenleaf-organics.co.uk",), "maria", 250,
           ("holly",), "newsletter templates retainer", "GO", tz="Europe/London",
           addresses=("hollywhitfield.greenleaf@gmail.com",)),
    Client("harborview", "Harborview Hotels", ("harborview-hotels.com",), "maria", 6000,
           ("daniel", "victoria"), "booking site and seasonal campaigns", "HH"),
    Client("kestrel", "Kestrel Motors", ("kestrel-motors.com",), "jonas", 3200,
           ("marco",), "trade-show booth and dealer marketing", "KM"),
    Client("pixelpoint", "Pixelpoint", ("pixelpoint.io",), "jonas", 2400,
           ("sven", "lea"), "product website and release pages", "PP", tz="Europe/Helsinki"),
    Client("lindqvist", "Lindqvist Arkitekter", ("lindqvist-ark.se",), "maria", 2000,
           ("ingrid",), "portfolio site and competition boards", "LA", tz="Europe/Stockholm"),
    Client("oakridge", "Oakridge Dental", ("oakridge-dental.com",), "jonas", 900,
           ("drpatel", "oakfront"), "practice website and local ads", "OD", tz="Europe/London"),
]}

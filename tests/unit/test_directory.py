from service.directory import ClientRef, Directory

DIRECTORY = Directory(
    [
        ClientRef("Acme", "maria@northwind.studio", ("acme.com",), ("ceo.acme@gmail.com",)),
        ClientRef("Acme EU", "jonas@northwind.studio", ("eu.acme.com",)),
    ],
    ["northwind.studio"],
)


def test_client_by_domain_subdomain_and_address() -> None:
    assert DIRECTORY.classify("bob@acme.com").client == "Acme"
    assert DIRECTORY.classify("x@mail.acme.com").client == "Acme"
    assert DIRECTORY.classify("anna@eu.acme.com").client == "Acme EU"  # longest wins
    assert DIRECTORY.classify("ceo.acme@gmail.com").client == "Acme"
    assert DIRECTORY.classify("bob@notacme.com").client is None


def test_staff_message_belongs_to_recipient_client() -> None:
    party = DIRECTORY.classify("maria@northwind.studio", ["team@northwind.studio", "bob@acme.com"])
    assert (party.role, party.client) == ("staff", "Acme")


def test_unassigned_grouping_by_domain_or_free_mail_address() -> None:
    assert DIRECTORY.classify("lead@prospect.io").unassigned_key == "prospect.io"
    assert DIRECTORY.classify("Someone@GMail.com").unassigned_key == "someone@gmail.com"
    assert DIRECTORY.classify(None).role == "unassigned"

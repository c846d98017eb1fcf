"""OAuth2 logins against real servers.

Dovecot checks every XOAUTH2/OAUTHBEARER token with the loopback provider's
introspection endpoint (its ``oauth2`` passdb); the service gets its tokens
from the same provider's token endpoint through google-auth or msal, exactly
as it would from Google or Microsoft. SMTP runs against aiosmtpd accepting
XOAUTH2/OAUTHBEARER only.
"""

from __future__ import annotations

import asyncio
import logging
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.config import Settings, settings_from_mapping
from service.directory import Directory
from service.errors import DeliveryError, MailboxError
from service.ingest import Ingestor
from service.mail.auth import (
    oauthbearer_string,
    reset_token_sources,
    token_source,
    xoauth2_string,
)
from service.mail.imap import connect, sync_once
from service.mail.send import SmtpTransport
from service.store.db import Store
from service.store.models import Message
from tests.rig import mailgen
from tests.rig.dovecot import DovecotError
from tests.rig.fixtures import _require_dovecot
from tests.rig.oauth import OAuthDovecot, OAuthProvider, OAuthSmtpServer

pytestmark = pytest.mark.integration

TEAM = "team@northwind.test"
CLIENT_ID = "saygoodbye-test.apps.example"
CLIENT_SECRET = "client-secret-value-7f3a"
REFRESH_ENV = "SG_TEST_OAUTH_REFRESH"
SECRET_ENV = "SG_TEST_OAUTH_SECRET"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthProvider]:
    with OAuthProvider(tmp_path_factory.mktemp("idp")) as idp:
        yield idp


@pytest.fixture(scope="module")
def oauth_dovecot(provider: OAuthProvider) -> Iterator[OAuthDovecot]:
    _require_dovecot()
    server = OAuthDovecot(provider.introspection_url, mode="post")
    try:
        server.start()
    except DovecotError:
        server.close()
        raise
    yield server
    server.close()


@pytest.fixture
def idp(provider: OAuthProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthProvider]:
    """The provider with fresh state; its TLS certificate trusted by requests (msal)."""
    provider.state = type(provider.state)()
    provider.lifetime, provider.valid_for, provider.rotate = 3600.0, None, False
    provider.add_client(CLIENT_ID, CLIENT_SECRET)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(provider.cert_path))
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    reset_token_sources()
    yield provider
    reset_token_sources()


@pytest.fixture
def dovecot(oauth_dovecot: OAuthDovecot) -> OAuthDovecot:
    oauth_dovecot.reset()
    oauth_dovecot.add_user(TEAM, "not-used-by-the-service")
    return oauth_dovecot


def google_settings(idp: OAuthProvider, dovecot: OAuthDovecot, monkeypatch: pytest.MonkeyPatch,
                    **extra: Any) -> Settings:
    monkeypatch.setenv(REFRESH_ENV, idp.issue_refresh_token(TEAM))
    return settings_from_mapping({
        "mailbox": {
            "host": dovecot.host, "port": dovecot.imap_port, "security": "none",
            "username": TEAM, "timeout": 10, "auth": "oauth2",
            "oauth2_provider": "google", "oauth2_client_id": CLIENT_ID,
            "oauth2_client_secret_env": SECRET_ENV, "oauth2_refresh_token_env": REFRESH_ENV,
            "oauth2_token_url": idp.token_url, **extra,
        },
    })


def login_introspections(idp: OAuthProvider) -> list[bool]:
    return [active for _, active in idp.state.introspections]


def test_imap_xoauth2_with_a_refreshed_google_token(
    idp: OAuthProvider, dovecot: OAuthDovecot, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # google-auth, urllib3, imaplib all at their chattiest
    settings = google_settings(idp, dovecot, monkeypatch)
    client = connect(settings.mailbox)
    try:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    finally:
        client.logout()
    assert idp.state.grants == {"refresh_token": 1}
    assert idp.state.seen_secrets == [CLIENT_SECRET]
    assert login_introspections(idp) == [True]
    # a second connection reuses the token: no new refresh
    connect(settings.mailbox).logout()
    assert idp.state.grants["refresh_token"] == 1
    secrets = [CLIENT_SECRET, str(settings.mailbox.oauth2_refresh_token()), *idp.issued]
    assert not [s for s in secrets if s in caplog.text]


def test_imap_oauthbearer(
    idp: OAuthProvider, dovecot: OAuthDovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = google_settings(idp, dovecot, monkeypatch, oauth2_mechanism="oauthbearer")
    connect(settings.mailbox).logout()
    assert login_introspections(idp) == [True]
    assert "method=OAUTHBEARER" in dovecot.log_tail(200)


def test_token_refused_by_the_server_is_refreshed_and_the_login_retried(
    idp: OAuthProvider, dovecot: OAuthDovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The endpoint announces an hour, the server stops accepting after 1 s
    # (revoked, or our clock is off): the cached token is refused once.
    idp.valid_for = 1.0
    settings = google_settings(idp, dovecot, monkeypatch)
    connect(settings.mailbox).logout()
    time.sleep(1.2)
    client = connect(settings.mailbox)
    client.logout()
    assert idp.state.grants["refresh_token"] == 2
    assert login_introspections(idp) == [True, False, True]


def test_token_is_refreshed_before_it_expires(
    idp: OAuthProvider, dovecot: OAuthDovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    idp.lifetime = 3.0  # short-lived: refreshed once half its life is gone
    settings = google_settings(idp, dovecot, monkeypatch)
    connect(settings.mailbox).logout()
    time.sleep(1.8)
    connect(settings.mailbox).logout()
    assert idp.state.grants["refresh_token"] == 2
    assert login_introspections(idp) == [True, True]  # never shown a dying token


def test_full_sync_over_oauth2(
    idp: OAuthProvider, dovecot: OAuthDovecot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dovecot.deliver_many(TEAM, [mailgen.message(f"hello {i}") for i in range(5)])
    settings = google_settings(idp, dovecot, monkeypatch)
    settings = settings.model_copy(
        update={"service": settings.service.model_copy(
            update={"database": f"sqlite:///{tmp_path / 'sg.db'}"})}
    )
    store = Store(settings.database_url)
    try:
        with Ingestor(store, Directory.from_settings(settings), workers=1) as ingestor:
            result = sync_once(settings, ingestor)
        assert result.stored == 5
        with store.session() as session:
            assert len(list(session.scalars(select(Message.message_id)))) == 5
    finally:
        store.dispose()


def test_revoked_refresh_token_is_a_permanent_error_without_secrets(
    idp: OAuthProvider, dovecot: OAuthDovecot, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = google_settings(idp, dovecot, monkeypatch)
    refresh = str(settings.mailbox.oauth2_refresh_token())
    idp.revoke_refresh_token(refresh)
    with pytest.raises(MailboxError) as info:
        connect(settings.mailbox)
    assert info.value.transient is False
    assert "invalid_grant" in str(info.value)
    for text in (str(info.value), caplog.text):
        assert refresh not in text and CLIENT_SECRET not in text


def test_unreachable_token_endpoint_is_transient(
    idp: OAuthProvider, dovecot: OAuthDovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.rig.dovecot import free_port

    settings = google_settings(
        idp, dovecot, monkeypatch, oauth2_token_url=f"https://127.0.0.1:{free_port()}/token"
    )
    with pytest.raises(MailboxError) as info:
        connect(settings.mailbox)
    assert info.value.transient is True


def microsoft_settings(idp: OAuthProvider, dovecot: OAuthDovecot, **mailbox: Any) -> Settings:
    return settings_from_mapping({
        "mailbox": {
            "host": dovecot.host, "port": dovecot.imap_port, "security": "none",
            "username": TEAM, "timeout": 10, "auth": "oauth2",
            "oauth2_provider": "microsoft", "oauth2_client_id": CLIENT_ID,
            "oauth2_tenant": idp.tenant, "oauth2_authority": idp.authority, **mailbox,
        },
    })


def test_microsoft_service_principal_with_msal(
    idp: OAuthProvider, dovecot: OAuthDovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    idp.grant_app(CLIENT_ID, TEAM)
    settings = microsoft_settings(
        idp, dovecot, oauth2_flow="client_credentials", oauth2_client_secret_env=SECRET_ENV
    )
    connect(settings.mailbox).logout()
    assert idp.state.grants == {"client_credentials": 1}
    assert login_introspections(idp) == [True]
    # refused token (revoked server-side) -> msal is asked again, not its cache
    idp.revoke_all_access()
    connect(settings.mailbox).logout()
    assert idp.state.grants == {"client_credentials": 2}
    assert CLIENT_SECRET not in caplog.text
    for token in idp.issued:
        assert token not in caplog.text


def test_microsoft_delegated_refresh_token_rotation_is_saved(
    idp: OAuthProvider, dovecot: OAuthDovecot, tmp_path: Path
) -> None:
    idp.rotate = True
    idp.add_client(CLIENT_ID, None)  # a public client: device-code consent, no secret
    first = idp.issue_refresh_token(TEAM)
    token_file = tmp_path / "m365-refresh-token"
    token_file.write_text(first + "\n")
    token_file.chmod(0o600)
    settings = microsoft_settings(idp, dovecot, oauth2_refresh_token_file=str(token_file))
    connect(settings.mailbox).logout()
    rotated = token_file.read_text().strip()
    assert rotated != first and rotated in idp.state.refresh_tokens
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    # a restarted daemon reads the rotated token (the first one is dead now)
    reset_token_sources()
    idp.revoke_all_access()
    connect(settings.mailbox).logout()
    assert idp.state.grants["refresh_token"] == 2


def test_microsoft_app_without_mailbox_access_is_a_permanent_error(
    idp: OAuthProvider, dovecot: OAuthDovecot
) -> None:
    # no grant_app(): the admin has not run Add-MailboxPermission / consented
    settings = microsoft_settings(
        idp, dovecot, oauth2_flow="client_credentials", oauth2_client_secret_env=SECRET_ENV
    )
    with pytest.raises(MailboxError) as info:
        connect(settings.mailbox)
    assert info.value.transient is False and "unauthorized_client" in str(info.value)
    assert CLIENT_SECRET not in str(info.value)


def test_generic_provider_client_credentials(
    idp: OAuthProvider, dovecot: OAuthDovecot
) -> None:
    idp.grant_app(CLIENT_ID, TEAM)
    settings = settings_from_mapping({"mailbox": {
        "host": dovecot.host, "port": dovecot.imap_port, "security": "none",
        "username": TEAM, "auth": "oauth2", "oauth2_provider": "generic",
        "oauth2_flow": "client_credentials", "oauth2_client_id": CLIENT_ID,
        "oauth2_client_secret_env": SECRET_ENV, "oauth2_token_url": idp.token_url,
        "oauth2_scopes": ["mail"], "oauth2_mechanism": "oauthbearer",
    }})
    connect(settings.mailbox).logout()
    assert idp.state.grants == {"client_credentials": 1}
    assert login_introspections(idp) == [True]


def test_introspection_get_mode(
    idp: OAuthProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    _require_dovecot()
    with OAuthDovecot(idp.introspection_url, mode="get") as server:
        server.add_user(TEAM, "unused")
        settings = google_settings(idp, server, monkeypatch)
        connect(settings.mailbox).logout()
    assert idp.state.introspections == [("get", True)]


# -- SMTP -------------------------------------------------------------------------------------


def smtp_settings(idp: OAuthProvider, server: OAuthSmtpServer, monkeypatch: pytest.MonkeyPatch,
                  **smtp: Any) -> Settings:
    monkeypatch.setenv(REFRESH_ENV, idp.issue_refresh_token(TEAM))
    return settings_from_mapping({
        "mailbox": {
            "host": "127.0.0.1", "username": TEAM, "auth": "oauth2",
            "oauth2_provider": "google", "oauth2_client_id": CLIENT_ID,
            "oauth2_client_secret_env": SECRET_ENV, "oauth2_refresh_token_env": REFRESH_ENV,
            "oauth2_token_url": idp.token_url,
        },
        # [smtp] reuses [mailbox]'s OAuth2 client and refresh token
        "smtp": {"host": "127.0.0.1", "port": server.port, "security": "none",
                 "username": TEAM, "from_address": TEAM, "auth": "oauth2", **smtp},
    })


async def _send_one(settings: Settings) -> str:
    assert settings.smtp is not None
    async with SmtpTransport(settings.smtp) as transport:
        outcome = await transport.send(mailgen.message("over oauth"), TEAM, ["acme@acme.test"])
    return outcome.status


def test_smtp_xoauth2_sends_the_exact_sasl_string(
    idp: OAuthProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OAuthSmtpServer(idp) as server:
        settings = smtp_settings(idp, server, monkeypatch)
        assert asyncio.run(_send_one(settings)) == "sent"
    [login] = server.logins
    assert login.mechanism == "XOAUTH2" and login.accepted
    assert login.raw == xoauth2_string(TEAM, idp.issued[0]).encode()
    assert len(server.messages) == 1 and server.messages[0][0] == TEAM
    # IMAP and SMTP share one token source (one refresh for both)
    assert settings.mailbox is not None and settings.smtp is not None
    assert token_source(settings.smtp) is token_source(settings.mailbox)


def test_smtp_refused_token_is_refreshed_once(
    idp: OAuthProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    idp.valid_for = 0.5
    with OAuthSmtpServer(idp) as server:
        settings = smtp_settings(idp, server, monkeypatch)
        assert asyncio.run(_send_one(settings)) == "sent"
        time.sleep(0.7)
        assert asyncio.run(_send_one(settings)) == "sent"
    assert [login.accepted for login in server.logins] == [True, False, True]
    assert idp.state.grants["refresh_token"] == 2


def test_smtp_oauthbearer(idp: OAuthProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    with OAuthSmtpServer(idp) as server:
        settings = smtp_settings(idp, server, monkeypatch, oauth2_mechanism="oauthbearer")
        assert asyncio.run(_send_one(settings)) == "sent"
    [login] = server.logins
    assert login.mechanism == "OAUTHBEARER" and login.accepted
    assert login.raw == oauthbearer_string(TEAM, idp.issued[0], "127.0.0.1", server.port).encode()


def test_smtp_token_trouble_is_a_transient_delivery_error(
    idp: OAuthProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OAuthSmtpServer(idp) as server:
        settings = smtp_settings(idp, server, monkeypatch)
        idp.state.refresh_tokens.clear()  # consent withdrawn
        with pytest.raises(DeliveryError) as info:
            asyncio.run(_send_one(settings))
    assert info.value.transient and "invalid_grant" in str(info.value)
    assert server.logins == []


def test_smtp_with_an_unreachable_microsoft_authority_is_transient(
    idp: OAuthProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.rig.dovecot import free_port

    with OAuthSmtpServer(idp) as server:
        settings = settings_from_mapping({"smtp": {
            "host": "127.0.0.1", "port": server.port, "security": "none", "username": TEAM,
            "from_address": TEAM, "auth": "oauth2", "oauth2_provider": "microsoft",
            "oauth2_client_id": CLIENT_ID, "oauth2_tenant": "t",
            "oauth2_authority": f"https://127.0.0.1:{free_port()}/t",
            "oauth2_flow": "client_credentials", "oauth2_client_secret_env": SECRET_ENV,
        }})
        with pytest.raises(DeliveryError) as info:
            asyncio.run(_send_one(settings))
    assert info.value.transient and "authority" in str(info.value)

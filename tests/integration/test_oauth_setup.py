"""`saygoodbye auth google|microsoft` against the loopback identity provider.

The person in front of the browser is played by the test: it reads what the
command prints, "consents" at the provider, and hands back what a browser
would. The stored refresh token is then used for a real IMAP login.
"""

from __future__ import annotations

import stat
import threading
import urllib.request
import webbrowser
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from service.auth_setup import MANUAL_REDIRECT, AuthSetupError, run_auth_setup
from service.cli import main
from service.config import Settings, settings_from_mapping
from service.mail.auth import reset_token_sources
from service.mail.imap import connect
from tests.rig.fixtures import _require_dovecot
from tests.rig.oauth import OAuthDovecot, OAuthProvider

pytestmark = pytest.mark.integration

TEAM = "team@northwind.test"
CLIENT_ID = "desktop-client.apps.example"
CLIENT_SECRET = "desktop-client-secret"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthProvider]:
    with OAuthProvider(tmp_path_factory.mktemp("idp")) as idp:
        yield idp


@pytest.fixture(scope="module")
def server(provider: OAuthProvider) -> Iterator[OAuthDovecot]:
    _require_dovecot()
    with OAuthDovecot(provider.introspection_url) as dovecot:
        dovecot.add_user(TEAM, "unused")
        yield dovecot


@pytest.fixture
def idp(provider: OAuthProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthProvider]:
    provider.state = type(provider.state)()
    provider.add_client(CLIENT_ID, CLIENT_SECRET)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(provider.cert_path))
    monkeypatch.setenv("SG_TEST_DESKTOP_SECRET", CLIENT_SECRET)
    reset_token_sources()
    yield provider
    reset_token_sources()


def settings_for(idp: OAuthProvider, server: OAuthDovecot, token_file: Path,
                 provider: str) -> Settings:
    mailbox: dict[str, Any] = {
        "host": server.host, "port": server.imap_port, "security": "none", "username": TEAM,
        "auth": "oauth2", "oauth2_provider": provider, "oauth2_client_id": CLIENT_ID,
        "oauth2_refresh_token_file": str(token_file),
    }
    if provider == "google":
        mailbox.update(oauth2_client_secret_env="SG_TEST_DESKTOP_SECRET",
                       oauth2_token_url=idp.token_url)
    else:
        mailbox.update(oauth2_tenant=idp.tenant, oauth2_authority=idp.authority)
    return settings_from_mapping({"mailbox": mailbox})


def test_google_manual_code_paste(
    idp: OAuthProvider, server: OAuthDovecot, tmp_path: Path
) -> None:
    token_file = tmp_path / "state" / "google-refresh-token"
    settings = settings_for(idp, server, token_file, "google")
    printed: list[str] = []

    def browser_user(prompt: str) -> str:
        url = next(line.strip() for line in printed if "accounts.google.com" in line)
        query = parse_qs(urlparse(url).query)
        assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]
        assert query["login_hint"] == [TEAM]
        assert query["redirect_uri"] == [MANUAL_REDIRECT]
        code = idp.issue_code(TEAM)  # the user consents at Google
        return f"{MANUAL_REDIRECT}?state={query['state'][0]}&code={code}&scope=x"

    stored = run_auth_setup(settings, "google", manual=True, out=printed.append,
                            ask=browser_user)
    assert stored == token_file
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() in idp.state.refresh_tokens
    assert CLIENT_SECRET not in "\n".join(printed)
    connect(settings.mailbox).logout()  # the daemon can now log in


def test_google_manual_paste_of_another_sign_in_is_refused(
    idp: OAuthProvider, server: OAuthDovecot, tmp_path: Path
) -> None:
    settings = settings_for(idp, server, tmp_path / "rt", "google")
    with pytest.raises(AuthSetupError, match="another sign-in"):
        run_auth_setup(settings, "google", manual=True, out=lambda _: None,
                       ask=lambda _: f"{MANUAL_REDIRECT}?state=forged&code=c")
    assert not (tmp_path / "rt").exists()


class _Browser(webbrowser.BaseBrowser):
    """Consents and follows the redirect to the command's loopback server."""

    def __init__(self, idp: OAuthProvider) -> None:
        super().__init__("sg-test-browser")
        self.idp = idp

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        query = parse_qs(urlparse(url).query)
        target = (f"{query['redirect_uri'][0]}?state={query['state'][0]}"
                  f"&code={self.idp.issue_code(TEAM)}")
        threading.Thread(target=lambda: urllib.request.urlopen(target, timeout=10).read(),
                         daemon=True).start()
        return True


def test_google_loopback_redirect(
    idp: OAuthProvider, server: OAuthDovecot, tmp_path: Path
) -> None:
    from service.auth_setup import setup_google

    webbrowser.register("sg-test-browser", None, _Browser(idp))
    token_file = tmp_path / "google-refresh-token"
    settings = settings_for(idp, server, token_file, "google")
    setup_google(settings.mailbox, browser="sg-test-browser", out=lambda _: None)
    assert token_file.read_text().strip() in idp.state.refresh_tokens
    connect(settings.mailbox).logout()


def test_microsoft_device_code(
    idp: OAuthProvider, server: OAuthDovecot, tmp_path: Path
) -> None:
    idp.add_client(CLIENT_ID, None)  # public client ("Allow public client flows")
    token_file = tmp_path / "m365-refresh-token"
    settings = settings_for(idp, server, token_file, "microsoft")
    printed: list[str] = []

    def out(line: str) -> None:
        printed.append(line)
        if "devicelogin" in line:  # the user types the code on their phone and consents
            idp.approve_device_code(TEAM)

    run_auth_setup(settings, "microsoft", out=out)
    assert any("ABCD-EFGH" in line for line in printed)
    assert token_file.read_text().strip() in idp.state.refresh_tokens
    connect(settings.mailbox).logout()


def test_cli_refuses_a_config_without_oauth2(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[mailbox]\nhost = "imap.gmail.com"\nusername = "u@x.test"\n'
                      'password_env = "X"\n')
    assert main(["--config", str(config), "auth", "google"]) == 2
    assert 'auth = "oauth2"' in capsys.readouterr().err

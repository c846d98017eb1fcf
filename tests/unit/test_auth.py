"""OAuth2 pieces that need no server: SASL strings, token caching, config rules, secrets."""

from __future__ import annotations

import base64
import stat
import threading
import time
from pathlib import Path

import pytest

from service.config import settings_from_mapping
from service.errors import ConfigError
from service.mail.auth import (
    DEFAULT_SCOPES,
    _CachingSource,
    _error_code,
    oauthbearer_string,
    password_for,
    write_secret_file,
    xoauth2_string,
)


def test_xoauth2_string_matches_googles_documented_example() -> None:
    # https://developers.google.com/gmail/imap/xoauth2-protocol (before base64)
    raw = xoauth2_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    assert raw == ("user=someuser@example.com\x01auth=Bearer "
                   "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01")
    assert base64.b64encode(raw.encode()).decode() == (
        "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
        "YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
    )


def test_oauthbearer_string_follows_rfc7628_and_escapes_the_identity() -> None:
    assert oauthbearer_string("user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==",
                              "server.example.com", 143) == (
        "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    )
    assert oauthbearer_string("a,b=c", "t").startswith("n,a=a=2Cb=3Dc,\x01auth=Bearer t")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Counting(_CachingSource):
    """Hands out tok-1, tok-2, ... each living `lifetime` seconds."""

    def __init__(self, lifetime: float, clock: _Clock, delay: float = 0.0) -> None:
        super().__init__(clock=clock)
        self.lifetime = lifetime
        self.delay = delay

    def _fetch(self) -> tuple[str, float]:
        time.sleep(self.delay)
        return f"tok-{self.fetches + 1}", self.lifetime


def test_token_is_cached_until_the_refresh_margin() -> None:
    clock = _Clock()
    source = _Counting(3600, clock)
    assert source.token() == "tok-1"
    clock.now += 3600 - 301
    assert source.token() == "tok-1"
    clock.now += 2  # under five minutes left: refresh before it expires
    assert source.token() == "tok-2"
    assert source.fetches == 2


def test_short_lived_tokens_are_refreshed_at_half_life() -> None:
    clock = _Clock()
    source = _Counting(60, clock)
    source.token()
    clock.now += 29
    assert source.token() == "tok-1"
    clock.now += 2
    assert source.token() == "tok-2"


def test_invalidate_forces_a_fetch() -> None:
    clock = _Clock()
    source = _Counting(3600, clock)
    source.token()
    source.invalidate()
    assert source.token() == "tok-2"


def test_concurrent_callers_share_one_fetch() -> None:
    source = _Counting(3600, _Clock(), delay=0.05)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(source.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["tok-1"] * 8 and source.fetches == 1


def test_missing_lifetime_means_an_hour() -> None:
    clock = _Clock()

    class NoExpiry(_CachingSource):
        def _fetch(self) -> tuple[str, float]:
            return "t", 0

    source = NoExpiry(clock=clock)
    source.token()
    clock.now += 3000
    source.token()
    assert source.fetches == 1


def test_repr_never_shows_tokens() -> None:
    source = _Counting(3600, _Clock())
    source.token()
    assert "tok-1" not in repr(source)


def test_microsoft_default_scopes_avoid_msal_reserved_ones() -> None:
    reserved = {"openid", "profile", "offline_access"}
    for (provider, _flow), scopes in DEFAULT_SCOPES.items():
        if provider == "microsoft":
            assert not reserved & set(scopes)


def test_error_code_never_returns_the_body() -> None:
    assert _error_code({"error": "invalid_grant", "refresh_token": "x"}, "") == "invalid_grant"
    assert _error_code(None, "invalid_grant: Token has been expired or revoked.") == "invalid_grant"
    assert _error_code(None, "secret-stuff") == "unknown_error"


def test_write_secret_file_is_owner_only_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "creds" / "refresh-token"
    write_secret_file(path, "one")
    write_secret_file(path, "two")
    assert path.read_text() == "two\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["refresh-token"]  # no temp left


# -- configuration ---------------------------------------------------------------------------

BASE = {"host": "imap.gmail.com", "username": "team@agency.example"}


def _mailbox(**keys: object) -> dict[str, object]:
    return {"mailbox": {**BASE, **keys}}


def test_google_oauth2_config_needs_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_mapping(_mailbox(
        auth="oauth2", oauth2_provider="google", oauth2_client_id="id.apps",
        oauth2_client_secret_env="G_SECRET", oauth2_refresh_token_file="google-refresh-token",
    ))
    assert settings.mailbox is not None
    assert password_for(settings.mailbox) is None
    monkeypatch.setenv("G_SECRET", "s")
    assert settings.mailbox.oauth2_client_secret() == "s"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"auth": "oauth2"}, "oauth2_provider"),
        ({"auth": "oauth2", "oauth2_provider": "google"}, "oauth2_client_id"),
        ({"auth": "oauth2", "oauth2_provider": "google", "oauth2_client_id": "x"},
         "oauth2_refresh_token_env"),
        ({"auth": "oauth2", "oauth2_provider": "google", "oauth2_client_id": "x",
          "oauth2_flow": "client_credentials", "oauth2_client_secret_env": "S"},
         "not available for Google"),
        ({"auth": "oauth2", "oauth2_provider": "microsoft", "oauth2_client_id": "x",
          "oauth2_flow": "client_credentials", "oauth2_client_secret_env": "S",
          "oauth2_tenant": "common"}, "oauth2_tenant"),
        ({"auth": "oauth2", "oauth2_provider": "generic", "oauth2_client_id": "x",
          "oauth2_refresh_token_env": "R"}, "oauth2_token_url"),
        ({"oauth2_refresh_token_env": "A", "oauth2_refresh_token_file": "b"}, "only one"),
    ],
)
def test_incomplete_oauth2_config_names_the_key(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(_mailbox(**keys), path="config.toml")
    assert message in str(info.value) and "mailbox" in str(info.value)


def test_inline_refresh_token_is_refused_and_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"mailbox": {**BASE, "refresh_token": "1//0gSECRETSECRET"}})
    assert "refresh_token_env" in str(info.value) and "SECRET" not in str(info.value)


def test_smtp_reuses_the_mailbox_oauth2_keys_unless_it_has_its_own() -> None:
    mailbox = {**BASE, "auth": "oauth2", "oauth2_provider": "microsoft",
               "oauth2_client_id": "app", "oauth2_tenant": "contoso.example",
               "oauth2_refresh_token_file": "m365"}
    settings = settings_from_mapping({"mailbox": mailbox, "smtp": {
        "host": "smtp.office365.com", "port": 587, "security": "starttls",
        "username": "team@agency.example", "from_address": "team@agency.example",
        "auth": "oauth2"}})
    assert settings.smtp is not None
    assert settings.smtp.oauth2_provider == "microsoft"
    assert settings.smtp.oauth2_refresh_token_file == Path("m365")
    own = settings_from_mapping({"mailbox": mailbox, "smtp": {
        "host": "smtp.gmail.com", "from_address": "x@y", "username": "x@y", "auth": "oauth2",
        "oauth2_provider": "google", "oauth2_client_id": "g", "oauth2_refresh_token_env": "R"}})
    assert own.smtp is not None and own.smtp.oauth2_provider == "google"
    assert own.smtp.oauth2_tenant is None


def test_smtp_oauth2_needs_a_username() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"smtp": {
            "host": "smtp.gmail.com", "from_address": "x@y", "auth": "oauth2",
            "oauth2_provider": "google", "oauth2_client_id": "g",
            "oauth2_refresh_token_env": "R"}})
    assert "smtp" in str(info.value) and "username" in str(info.value)

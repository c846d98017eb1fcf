"""Logging in to the mail servers: a password, or an OAuth2 access token.

Microsoft 365 no longer takes passwords over IMAP, and Google Workspace
prefers OAuth2, so a long-lived credential (a refresh token, or a client
secret for a Microsoft service principal) is exchanged for short-lived access
tokens with the providers' own libraries (google-auth, msal), never with
hand-made HTTP. Tokens are refreshed before they expire and again when a
server refuses one (revoked early, clock skew). The access token is sent with
SASL XOAUTH2 or OAUTHBEARER (RFC 7628).

No secret (refresh token, client secret, access token) is ever logged or put
in an exception message: errors name the provider, the endpoint host and the
OAuth2 error code only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from ..errors import MailboxError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SCOPES",
    "GoogleTokenSource",
    "MicrosoftTokenSource",
    "TokenError",
    "TokenSource",
    "imap_login",
    "oauthbearer_string",
    "password_for",
    "smtp_login",
    "token_source",
    "write_secret_file",
    "xoauth2_string",
]

GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
# Per provider and flow. Microsoft's delegated scopes name both protocols so one
# refresh token serves IMAP and SMTP; msal adds offline_access by itself.
DEFAULT_SCOPES: dict[tuple[str, str], tuple[str, ...]] = {
    ("google", "refresh_token"): ("https://mail.google.com/",),
    ("microsoft", "refresh_token"): (
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
    ),
    ("microsoft", "client_credentials"): ("https://outlook.office365.com/.default",),
}
# Refresh when this much of a token's life is left (or half its life, if shorter).
REFRESH_MARGIN_SECONDS = 300.0
# When a provider does not say how long a token lives.
DEFAULT_LIFETIME_SECONDS = 3600.0
# Seconds to wait for a token endpoint.
TOKEN_TIMEOUT_SECONDS = 30
# OAuth2 error codes after which retrying with the same credential cannot help.
_PERMANENT_ERRORS = {
    "invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope",
    "unsupported_grant_type", "invalid_request", "access_denied",
}


class TokenError(MailboxError):
    """No access token could be obtained.

    ``transient`` is True when the token endpoint could not be reached or
    answered with a server error (retry later), False when the credential
    itself was refused (revoked or expired refresh token, wrong client secret,
    missing consent): run ``saygoodbye auth`` again.
    """


# -- SASL strings (pure) ---------------------------------------------------------


def xoauth2_string(user: str, access_token: str) -> str:
    """The XOAUTH2 initial response (Google, Microsoft), before base64."""
    return f"user={user}\x01auth=Bearer {access_token}\x01\x01"


def oauthbearer_string(
    user: str, access_token: str, host: str | None = None, port: int | None = None
) -> str:
    """The OAUTHBEARER (RFC 7628) initial response, before base64.

    The authorization identity is escaped as RFC 5801 requires (',' and '=').
    """
    identity = user.replace("=", "=3D").replace(",", "=2C")
    parts = [f"n,a={identity},"]
    if host:
        parts.append(f"host={host}")
    if port:
        parts.append(f"port={port}")
    parts.append(f"auth=Bearer {access_token}")
    return "\x01".join(parts) + "\x01\x01"


# -- token sources ----------------------------------------------------------------


class TokenSource(Protocol):
    """Hands out a valid access token; shared by every connection of a process."""

    def token(self) -> str:
        """A token with some life left, fetched anew when needed (blocking)."""
        ...

    def invalidate(self) -> None:
        """The server refused the current token: the next token() fetches a new one."""
        ...


@dataclass
class _Cached:
    value: str
    expires_at: float  # time.monotonic()
    lifetime: float


class _CachingSource:
    """Caching, locking and expiry for every provider; subclasses only fetch."""

    description = "OAuth2"

    def __init__(
        self,
        *,
        margin: float = REFRESH_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.margin = margin
        self.clock = clock
        self.fetches = 0
        self._cached: _Cached | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            cached = self._cached
            if cached is not None:
                left = cached.expires_at - self.clock()
                if left > min(self.margin, cached.lifetime / 2):
                    return cached.value
            value, lifetime = self._fetch()
            self.fetches += 1
            lifetime = lifetime if lifetime and lifetime > 0 else DEFAULT_LIFETIME_SECONDS
            self._cached = _Cached(value, self.clock() + lifetime, lifetime)
            log.info("event=oauth2_token_refreshed provider=%s lifetime_s=%d",
                     self.description, int(lifetime))
            return value

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def _fetch(self) -> tuple[str, float]:
        raise NotImplementedError

    def __repr__(self) -> str:  # never the tokens
        return f"{type(self).__name__}({self.description})"


def _secret_file_writer(path: Path | None) -> Callable[[str], None] | None:
    """Persist a rotated refresh token where it was read from, when that is a file."""
    if path is None:
        return None
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if not path.is_absolute() and credentials:
        path = Path(credentials) / path
    warned = False

    def write(value: str) -> None:
        nonlocal warned
        try:
            write_secret_file(path, value)
        except OSError as exc:
            if not warned:  # e.g. a read-only systemd credential: keep it in memory
                log.warning("event=oauth2_refresh_token_not_saved file=%s error=%s",
                            path, exc.strerror)
                warned = True

    return write


def write_secret_file(path: Path, value: str) -> None:
    """Write a secret atomically, readable by its owner only (0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _host(url: str) -> str:
    return urlparse(url).netloc or url


class GoogleTokenSource(_CachingSource):
    """Refresh-token grant with google-auth (Google, and any RFC 6749 server)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str | None,
        refresh_token: str,
        token_url: str = GOOGLE_TOKEN_URL,
        scopes: Sequence[str] = (),
        on_rotated: Callable[[str], None] | None = None,
        provider: str = "google",
        margin: float = REFRESH_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(margin=margin, clock=clock)
        from google.oauth2.credentials import Credentials

        self.description = f"{provider}@{_host(token_url)}"
        self.token_url = token_url
        self.on_rotated = on_rotated
        self._credentials = Credentials(
            token=None,
            refresh_token=refresh_token,
            token_uri=token_url,
            client_id=client_id,
            client_secret=client_secret,
            scopes=list(scopes) or None,
        )

    def _fetch(self) -> tuple[str, float]:
        from google.auth import exceptions
        from google.auth.transport.requests import Request

        creds = self._credentials
        before = creds.refresh_token
        # google-auth waits 120 s by default; a daemon's login should not
        request = functools.partial(Request(), timeout=TOKEN_TIMEOUT_SECONDS)
        try:
            creds.refresh(request)
        except exceptions.RefreshError as exc:
            code = _error_code(exc.args[1] if len(exc.args) > 1 else None, str(exc))
            raise TokenError(
                f"{self.description}: token refresh refused ({code}); "
                "run `saygoodbye auth` again if the consent was withdrawn",
                transient=bool(getattr(exc, "retryable", False)) or code == "server_error"
                or code not in _PERMANENT_ERRORS,
            ) from None
        except exceptions.TransportError as exc:
            raise TokenError(
                f"{self.description}: token endpoint unreachable ({type(exc).__name__})",
                transient=True,
            ) from None
        if not creds.token:
            raise TokenError(f"{self.description}: no access token in the answer",
                             transient=False)
        if creds.refresh_token and creds.refresh_token != before and self.on_rotated:
            self.on_rotated(creds.refresh_token)
        lifetime = DEFAULT_LIFETIME_SECONDS
        if creds.expiry is not None:  # naive UTC in google-auth
            expiry = creds.expiry.replace(tzinfo=UTC)
            lifetime = (expiry - datetime.now(UTC)).total_seconds()
        return str(creds.token), lifetime


def _error_code(response: Any, text: str) -> str:
    """The OAuth2 'error' code from a token endpoint answer, never the raw body."""
    if isinstance(response, dict) and isinstance(response.get("error"), str):
        return response["error"]
    for code in sorted(_PERMANENT_ERRORS | {"server_error", "temporarily_unavailable"}):
        if code in text:
            return code
    return "unknown_error"


class MicrosoftTokenSource(_CachingSource):
    """Microsoft identity platform with msal: a delegated refresh token, or an app's secret.

    ``client_credentials`` is the service-principal flow (the app is granted
    access to the mailbox in Exchange Online); ``refresh_token`` is a user's
    consent given once with ``saygoodbye auth microsoft``. Microsoft rotates
    refresh tokens: the newest is written back to the refresh token file.
    """

    def __init__(
        self,
        *,
        client_id: str,
        flow: str,
        tenant: str | None,
        client_secret: str | None = None,
        refresh_token: str | None = None,
        authority: str | None = None,
        scopes: Sequence[str] = (),
        on_rotated: Callable[[str], None] | None = None,
        margin: float = REFRESH_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        http_client: Any = None,
    ) -> None:
        super().__init__(margin=margin, clock=clock)
        import msal

        self._msal = msal
        custom = authority is not None
        authority = (authority or f"{MICROSOFT_AUTHORITY}/{tenant or 'organizations'}").rstrip("/")
        self.description = f"microsoft@{_host(authority)}"
        self.flow = flow
        self.scopes = list(scopes) or list(DEFAULT_SCOPES[("microsoft", flow)])
        self._refresh_token = refresh_token
        self.on_rotated = on_rotated
        options: dict[str, Any] = {"authority": authority, "timeout": TOKEN_TIMEOUT_SECONDS}
        if custom:  # sovereign clouds are known to msal; anything else: no discovery call
            options["instance_discovery"] = False
        if http_client is not None:
            options["http_client"] = http_client
        try:
            if client_secret is not None:
                self._app: Any = msal.ConfidentialClientApplication(
                    client_id, client_credential=client_secret, **options
                )
            else:
                self._app = msal.PublicClientApplication(client_id, **options)
        except ValueError as exc:  # malformed authority or tenant
            raise TokenError(f"{self.description}: {exc}", transient=False) from None
        except Exception as exc:  # authority discovery needs the network
            raise TokenError(
                f"{self.description}: cannot reach the authority ({type(exc).__name__})",
                transient=True,
            ) from None

    def _fetch(self) -> tuple[str, float]:
        # our own cache decides when to refresh: msal's would hand back the token
        # the server just refused
        self._app.token_cache = self._msal.TokenCache()
        try:
            if self.flow == "client_credentials":
                result = self._app.acquire_token_for_client(scopes=self.scopes)
            else:
                if not self._refresh_token:
                    raise TokenError(f"{self.description}: no refresh token", transient=False)
                result = self._app.acquire_token_by_refresh_token(
                    self._refresh_token, scopes=self.scopes
                )
        except TokenError:
            raise
        except Exception as exc:  # requests' network errors
            raise TokenError(
                f"{self.description}: token endpoint unreachable ({type(exc).__name__})",
                transient=True,
            ) from None
        if not isinstance(result, dict) or "access_token" not in result:
            code = _error_code(result, "")
            raise TokenError(
                f"{self.description}: token request refused ({code})"
                + (" - run `saygoodbye auth microsoft` again" if code == "invalid_grant" else ""),
                transient=code not in _PERMANENT_ERRORS,
            )
        rotated = result.get("refresh_token")
        if rotated and rotated != self._refresh_token:
            self._refresh_token = rotated
            if self.on_rotated:
                self.on_rotated(rotated)
        return str(result["access_token"]), float(result.get("expires_in") or 0)


# -- from the configuration ---------------------------------------------------------

_SOURCES: dict[tuple[Any, ...], TokenSource] = {}
_SOURCES_LOCK = threading.Lock()


def _source_key(section: Any) -> tuple[Any, ...]:
    return tuple(
        str(getattr(section, name, None))
        for name in (
            "oauth2_provider", "oauth2_flow", "oauth2_client_id", "oauth2_tenant",
            "oauth2_authority", "oauth2_token_url", "oauth2_scopes",
            "oauth2_refresh_token_env", "oauth2_refresh_token_file",
            "oauth2_client_secret_env", "oauth2_client_secret_file",
        )
    )


def build_token_source(section: Any) -> TokenSource:
    """A new token source for a [mailbox] or [smtp] section with auth = "oauth2"."""
    provider = section.oauth2_provider
    flow = section.oauth2_flow
    scopes = tuple(section.oauth2_scopes) or DEFAULT_SCOPES.get((provider, flow), ())
    secret = section.oauth2_client_secret()
    if provider == "microsoft":
        return MicrosoftTokenSource(
            client_id=section.oauth2_client_id,
            flow=flow,
            tenant=section.oauth2_tenant,
            client_secret=secret,
            refresh_token=section.oauth2_refresh_token() if flow == "refresh_token" else None,
            authority=section.oauth2_authority,
            scopes=scopes,
            on_rotated=_secret_file_writer(section.oauth2_refresh_token_file),
        )
    if flow == "client_credentials":
        return _GenericClientCredentials(
            client_id=section.oauth2_client_id,
            client_secret=secret or "",
            token_url=section.oauth2_token_url,
            scopes=scopes,
        )
    return GoogleTokenSource(
        client_id=section.oauth2_client_id,
        client_secret=secret,
        refresh_token=section.oauth2_refresh_token() or "",
        token_url=section.oauth2_token_url or GOOGLE_TOKEN_URL,
        scopes=scopes,
        on_rotated=_secret_file_writer(section.oauth2_refresh_token_file),
        provider=provider,
    )


class _GenericClientCredentials(_CachingSource):
    """RFC 6749 client-credentials grant for a generic provider (requests-oauthlib)."""

    def __init__(self, *, client_id: str, client_secret: str, token_url: str,
                 scopes: Sequence[str]) -> None:
        super().__init__()
        self.description = f"generic@{_host(token_url)}"
        self.client_id, self.client_secret = client_id, client_secret
        self.token_url, self.scopes = token_url, list(scopes)

    def _fetch(self) -> tuple[str, float]:
        from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error
        from requests import RequestException
        from requests_oauthlib import OAuth2Session

        session = OAuth2Session(client=BackendApplicationClient(client_id=self.client_id),
                                scope=self.scopes or None)
        try:
            answer = session.fetch_token(self.token_url, client_id=self.client_id,
                                         client_secret=self.client_secret,
                                         timeout=TOKEN_TIMEOUT_SECONDS)
        except OAuth2Error as exc:
            raise TokenError(f"{self.description}: token request refused ({exc.error})",
                             transient=exc.error not in _PERMANENT_ERRORS) from None
        except RequestException as exc:
            raise TokenError(
                f"{self.description}: token endpoint unreachable ({type(exc).__name__})",
                transient=True,
            ) from None
        return str(answer["access_token"]), float(answer.get("expires_in") or 0)


def token_source(section: Any) -> TokenSource:
    """The process-wide token source for this section (IMAP and SMTP share one)."""
    key = _source_key(section)
    with _SOURCES_LOCK:
        source = _SOURCES.get(key)
        if source is None:
            source = _SOURCES[key] = build_token_source(section)
        return source


def reset_token_sources() -> None:
    """Forget every cached token source (tests; a reload after `saygoodbye auth`)."""
    with _SOURCES_LOCK:
        _SOURCES.clear()


def _uses_oauth2(section: Any) -> bool:
    return getattr(section, "auth", "password") == "oauth2"


def password_for(section: Any, password: str | None = None) -> str | None:
    """The password to log in with, or None when the section uses OAuth2."""
    if password is not None or _uses_oauth2(section):
        return password
    return section.password()  # type: ignore[no-any-return]


# -- logging in ---------------------------------------------------------------------------


def imap_login(client: Any, section: Any, password: str | None = None) -> None:
    """Log an IMAPClient in as the section says (password, XOAUTH2 or OAUTHBEARER).

    A refused token is replaced once by a freshly fetched one before the
    refusal (imapclient's LoginError) is passed on.
    """
    from imapclient.exceptions import LoginError

    if not _uses_oauth2(section) or password is not None:
        secret = password if password is not None else section.password()
        client.login(section.username, secret)
        return
    source = token_source(section)
    mechanism = getattr(section, "oauth2_mechanism", "xoauth2")
    for attempt in (1, 2):
        access = source.token()
        try:
            if mechanism == "oauthbearer":
                client.oauthbearer_login(section.username, access)
            else:
                client.oauth2_login(section.username, access)
            return
        except LoginError:
            source.invalidate()
            if attempt == 2:
                raise
            log.info("event=oauth2_token_refused protocol=imap action=refresh")


async def smtp_login(smtp: Any, section: Any) -> None:
    """Authenticate an aiosmtplib.SMTP session as the section says.

    Token trouble is raised as aiosmtplib.SMTPException so the transport
    treats it like any other failed session (transient, before DATA).
    """
    import aiosmtplib

    if not _uses_oauth2(section):
        await smtp.login(section.username, section.password() or "")
        return
    try:
        source = token_source(section)  # msal may reach its authority here
    except TokenError as exc:
        raise aiosmtplib.SMTPException(str(exc)) from None
    for attempt in (1, 2):
        try:
            access = await asyncio.to_thread(source.token)
        except TokenError as exc:
            raise aiosmtplib.SMTPException(str(exc)) from None
        try:
            if getattr(section, "oauth2_mechanism", "xoauth2") == "oauthbearer":
                await _smtp_oauthbearer(smtp, section, access)
            else:
                await smtp.auth_xoauth2(section.username, access)
            return
        except aiosmtplib.SMTPAuthenticationError:
            source.invalidate()
            if attempt == 2:
                raise
            log.info("event=oauth2_token_refused protocol=smtp action=refresh")


async def _smtp_oauthbearer(smtp: Any, section: Any, access: str) -> None:
    import base64

    import aiosmtplib

    await smtp._ehlo_or_helo_if_needed()
    raw = oauthbearer_string(section.username, access, section.host, section.port)
    encoded = base64.b64encode(raw.encode()).decode()
    response = await smtp.execute_command(b"AUTH", b"OAUTHBEARER", encoded.encode())
    if response.code == 334:  # error details as a challenge; RFC 7628 says answer ^A
        response = await smtp.execute_command(base64.b64encode(b"\x01"))
    if response.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)

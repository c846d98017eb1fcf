"""`saygoodbye auth google|microsoft`: the one-time consent that yields a refresh token.

The daemon never sees a browser: a person runs this once, consents as the
shared mailbox's user (or an admin), and the refresh token is written where
the config says (``oauth2_refresh_token_file``, mode 0600). Google uses the
installed-app flow (a loopback redirect, or pasting the redirected address on
a machine without a browser); Microsoft uses the device-code flow (a code
typed at microsoft.com/devicelogin from any device). A Microsoft service
principal (``oauth2_flow = "client_credentials"``) needs no refresh token:
the command prints the Exchange Online steps and checks a token can be had.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from .config import Settings
from .errors import ConfigError, SaygoodbyeError
from .mail.auth import (
    DEFAULT_SCOPES,
    GOOGLE_TOKEN_URL,
    MICROSOFT_AUTHORITY,
    build_token_source,
    write_secret_file,
)

__all__ = ["AuthSetupError", "run_auth_setup", "setup_google", "setup_microsoft"]

GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/auth"
# For --manual: nothing listens here, so the browser stops on an error page
# whose address (with the code) the user copies back.
MANUAL_REDIRECT = "http://127.0.0.1:1/"

Out = Callable[[str], None]
Ask = Callable[[str], str]


class AuthSetupError(SaygoodbyeError):
    """The consent was not given, or the token could not be obtained or stored."""


def _destination(section: Any, output: Path | None, key: str) -> Path:
    """Where the refresh token goes: --output, else the section's refresh token file."""
    path = output or section.oauth2_refresh_token_file
    if path is None:
        raise ConfigError(
            "set oauth2_refresh_token_file (where the refresh token will be stored) "
            "or pass --output FILE",
            key=f"{key}.oauth2_refresh_token_file",
        )
    path = Path(path)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if not path.is_absolute() and credentials:
        path = Path(credentials) / path
    return path


def _store(path: Path, token: str | None, out: Out) -> Path:
    if not token:
        raise AuthSetupError(
            "the provider returned no refresh token (Google: remove the app's access at "
            "myaccount.google.com/permissions and run this again; Microsoft: the app "
            "registration must allow public client flows)"
        )
    try:
        write_secret_file(path, token)
    except OSError as exc:
        raise AuthSetupError(f"cannot write {path}: {exc.strerror}") from None
    out(f"Refresh token stored in {path.resolve()} (mode 0600).")
    out("The daemon reads it at start; restart it if it is running.")
    return path


def setup_google(
    section: Any,
    *,
    key: str = "mailbox",
    output: Path | None = None,
    manual: bool = False,
    open_browser: bool = True,
    browser: str | None = None,
    out: Out = print,
    ask: Ask = input,
) -> Path:
    """Installed-app consent with google-auth-oauthlib; returns the token file."""
    from google_auth_oauthlib.flow import InstalledAppFlow

    destination = _destination(section, output, key)
    secret = section.oauth2_client_secret()
    if not section.oauth2_client_id or not secret:
        raise ConfigError(
            "Google needs oauth2_client_id and oauth2_client_secret_env/_file "
            "(an OAuth client of type 'Desktop app'; docs/providers.md)", key=key,
        )
    scopes = list(section.oauth2_scopes) or list(DEFAULT_SCOPES[("google", "refresh_token")])
    flow = InstalledAppFlow.from_client_config(
        {"installed": {
            "client_id": section.oauth2_client_id,
            "client_secret": secret,
            "auth_uri": GOOGLE_AUTH_URL,
            "token_uri": section.oauth2_token_url or GOOGLE_TOKEN_URL,
            "redirect_uris": ["http://localhost", "http://127.0.0.1"],
        }},
        scopes=scopes,
    )
    # offline + consent: Google returns a refresh token only with both
    options = {"access_type": "offline", "prompt": "consent", "login_hint": section.username}
    out(f"Signing in as {section.username} to grant saygoodbye access to its mail "
        f"(scopes: {' '.join(scopes)}).")
    try:
        if manual:
            flow.redirect_uri = MANUAL_REDIRECT
            url, state = flow.authorization_url(**options)
            out("1. Open this address in a browser (on any machine) and allow access:")
            out(f"   {url}")
            out("2. The browser then fails to load a page at 127.0.0.1. Copy the whole")
            out("   address from its address bar and paste it here.")
            answer = ask("Address (or just the code): ").strip()
            code = answer
            if answer.startswith("http"):
                query = parse_qs(urlparse(answer).query)
                if query.get("error"):
                    raise AuthSetupError(f"consent refused: {query['error'][0]}")
                if query.get("state", [state])[0] != state:
                    raise AuthSetupError("the pasted address belongs to another sign-in; "
                                         "start again")
                code = query.get("code", [""])[0]
            if not code:
                raise AuthSetupError("no authorization code in what was pasted")
            flow.fetch_token(code=code)
            credentials = flow.credentials
        else:
            credentials = flow.run_local_server(
                host="127.0.0.1", port=0, open_browser=open_browser, browser=browser,
                authorization_prompt_message=(
                    "Open this address in a browser on this machine and allow access:\n{url}"
                ),
                success_message="saygoodbye has its token; you can close this tab.",
                timeout_seconds=600,
                **options,
            )
    except AuthSetupError:
        raise
    except Exception as exc:  # oauthlib/requests errors carry no secrets, but keep it short
        raise AuthSetupError(f"Google sign-in failed: {type(exc).__name__}: {exc}") from None
    return _store(destination, credentials.refresh_token, out)


def setup_microsoft(
    section: Any,
    *,
    key: str = "mailbox",
    output: Path | None = None,
    out: Out = print,
) -> Path | None:
    """Device-code consent with msal (delegated), or a check of the app's access."""
    import msal

    if not section.oauth2_client_id:
        raise ConfigError("Microsoft needs oauth2_client_id (the app registration's "
                          "Application (client) ID; docs/providers.md)", key=key)
    if section.oauth2_flow == "client_credentials":
        out("Service principal (client credentials): no sign-in to store. In Exchange Online")
        out("PowerShell, once, as an admin (docs/providers.md has the details):")
        out(f"  New-ServicePrincipal -AppId {section.oauth2_client_id} "
            "-ObjectId <enterprise app object id>")
        out(f"  Add-MailboxPermission -Identity {section.username} -User <service principal id> "
            "-AccessRights FullAccess")
        out("Checking that a token can be obtained ...")
        build_token_source(section).token()
        out("OK: the app can get tokens for IMAP/SMTP.")
        return None
    destination = _destination(section, output, key)
    custom = section.oauth2_authority is not None
    authority = (section.oauth2_authority
                 or f"{MICROSOFT_AUTHORITY}/{section.oauth2_tenant or 'organizations'}")
    scopes = list(section.oauth2_scopes) or list(DEFAULT_SCOPES[("microsoft", "refresh_token")])
    options: dict[str, Any] = {"authority": authority.rstrip("/"), "timeout": 30}
    if custom:
        options["instance_discovery"] = False
    try:
        app = msal.PublicClientApplication(section.oauth2_client_id, **options)
        flow = app.initiate_device_flow(scopes=scopes)
        if "user_code" not in flow:
            raise AuthSetupError(
                f"Microsoft refused to start the sign-in: {flow.get('error', 'unknown error')} "
                "(is 'Allow public client flows' enabled on the app registration?)"
            )
        out(f"Sign in as {section.username} (or a user with access to it):")
        out(flow["message"])
        result = app.acquire_token_by_device_flow(flow)
    except AuthSetupError:
        raise
    except Exception as exc:
        raise AuthSetupError(f"Microsoft sign-in failed: {type(exc).__name__}") from None
    if "access_token" not in result:
        raise AuthSetupError(f"Microsoft sign-in failed: {result.get('error', 'unknown error')}")
    return _store(destination, result.get("refresh_token"), out)


def run_auth_setup(
    settings: Settings,
    provider: str,
    *,
    section: str = "mailbox",
    output: Path | None = None,
    manual: bool = False,
    open_browser: bool = True,
    out: Out = print,
    ask: Ask = input,
) -> Path | None:
    """The CLI use case: pick the section, check it names this provider, run its flow."""
    chosen = settings.mailbox if section == "mailbox" else settings.smtp
    path = str(settings.source_path) if settings.source_path else None
    if chosen is None:
        raise ConfigError(f"no [{section}] table", path=path, key=section)
    if chosen.auth != "oauth2" or chosen.oauth2_provider != provider:
        raise ConfigError(
            f"set auth = \"oauth2\" and oauth2_provider = \"{provider}\" first "
            "(docs/providers.md shows the whole table)", path=path, key=section,
        )
    if provider == "google":
        return setup_google(chosen, key=section, output=output, manual=manual,
                            open_browser=open_browser, out=out, ask=ask)
    return setup_microsoft(chosen, key=section, output=output, out=out)

"""An OAuth2 identity provider, a Dovecot that trusts it, and an XOAUTH2 SMTP server.

``OAuthProvider`` serves on loopback what Google's and Microsoft's endpoints
serve: a token endpoint (refresh-token, client-credentials, authorization-code
and device-code grants), Microsoft's OpenID discovery document and device-code
endpoint (over TLS, as msal insists on https), and an RFC 7662 token
introspection endpoint (plain HTTP) that ``OAuthDovecot`` asks about every
token it is shown, exactly as a production Dovecot ``oauth2`` passdb does.

Tokens can be made to die early on the server side (``valid_for``) while the
token endpoint still announces a long life, which is what a revoked token or a
skewed clock looks like to a client: the login is refused and the client
must refresh and try again.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import ssl
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from tests.rig.dovecot import Dovecot, free_port


@dataclass
class IssuedToken:
    username: str
    expires_at: float  # time.time(): when the server stops accepting it
    client_id: str
    grant: str
    revoked: bool = False


@dataclass
class _State:
    clients: dict[str, str | None] = field(default_factory=dict)  # id -> secret (None: public)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> username
    app_mailboxes: dict[str, str] = field(default_factory=dict)  # client id -> mailbox
    codes: dict[str, str] = field(default_factory=dict)  # authorization code -> username
    device_codes: dict[str, str] = field(default_factory=dict)  # device code -> username
    access: dict[str, IssuedToken] = field(default_factory=dict)
    grants: Counter[str] = field(default_factory=Counter)
    introspections: list[tuple[str, bool]] = field(default_factory=list)  # (mode, active)
    seen_secrets: list[str] = field(default_factory=list)  # client secrets presented
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_tls_files(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem doubles as the CA bundle)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        ), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return cert_path, key_path


class OAuthProvider:
    """The fake identity provider; use as a context manager.

    ``lifetime`` is what the token endpoint announces (expires_in);
    ``valid_for`` is how long introspection really accepts a token (default:
    the same). ``rotate`` issues a new refresh token on every refresh, as
    Microsoft does.
    """

    def __init__(self, folder: Path, *, lifetime: float = 3600.0,
                 valid_for: float | None = None, rotate: bool = False,
                 tenant: str = "contoso-tenant") -> None:
        self.lifetime = lifetime
        self.valid_for = valid_for
        self.rotate = rotate
        self.tenant = tenant
        self.state = _State()
        self.cert_path, self.key_path = make_tls_files(folder)
        self.http_port = free_port()
        self.https_port = free_port()
        self._servers: list[ThreadingHTTPServer] = []

    # -- what tests configure ---------------------------------------------------

    @property
    def token_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}/token"

    @property
    def authority(self) -> str:
        """Microsoft-style authority (msal: oauth2_authority)."""
        return f"https://127.0.0.1:{self.https_port}/{self.tenant}"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/introspect"

    def add_client(self, client_id: str, secret: str | None = None) -> None:
        self.state.clients[client_id] = secret

    def grant_app(self, client_id: str, mailbox: str) -> None:
        """Give a service principal access to a mailbox (Add-MailboxPermission)."""
        self.state.app_mailboxes[client_id] = mailbox

    def issue_refresh_token(self, username: str) -> str:
        token = "rt-" + secrets.token_urlsafe(24)
        self.state.refresh_tokens[token] = username
        return token

    def issue_code(self, username: str) -> str:
        code = "code-" + secrets.token_urlsafe(12)
        self.state.codes[code] = username
        return code

    def revoke_all_access(self) -> None:
        with self.state.lock:
            for issued in self.state.access.values():
                issued.revoked = True

    def revoke_refresh_token(self, token: str) -> None:
        self.state.refresh_tokens.pop(token, None)

    def valid(self, token: str) -> IssuedToken | None:
        issued = self.state.access.get(token)
        if issued is None or issued.revoked or issued.expires_at <= time.time():
            return None
        return issued

    @property
    def issued(self) -> list[str]:
        return list(self.state.access)

    # -- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> OAuthProvider:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        handler = _make_handler(self)
        plain = ThreadingHTTPServer(("127.0.0.1", self.http_port), handler)
        tls = ThreadingHTTPServer(("127.0.0.1", self.https_port), handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        tls.socket = context.wrap_socket(tls.socket, server_side=True)
        for server in (plain, tls):
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    # -- the protocol ---------------------------------------------------------------

    def _issue(self, username: str, client_id: str, grant: str) -> dict[str, Any]:
        token = "at-" + secrets.token_urlsafe(24)
        valid_for = self.valid_for if self.valid_for is not None else self.lifetime
        with self.state.lock:
            self.state.access[token] = IssuedToken(username, time.time() + valid_for,
                                                   client_id, grant)
            self.state.grants[grant] += 1
        # no "scope" in the answer: RFC 6749 5.1, the requested scope was granted
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(self.lifetime)}

    def token_endpoint(self, form: dict[str, str], auth_header: str | None) -> tuple[int, dict]:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if auth_header and auth_header.lower().startswith("basic "):
            decoded = base64.b64decode(auth_header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
        if client_id not in self.state.clients:
            return 401, {"error": "invalid_client"}
        expected = self.state.clients[client_id]
        if secret:
            self.state.seen_secrets.append(secret)
        if expected is not None and secret != expected:
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type", "")
        if grant == "refresh_token":
            username = self.state.refresh_tokens.get(form.get("refresh_token", ""))
            if username is None:
                return 400, {"error": "invalid_grant", "error_description": "revoked"}
            answer = self._issue(username, client_id, grant)
            if self.rotate:
                self.revoke_refresh_token(form["refresh_token"])
                answer["refresh_token"] = self.issue_refresh_token(username)
            return 200, answer
        if grant == "client_credentials":
            mailbox = self.state.app_mailboxes.get(client_id)
            if mailbox is None or expected is None:
                return 400, {"error": "unauthorized_client"}
            return 200, self._issue(mailbox, client_id, grant)
        if grant == "authorization_code":
            username = self.state.codes.pop(form.get("code", ""), None)
            if username is None:
                return 400, {"error": "invalid_grant"}
            answer = self._issue(username, client_id, grant)
            answer["refresh_token"] = self.issue_refresh_token(username)
            return 200, answer
        if grant in ("device_code", "urn:ietf:params:oauth:grant-type:device_code"):
            code = form.get("device_code", "")
            username = self.state.device_codes.pop(code, None)
            if username is None:
                waiting = code == getattr(self, "pending_device_code", None)
                return 400, {"error": "authorization_pending" if waiting else "expired_token"}
            answer = self._issue(username, client_id, "device_code")
            answer["refresh_token"] = self.issue_refresh_token(username)
            return 200, answer
        return 400, {"error": "unsupported_grant_type"}

    def introspect(self, token: str, mode: str) -> dict[str, Any]:
        issued = self.valid(token)
        self.state.introspections.append((mode, issued is not None))
        if issued is None:
            return {"active": False}
        return {"active": True, "username": issued.username, "client_id": issued.client_id,
                "exp": int(issued.expires_at)}

    def discovery(self) -> dict[str, Any]:
        base = self.authority
        return {
            "issuer": f"{base}/v2.0",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        }

    def device_code(self, form: dict[str, str]) -> dict[str, Any]:
        code = "dc-" + secrets.token_urlsafe(12)
        self.pending_device_code = code
        return {
            "device_code": code, "user_code": "ABCD-EFGH",
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": 900, "interval": 1,
            "message": "To sign in, use a web browser to open the page "
                       "https://microsoft.com/devicelogin and enter the code ABCD-EFGH.",
        }

    def approve_device_code(self, username: str) -> None:
        """What the user does in the browser: sign in and consent."""
        self.state.device_codes[self.pending_device_code] = username


def _make_handler(provider: OAuthProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            return {k: v[0] for k, v in parse_qs(body).items()}

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/introspect":
                token = parse_qs(url.query).get("token", [""])[0]
                return self._reply(200, provider.introspect(token, "get"))
            if url.path.endswith("/v2.0/.well-known/openid-configuration"):
                return self._reply(200, provider.discovery())
            return self._reply(404, {"error": "not_found"})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            form = self._form()
            if url.path == "/introspect":
                return self._reply(200, provider.introspect(form.get("token", ""), "post"))
            if url.path == "/token" or url.path.endswith("/oauth2/v2.0/token"):
                status, body = provider.token_endpoint(form, self.headers.get("Authorization"))
                return self._reply(status, body)
            if url.path.endswith("/oauth2/v2.0/devicecode"):
                return self._reply(200, provider.device_code(form))
            return self._reply(404, {"error": "not_found"})

    return Handler


class OAuthDovecot(Dovecot):
    """The rig's Dovecot, also accepting XOAUTH2/OAUTHBEARER via an ``oauth2`` passdb.

    Passwords keep working (the dict passdb serves PLAIN/LOGIN), so test
    set-up can still use ``session()``; OAuth2 logins are checked against the
    provider's introspection endpoint on every login, never cached.
    """

    def __init__(self, introspection_url: str, *, mode: str = "post", **kwargs: Any) -> None:
        self.introspection_url = introspection_url
        self.introspection_mode = mode
        super().__init__(**kwargs)

    def _write_config(self) -> None:
        super()._write_config()
        oauth_conf = self.root / "dovecot-oauth2.conf.ext"
        url = self.introspection_url
        if self.introspection_mode == "get":
            url += "?token="
        oauth_conf.write_text(
            f"introspection_mode = {self.introspection_mode}\n"
            f"introspection_url = {url}\n"
            "tokeninfo_url =\n"
            "force_introspection = yes\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
        )
        text = self.config_path.read_text()
        text = text.replace(
            "auth_mechanisms = plain login\n",
            "auth_mechanisms = plain login xoauth2 oauthbearer\n"
            "auth_failure_delay = 0\nauth_cache_size = 0\n",
        )
        # no growing delays after the refusals the tests provoke on purpose: the
        # auth process cannot reach anvil's penalty socket, so penalties are off
        text += "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"
        text = text.replace(
            "passdb {\n",
            f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {oauth_conf}\n}}\npassdb {{\n",
            1,
        )
        self.config_path.write_text(text)


# -- SMTP with XOAUTH2 ---------------------------------------------------------------------


@dataclass
class SmtpLogin:
    mechanism: str
    raw: bytes  # the decoded initial response, as sent
    user: str | None
    token: str | None
    accepted: bool


class _XOAuthHandler:
    def __init__(self, rig: OAuthSmtpServer) -> None:
        self.rig = rig

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self.rig._check(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self.rig._check(server, args, "OAUTHBEARER")

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.rig.messages.append((session.auth_data, envelope.content))
        return "250 2.0.0 OK queued"


class _Controller(Controller):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():  # loopback test server: plaintext AUTH on purpose
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return SMTP(self.handler, auth_required=True, auth_require_tls=False,
                        hostname="smtp.test")


class OAuthSmtpServer:
    """aiosmtpd that accepts only XOAUTH2/OAUTHBEARER tokens the provider vouches for.

    A refused token gets what Gmail sends: a 334 challenge carrying a base64
    JSON error, then 535 after the client's empty answer.
    """

    def __init__(self, provider: OAuthProvider) -> None:
        self.provider = provider
        self.port = free_port()
        self.logins: list[SmtpLogin] = []
        self.messages: list[tuple[Any, bytes | str | None]] = []
        self._controller = _Controller(_XOAuthHandler(self), hostname="127.0.0.1",
                                       port=self.port)

    def __enter__(self) -> OAuthSmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    async def _check(self, server: SMTP, args: list[str], mechanism: str) -> AuthResult:
        if len(args) > 1:
            raw = base64.b64decode(args[1])
        else:
            answer = await server.challenge_auth("", encode_to_b64=False)
            raw = base64.b64decode(answer) if isinstance(answer, bytes) else b""
        user, token = parse_sasl(raw, mechanism)
        issued = self.provider.valid(token) if token else None
        ok = issued is not None and user is not None and issued.username == user.lower()
        self.logins.append(SmtpLogin(mechanism, raw, user, token, ok))
        if ok:
            return AuthResult(success=True, auth_data=user)
        error = json.dumps({"status": "401", "schemes": "Bearer", "scope": "https://mail.test/"})
        await server.challenge_auth(error)  # the client answers with an empty line (or ^A)
        return AuthResult(success=False, handled=False)


def parse_sasl(raw: bytes, mechanism: str) -> tuple[str | None, str | None]:
    """(user, token) from an XOAUTH2 or OAUTHBEARER initial response; None when malformed."""
    text = raw.decode(errors="replace")
    user = token = None
    if mechanism == "XOAUTH2":
        if not text.endswith("\x01\x01"):
            return None, None
        for part in text[:-2].split("\x01"):
            key, _, value = part.partition("=")
            if key == "user":
                user = value
            elif key == "auth" and value.startswith("Bearer "):
                token = value[7:]
        return user, token
    head, _, rest = text.partition("\x01")
    if not head.startswith("n,") or not text.endswith("\x01\x01"):
        return None, None
    for item in head.split(","):
        if item.startswith("a="):
            user = item[2:].replace("=2C", ",").replace("=3D", "=")
    for part in rest[:-2].split("\x01"):
        key, _, value = part.partition("=")
        if key == "auth" and value.startswith("Bearer "):
            token = value[7:]
    return user, token

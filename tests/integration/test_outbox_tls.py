"""SMTP security modes against real TLS servers: implicit TLS (465) and STARTTLS (587)."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from service.config import SmtpSettings
from service.errors import DeliveryError
from service.mail.compose import compose, freeze
from service.mail.send import SmtpTransport
from tests.rig.dovecot import free_port

pytestmark = [
    pytest.mark.integration,
    # the implicit-TLS server is TLS from the first byte; aiosmtpd warns regardless
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
]

PASSWORD_ENV = "SG_TEST_TLS_SMTP_PASSWORD"


class _Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[bool, bytes]] = []  # (over TLS, bytes)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert server.transport is not None
        over_tls = server.transport.get_extra_info("ssl_object") is not None
        self.received.append((over_tls, bytes(envelope.original_content or b"")))
        return "250 OK"


def _auth(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
          data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password == b"tls-secret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, crt = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True, timeout=60,
    )
    return crt, key


def _server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def _client_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert[0]))


@pytest.fixture
def servers(cert: tuple[Path, Path]) -> Iterator[dict[str, Any]]:
    recorder = _Recorder()
    implicit_port, starttls_port = free_port(), free_port()
    implicit = Controller(recorder, hostname="127.0.0.1", port=implicit_port,
                          ssl_context=_server_context(cert), authenticator=_auth,
                          # aiosmtpd counts only STARTTLS as TLS for AUTH
                          auth_required=True, auth_require_tls=False, ready_timeout=10)
    starttls = Controller(recorder, hostname="127.0.0.1", port=starttls_port,
                          tls_context=_server_context(cert), require_starttls=True,
                          authenticator=_auth, auth_required=True, ready_timeout=10)
    implicit.start()
    starttls.start()
    try:
        yield {"recorder": recorder, "ssl": implicit_port, "starttls": starttls_port}
    finally:
        implicit.stop()
        starttls.stop()


def _settings(port: int, security: str) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=port, security=security,  # type: ignore[arg-type]
                        username="team@northwind.test", password_env=PASSWORD_ENV,
                        from_address="team@northwind.test", timeout=5)


def _send(settings: SmtpSettings, context: ssl.SSLContext) -> str:
    raw = freeze(compose(from_addr="team@northwind.test", to=["ana@acme.test"],
                         subject="Hello", text="Over TLS.\n"))

    async def run() -> str:
        async with SmtpTransport(settings, tls_context=context) as transport:
            outcome = await transport.send(raw, "team@northwind.test", ["ana@acme.test"])
            return outcome.status

    return asyncio.run(run())


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_security_modes_send_over_tls_after_login(
    servers: dict[str, Any], cert: tuple[Path, Path], security: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "tls-secret")
    assert _send(_settings(servers[security], security), _client_context(cert)) == "sent"
    [(over_tls, raw)] = servers["recorder"].received
    assert over_tls and b"Over TLS." in raw


def test_untrusted_certificate_is_refused(
    servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "tls-secret")
    with pytest.raises(DeliveryError) as caught:
        _send(_settings(servers["ssl"], "ssl"), ssl.create_default_context())
    assert caught.value.transient
    assert servers["recorder"].received == []


def test_plain_session_to_a_starttls_server_never_logs_in_in_clear(
    servers: dict[str, Any], cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "tls-secret")
    with pytest.raises(DeliveryError):
        _send(_settings(servers["starttls"], "none"), _client_context(cert))
    assert servers["recorder"].received == []

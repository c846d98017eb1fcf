"""TOML configuration validated once, at start, into typed settings.

Every error names the file and the key and says what was expected; secrets
are never part of the TOML (only where to find them) and never appear in an
error message or a log line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

DEFAULT_CONFIG_NAME = "config.toml"
CONFIG_ENV = "SAYGOODBYE_CONFIG"

_SECRET_KEYS = {"password", "secret", "token", "refresh_token", "client_secret"}
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key in _SECRET_KEYS:
                    raise ValueError(
                        f"'{key}' must not be written in the config file; "
                        f"use {key}_env (an environment variable name) or "
                        f"{key}_file (a file path, e.g. a systemd credential)"
                    )
        return data


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (expected an IANA name like "
                         "'Europe/Berlin')") from exc
    return value


class SecretRef(_Section):
    """Where a secret lives: an environment variable or a file, never the TOML."""

    env: str | None = None
    file: Path | None = None

    def read(self, what: str) -> str:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(f"environment variable {self.env} is not set", key=what)
            return value
        if self.file:
            path = self.file
            credentials = os.environ.get("CREDENTIALS_DIRECTORY")
            if not path.is_absolute() and credentials:
                path = Path(credentials) / path
            try:
                return path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"cannot read secret file {path}: {exc.strerror}",
                                  key=what) from None
        raise ConfigError("no secret configured (set *_env or *_file)", key=what)

    def __repr__(self) -> str:  # never show contents, only the reference
        return f"SecretRef(env={self.env!r}, file={str(self.file) if self.file else None!r})"


class ServiceSettings(_Section):
    database: str | None = None
    state_dir: Path | None = None
    timezone: str = "UTC"
    send_mode: Literal["live", "owner-only"] = "owner-only"
    own_domains: tuple[str, ...] = ()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["keyvalue", "json"] = "keyvalue"
    keep_bodies_days: int = Field(default=365, ge=1)
    metrics: str | None = None
    backfill_alerts: bool = False
    templates_dir: Path | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("own_domains")
    @classmethod
    def _lower_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower().lstrip("@") for d in value if d.strip())


class OAuth2Fields(_Section):
    """How [mailbox] or [smtp] logs in: a password, or OAuth2 (docs/providers.md).

    Refresh tokens and client secrets follow the password rule: only *_env or
    *_file here. With [smtp] auth = "oauth2" and no oauth2_provider of its
    own, [smtp] reuses the oauth2_* keys of [mailbox].
    """

    auth: Literal["password", "oauth2"] = "password"
    oauth2_provider: Literal["google", "microsoft", "generic"] | None = None
    oauth2_flow: Literal["refresh_token", "client_credentials"] = "refresh_token"
    oauth2_client_id: str | None = None
    oauth2_client_secret_env: str | None = None
    oauth2_client_secret_file: Path | None = None
    oauth2_refresh_token_env: str | None = None
    oauth2_refresh_token_file: Path | None = None
    oauth2_tenant: str | None = None
    oauth2_authority: str | None = None
    oauth2_token_url: str | None = None
    oauth2_scopes: tuple[str, ...] = ()
    oauth2_mechanism: Literal["xoauth2", "oauthbearer"] = "xoauth2"

    @model_validator(mode="after")
    def _oauth2_complete(self) -> OAuth2Fields:
        for name in ("oauth2_client_secret", "oauth2_refresh_token"):
            if getattr(self, f"{name}_env") and getattr(self, f"{name}_file"):
                raise ValueError(f"set only one of {name}_env and {name}_file")
        if self.auth != "oauth2":
            return self
        if self.oauth2_provider is None:
            raise ValueError("auth = 'oauth2' needs oauth2_provider "
                             "('google', 'microsoft' or 'generic')")
        if not self.oauth2_client_id:
            raise ValueError("auth = 'oauth2' needs oauth2_client_id")
        if not getattr(self, "username", None):
            raise ValueError("auth = 'oauth2' needs username (the mailbox the token is for)")
        has_secret = bool(self.oauth2_client_secret_env or self.oauth2_client_secret_file)
        has_refresh = bool(self.oauth2_refresh_token_env or self.oauth2_refresh_token_file)
        if self.oauth2_flow == "client_credentials":
            if self.oauth2_provider == "google":
                raise ValueError("oauth2_flow = 'client_credentials' is not available for "
                                 "Google mail; use 'refresh_token' (saygoodbye auth google)")
            if not has_secret:
                raise ValueError("oauth2_flow = 'client_credentials' needs "
                                 "oauth2_client_secret_env or oauth2_client_secret_file")
            if self.oauth2_provider == "microsoft" and (
                not self.oauth2_tenant
                or self.oauth2_tenant.lower() in {"common", "organizations", "consumers"}
            ):
                raise ValueError("oauth2_flow = 'client_credentials' needs oauth2_tenant "
                                 "(the directory (tenant) ID or domain)")
        elif not has_refresh:
            raise ValueError("auth = 'oauth2' needs oauth2_refresh_token_env or "
                             "oauth2_refresh_token_file (saygoodbye auth google|microsoft "
                             "writes the file)")
        if self.oauth2_provider == "generic" and not self.oauth2_token_url:
            raise ValueError("oauth2_provider = 'generic' needs oauth2_token_url")
        return self

    def oauth2_client_secret(self) -> str | None:
        if not (self.oauth2_client_secret_env or self.oauth2_client_secret_file):
            return None
        ref = SecretRef(env=self.oauth2_client_secret_env, file=self.oauth2_client_secret_file)
        return ref.read("oauth2_client_secret_env/oauth2_client_secret_file")

    def oauth2_refresh_token(self) -> str | None:
        if not (self.oauth2_refresh_token_env or self.oauth2_refresh_token_file):
            return None
        ref = SecretRef(env=self.oauth2_refresh_token_env, file=self.oauth2_refresh_token_file)
        return ref.read("oauth2_refresh_token_env/oauth2_refresh_token_file")


class MailboxSettings(OAuth2Fields):
    host: str
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str
    password_env: str | None = None
    password_file: Path | None = None
    folder: str = "INBOX"
    sent_folder: str | None = None
    idle: bool = True
    poll_seconds: int = Field(default=60, ge=5)
    batch_size: int = Field(default=200, ge=1, le=5000)
    timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_password_source(self) -> MailboxSettings:
        if self.password_env and self.password_file:
            raise ValueError("set only one of password_env and password_file")
        return self

    def password(self) -> str:
        ref = SecretRef(env=self.password_env, file=self.password_file)
        return ref.read("mailbox.password_env/password_file")


class SmtpSettings(OAuth2Fields):
    host: str
    port: int = Field(default=465, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    from_address: str
    save_to_sent: Literal["auto", "always", "never"] = "auto"
    timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_password_source(self) -> SmtpSettings:
        if self.password_env and self.password_file:
            raise ValueError("set only one of password_env and password_file")
        return self

    def password(self) -> str | None:
        if not (self.password_env or self.password_file):
            return None
        ref = SecretRef(env=self.password_env, file=self.password_file)
        return ref.read("smtp.password_env/password_file")


class ApprovalSettings(_Section):
    secret_env: str | None = None
    secret_file: Path | None = None
    expiry_hours: int = Field(default=168, ge=1)
    require_authenticated: bool = True
    authserv_id: str | None = None

    def secret(self) -> str:
        ref = SecretRef(env=self.secret_env, file=self.secret_file)
        return ref.read("approvals.secret_env/secret_file")


class ScheduleSettings(_Section):
    send_window: str = "09:00-17:00"
    send_days: str = "mon-fri"
    holidays: str | None = None
    feedback_after_days: int = Field(default=14, ge=0)
    digest: str = "mon 08:00"

    @field_validator("send_window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_window(value)
        return value

    @field_validator("send_days")
    @classmethod
    def _days(cls, value: str) -> str:
        parse_days(value)
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: str | None) -> str | None:
        if value:
            from .sendwindow import holiday_calendar  # a typo fails at start, not at send time

            holiday_calendar(value)
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        parse_weekly(value)
        return value

    @property
    def window(self) -> tuple[time, time]:
        return parse_window(self.send_window)

    @property
    def days(self) -> frozenset[int]:
        return parse_days(self.send_days)


class HealthConfig(_Section):
    """The [health] table; mapped onto analysis.health.HealthSettings."""

    window_days: tuple[int, ...] = (30, 90)
    half_life_days: float = Field(default=30.0, gt=0)
    min_messages: int = Field(default=3, ge=1)
    weights: dict[str, float] = Field(default_factory=dict)
    enter: dict[str, float] = Field(default_factory=dict)
    leave: dict[str, float] = Field(default_factory=dict)
    alert_cooldown_days: int = Field(default=14, ge=0)


class ClientSettings(_Section):
    name: str = Field(min_length=1)
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    owner: str
    monthly_revenue: float | None = Field(default=None, ge=0)
    currency: str = "EUR"
    timezone: str | None = None
    hours_per_month: float | None = Field(default=None, ge=0)

    @field_validator("domains", "addresses")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower().lstrip("@") for v in value if v.strip())

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)


class OwnerSettings(_Section):
    email: str
    name: str | None = None
    timezone: str | None = None
    signature: str | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_zone(value)


class Settings(_Section):
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    mailbox: MailboxSettings | None = None
    smtp: SmtpSettings | None = None
    approvals: ApprovalSettings = Field(default_factory=ApprovalSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    health: HealthConfig = Field(default_factory=HealthConfig)
    clients: tuple[ClientSettings, ...] = ()
    owners: tuple[OwnerSettings, ...] = ()
    # Where the file was read from; not a TOML key.
    source_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _smtp_reuses_mailbox_oauth2(cls, data: Any) -> Any:
        """One OAuth2 client and refresh token usually serve IMAP and SMTP alike."""
        if not isinstance(data, Mapping):
            return data
        smtp, mailbox = data.get("smtp"), data.get("mailbox")
        if (
            isinstance(smtp, Mapping) and isinstance(mailbox, Mapping)
            and smtp.get("auth") == "oauth2" and "oauth2_provider" not in smtp
        ):
            inherited = {k: v for k, v in mailbox.items() if k.startswith("oauth2_")}
            data = {**data, "smtp": {**inherited, **smtp}}
        return data

    @model_validator(mode="after")
    def _unique_clients(self) -> Settings:
        seen: set[str] = set()
        for client in self.clients:
            key = client.name.casefold()
            if key in seen:
                raise ValueError(f"client name {client.name!r} appears twice in [[clients]]")
            seen.add(key)
        return self

    @property
    def state_dir(self) -> Path:
        if self.service.state_dir:
            return self.service.state_dir
        if os.environ.get("STATE_DIRECTORY"):  # set by systemd StateDirectory=
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "saygoodbye"

    @property
    def database_url(self) -> str:
        if self.service.database:
            return self.service.database
        return f"sqlite:///{self.state_dir / 'saygoodbye.db'}"

    @property
    def own_domains(self) -> tuple[str, ...]:
        """Staff domains: configured, else the mailbox user's and the sender's domain."""
        if self.service.own_domains:
            return self.service.own_domains
        found = []
        for address in (
            self.mailbox.username if self.mailbox else None,
            self.smtp.from_address if self.smtp else None,
        ):
            if address and "@" in address:
                found.append(address.rsplit("@", 1)[1].lower())
        return tuple(dict.fromkeys(found))

    def owner(self, email: str) -> OwnerSettings:
        email = email.lower()
        for owner in self.owners:
            if owner.email == email:
                return owner
        return OwnerSettings(email=email)

    def client(self, name: str) -> ClientSettings | None:
        wanted = name.casefold()
        for client in self.clients:
            if client.name.casefold() == wanted:
                return client
        return None

    def client_timezone(self, client: ClientSettings | None) -> ZoneInfo:
        if client and client.timezone:
            return ZoneInfo(client.timezone)
        return ZoneInfo(self.service.timezone)

    def warnings(self) -> list[str]:
        """Valid but almost certainly unintended settings, said once at start and reload.

        Not errors: a config for `sync` or the demo legitimately lacks these parts.
        """
        found = []
        if (self.mailbox is not None and self.clients and self.approvals.require_authenticated
                and not self.approvals.authserv_id):
            found.append(
                "approvals.require_authenticated is true but approvals.authserv_id is not set:"
                " every owner reply command will be refused. Set authserv_id to the name"
                " your mail server writes first in Authentication-Results headers")
        if self.mailbox is not None and self.smtp is None:
            found.append("[mailbox] is set but [smtp] is not: alerts, approvals and digests"
                         " stay in the outbox until an SMTP server is configured")
        return found


_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_window(value: str) -> tuple[time, time]:
    """'09:00-17:00' -> (09:00, 17:00); the end must come after the start."""
    match = _WINDOW_RE.match(value)
    if not match:
        raise ValueError(f"expected 'HH:MM-HH:MM', got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
        raise ValueError(f"not a valid time range: {value!r}")
    start = time(h1, m1)
    end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"the window must end after it starts: {value!r}")
    return start, end


def parse_days(value: str) -> frozenset[int]:
    """'mon-fri' or 'mon,wed,fri' -> weekday numbers (Monday is 0)."""
    days: set[int] = set()
    for part in value.lower().replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            first, last = part.split("-", 1)
            if first not in _DAYS or last not in _DAYS:
                raise ValueError(f"expected day names like 'mon-fri', got {value!r}")
            a, b = _DAYS.index(first), _DAYS.index(last)
            span = range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)]
            days.update(span)
        elif part in _DAYS:
            days.add(_DAYS.index(part))
        else:
            raise ValueError(f"expected day names like 'mon-fri', got {value!r}")
    if not days:
        raise ValueError("at least one day is needed")
    return frozenset(days)


def parse_weekly(value: str) -> tuple[int, time]:
    """'mon 08:00' -> (0, 08:00)."""
    parts = value.lower().split()
    if len(parts) != 2 or parts[0] not in _DAYS or not re.fullmatch(r"\d{1,2}:\d{2}", parts[1]):
        raise ValueError(f"expected 'DAY HH:MM' like 'mon 08:00', got {value!r}")
    hour, minute = (int(x) for x in parts[1].split(":"))
    if hour > 23 or minute > 59:
        raise ValueError(f"not a valid time: {value!r}")
    return _DAYS.index(parts[0]), time(hour, minute)


def _format_location(data: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    key = ".".join(parts)
    # Name the client, not only its index, so users find the table.
    if loc and loc[0] == "clients" and len(loc) > 1 and isinstance(loc[1], int):
        try:
            name = data["clients"][loc[1]].get("name")
            if name:
                key += f" (client {name!r})"
        except (KeyError, IndexError, AttributeError, TypeError):
            pass
    return key


def _describe(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return "unknown key (check the spelling; config.example.toml lists every key)"
    if error.get("type") == "missing":
        return "required key is missing"
    return message


def settings_from_mapping(data: Mapping[str, Any], *, path: str | None = None) -> Settings:
    """Validate an already-parsed TOML document."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        first = errors[0]
        key = _format_location(data, tuple(first.get("loc", ())))
        others = [
            f"{_format_location(data, tuple(e.get('loc', ())))}: {_describe(e)}"
            for e in errors[1:6]
        ]
        more = ("; also " + "; ".join(others)) if others else ""
        raise ConfigError(_describe(first) + more, path=path, key=key or None) from None
    if path:
        settings = settings.model_copy(update={"source_path": Path(path)})
    return settings


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return Path(DEFAULT_CONFIG_NAME)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the config; raises ConfigError (exit code 2) on any problem."""
    config_path = resolve_config_path(path)
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "file not found (pass --config PATH or set SAYGOODBYE_CONFIG; "
            "config.example.toml shows every key)",
            path=str(config_path),
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", path=str(config_path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("the file is not valid UTF-8", path=str(config_path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(config_path)) from None
    return settings_from_mapping(data, path=str(config_path))

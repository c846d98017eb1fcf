"""Configuration: every error names the file and key; secrets stay out of messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli import main
from service.config import load_settings, parse_days, parse_weekly, parse_window
from service.errors import ConfigError

MINIMAL = """
[service]
database = "sqlite:///{db}"
own_domains = ["northwind.studio"]

[[clients]]
name = "Acme"
domains = ["acme.com"]
owner = "maria@northwind.studio"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_loads_with_documented_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL.format(db=tmp_path / "x.db")))
    assert settings.service.send_mode == "owner-only"
    assert settings.schedule.window == parse_window("09:00-17:00")
    assert settings.schedule.days == frozenset(range(5))
    assert settings.clients[0].domains == ("acme.com",)
    assert settings.own_domains == ("northwind.studio",)


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    settings = load_settings(example)
    assert settings.mailbox is not None and settings.smtp is not None
    assert settings.clients, "the example documents [[clients]]"


@pytest.mark.parametrize(
    ("snippet", "key", "expected"),
    [
        ('[service]\ntimezone = "Mars/Base"\n', "service.timezone", "unknown time zone"),
        ('[service]\nsend_mode = "loud"\n', "service.send_mode", "live"),
        ('[schedule]\nsend_window = "17:00-09:00"\n', "schedule.send_window", "end after"),
        ('[schedule]\nsend_days = "funday"\n', "schedule.send_days", "day names"),
        ('[schedule]\ndigest = "monday"\n', "schedule.digest", "DAY HH:MM"),
        ('[schedule]\nholidays = "XX-YY"\n', "schedule.holidays", "unknown holiday calendar"),
        ('[service]\ndatabse = "x"\n', "service.databse", "unknown key"),
        ('[[clients]]\nname = "A"\n', "clients[0].owner (client 'A')", "required key"),
        ('[[clients]]\nname = "A"\nowner = "a@b.c"\nmonthly_revenue = -5\n',
         "clients[0].monthly_revenue", "greater than or equal"),
        ('[mailbox]\nhost = "h"\nusername = "u"\nport = "imap"\n', "mailbox.port", "integer"),
    ],
)
def test_errors_name_file_key_and_expectation(
    tmp_path: Path, snippet: str, key: str, expected: str
) -> None:
    path = write(tmp_path, snippet)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert expected in message
    assert info.value.exit_code == 2


def test_inline_password_is_refused_and_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, '[mailbox]\nhost = "h"\nusername = "u"\npassword = "hunter2-secret"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "password_env" in str(info.value)
    assert "hunter2-secret" not in str(info.value)


def test_wrongly_typed_secret_value_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, '[mailbox]\nhost = "h"\nusername = "u"\npassword_env = 12345678\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "mailbox.password_env" in str(info.value)
    assert "12345678" not in str(info.value)


def test_password_from_env_and_from_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = '[mailbox]\nhost = "h"\nusername = "u"\npassword_env = "SG_TEST_PW"\n'
    settings = load_settings(write(tmp_path, text))
    monkeypatch.setenv("SG_TEST_PW", "s3cret")
    assert settings.mailbox is not None and settings.mailbox.password() == "s3cret"
    assert "s3cret" not in repr(settings)

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "imap-password").write_text("from-file\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    text = '[mailbox]\nhost = "h"\nusername = "u"\npassword_file = "imap-password"\n'
    settings = load_settings(write(tmp_path, text))
    assert settings.mailbox is not None and settings.mailbox.password() == "from-file"


def test_missing_secret_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SG_MISSING", raising=False)
    text = '[mailbox]\nhost = "h"\nusername = "u"\npassword_env = "SG_MISSING"\n'
    settings = load_settings(write(tmp_path, text))
    with pytest.raises(ConfigError, match="SG_MISSING is not set"):
        assert settings.mailbox is not None
        settings.mailbox.password()


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[service\n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml")


def test_cli_exits_2_on_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[service]\ntimezone = "Nowhere/Land"\n')
    assert main(["--config", str(path), "status"]) == 2
    assert "service.timezone" in capsys.readouterr().err


def test_schedule_parsers() -> None:
    assert parse_days("sat-mon") == frozenset({5, 6, 0})
    assert parse_days("mon,wed") == frozenset({0, 2})
    assert parse_weekly("fri 16:30")[0] == 4
    with pytest.raises(ValueError):
        parse_window("9-5")


def test_warnings_name_settings_that_would_silently_refuse_every_reply() -> None:
    from service.config import settings_from_mapping

    base = {
        "mailbox": {"host": "imap.example.com", "username": "team@agency.example",
                    "password_env": "X"},
        "clients": [{"name": "Acme", "domains": ["acme.example"], "owner": "o@agency.example"}],
    }
    warned = settings_from_mapping(base).warnings()
    assert any("approvals.authserv_id" in w for w in warned)
    assert any("[smtp]" in w for w in warned)
    quiet = settings_from_mapping({
        **base,
        "approvals": {"authserv_id": "mx.agency.example"},
        "smtp": {"host": "smtp.example.com", "from_address": "team@agency.example"},
    }).warnings()
    assert quiet == []
    # An offline-only config (demo, `sync --source`) has nothing to warn about.
    assert settings_from_mapping({"clients": base["clients"]}).warnings() == []

"""systemd/saygoodbye.service: valid for systemd, hardened, and in step with the daemon."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from service import daemon

pytestmark = pytest.mark.integration

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "saygoodbye.service"
BINARY = "/usr/local/bin/saygoodbye"


def _analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is missing: run tools/install_test_deps.sh (Debian: systemd)")
    return path


def _directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found[key.strip()].append(value.strip())
    return found


@pytest.fixture
def runnable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists here."""
    fake = tmp_path / "saygoodbye"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    unit = tmp_path / "saygoodbye.service"
    unit.write_text(UNIT.read_text().replace(BINARY, str(fake)))
    return unit


def _verify(unit: Path) -> list[str]:
    result = subprocess.run([_analyze(), "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    # systemd may also talk about units on this machine; keep what concerns ours
    return [line for line in lines if unit.name in line or str(unit) in line]


def test_systemd_analyze_verify_finds_nothing_wrong(runnable_unit: Path) -> None:
    assert _verify(runnable_unit) == []


def test_the_shipped_unit_only_lacks_the_installed_binary() -> None:
    complaints = _verify(UNIT)
    assert all(f"Command {BINARY} is not executable" in line for line in complaints), complaints


def test_unit_promises_what_the_daemon_does() -> None:
    unit = _directives(UNIT.read_text())
    single = {key: values[-1] for key, values in unit.items()}
    assert single["Type"] == "notify"
    assert single["ExecStart"].endswith(" run")
    assert single["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert single["Restart"] == "on-failure"
    assert single["RestartPreventExitStatus"] == "2"  # ConfigError's exit code
    assert single["DynamicUser"] == "yes" or single.get("User")
    assert single["StateDirectory"] == "saygoodbye"
    assert single["ConfigurationDirectory"] == "saygoodbye"
    assert single["UMask"] == "0077"
    # WATCHDOG=1 every half WatchdogSec; the stop grace and the executor wait fit in
    # TimeoutStopSec, so SIGTERM always ends in exit 0, never in SIGKILL
    assert int(single["WatchdogSec"]) >= 10
    assert int(single["TimeoutStopSec"]) > daemon.STOP_GRACE + daemon.EXECUTOR_GRACE
    credentials = {value.split(":", 1)[0] for value in unit["LoadCredential"]}
    assert credentials == {"imap-password", "smtp-password", "approval-secret"}
    for key, value in {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes", "RestrictNamespaces": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
    }.items():
        assert single[key] == value, key
    assert "@system-service" in unit["SystemCallFilter"]


def test_security_exposure_is_recorded(runnable_unit: Path,
                                       record_property: pytest.RecordProperty) -> None:
    result = subprocess.run(
        [_analyze(), "security", "--offline=true", "--no-pager", str(runnable_unit)],
        capture_output=True, text=True, timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", result.stdout)
    if result.returncode != 0 or match is None:
        # older systemd (no --offline) or a container without the needed bits
        print(f"systemd-analyze security could not run: rc={result.returncode} "
              f"{result.stderr.strip()[:300]}")
        return
    exposure = float(match.group(1))
    record_property("systemd_exposure", exposure)
    print(f"systemd-analyze security exposure: {exposure} {match.group(2)}")
    assert exposure <= 2.0, result.stdout  # hardening must not quietly regress

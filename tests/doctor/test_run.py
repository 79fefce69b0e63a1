"""`diagnose`: which config it reads, which store it checks, and every check in order; the probes
that start processes or read host-wide state are replaced by fixed facts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from bastion.doctor import run
from bastion.doctor.checks import ChromiumFacts, ClockFacts, SandboxFacts, Status, StoreFacts
from bastion.doctor.run import AUDIT_STORE_ENV, diagnose

SERVER_TIME = 1_799_999_990.0


@pytest.fixture
def clock_asked(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """Fixed sandbox, Chromium and clock facts; returns the database times the clock probe was given."""
    asked: list[float | None] = []

    def probe_clock(server_time: float | None = None) -> ClockFacts:
        asked.append(server_time)
        return ClockFacts(1_800_000_000.0, True, None)

    def probe_sandbox(environ: Mapping[str, str]) -> SandboxFacts:
        return SandboxFacts("/usr/bin/bwrap", None, "/usr/bin/prlimit", "/usr/bin/bwrap", "system", "bubblewrap 0.9")

    def probe_chromium(environ: Mapping[str, str]) -> ChromiumFacts:
        return ChromiumFacts(None)

    monkeypatch.setattr(run, "probe_sandbox", probe_sandbox)
    monkeypatch.setattr(run, "probe_chromium", probe_chromium)
    monkeypatch.setattr(run, "probe_clock", probe_clock)
    return asked


def environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"BASTION_HOME": str(tmp_path / "home"), "PATH": os.environ["PATH"], **extra}


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bastion.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_sound_host_passes_every_check_in_order(tmp_path: Path, clock_asked: list[float | None]) -> None:
    path = config(tmp_path, '[servers.s]\ncommand = "true"\n[[watch.sinks]]\nkind = "command"\ncommand = ["true"]\n')
    found = diagnose(path, environ(tmp_path))
    assert [check.name for check in found.checks] == [
        "config", "state dir", "keys", "bubblewrap", "sandbox start", "process limit", "server s", "audit store",
        "chromium", "clock", "sink 1 (command, primary)",
    ]  # fmt: skip
    assert (found.home, found.config, found.exit_code) == (str(tmp_path / "home"), str(path), 0)
    assert clock_asked == [None]


def test_an_invalid_config_fails_and_the_defaults_are_checked_instead(
    tmp_path: Path, clock_asked: list[float | None]
) -> None:
    found = diagnose(config(tmp_path, '[servers.s]\ncommand = "true"\ncolour = "blue"\n'), environ(tmp_path))
    assert found.checks[0].name == "config"
    assert found.checks[0].status is Status.FAIL
    assert not any(check.name.startswith("server ") for check in found.checks)
    assert found.exit_code == 1


def test_a_server_whose_command_does_not_resolve_fails(tmp_path: Path, clock_asked: list[float | None]) -> None:
    path = config(tmp_path, '[servers.s]\ncommand = "no-such-program-here"\n')
    [server] = [check for check in diagnose(path, environ(tmp_path)).checks if check.name == "server s"]
    assert server.status is Status.FAIL
    assert server.fix


def test_without_a_config_path_the_bastion_toml_here_is_read_if_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock_asked: list[float | None]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert diagnose(None, environ(tmp_path)).config is None
    config(tmp_path, '[servers.here]\ncommand = "true"\n')
    found = diagnose(None, environ(tmp_path))
    assert found.config == "bastion.toml"
    assert "server here" in [check.name for check in found.checks]


def test_the_store_named_in_the_environment_is_checked_where_it_is(
    tmp_path: Path, clock_asked: list[float | None]
) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    found = diagnose(None, environ(tmp_path, **{AUDIT_STORE_ENV: f"sqlite:{elsewhere}"}))
    [store] = [check for check in found.checks if check.name == "audit store"]
    assert str(elsewhere) in store.detail


def test_a_postgresql_store_is_probed_and_its_clock_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock_asked: list[float | None]
) -> None:
    probed: list[str] = []

    def probe_postgres(url: str) -> StoreFacts:
        probed.append(url)
        return StoreFacts("postgresql", "db.internal", error="connection refused", server_time=SERVER_TIME)

    monkeypatch.setattr(run, "probe_postgres", probe_postgres)
    path = config(tmp_path, '[audit]\nstore = "postgresql://bastion@db.internal/bastion"\n')
    found = diagnose(path, environ(tmp_path))
    assert probed == ["postgresql://bastion@db.internal/bastion"]
    assert clock_asked == [SERVER_TIME]
    [store] = [check for check in found.checks if check.name == "postgresql"]
    assert store.status is Status.FAIL
    assert "audit store" not in [check.name for check in found.checks]
    assert found.exit_code == 1

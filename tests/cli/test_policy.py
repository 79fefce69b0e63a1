"""`bastion policy` refuses a server that is not configured, instead of explaining a decision for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import USAGE, bastion


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bastion.toml"
    path.write_text('[servers.fs]\ncommand = "x"\n[servers.sh]\ncommand = "y"\n', encoding="utf-8")
    return path


def test_explain_refuses_a_server_that_is_not_configured_and_names_those_that_are(home: Path, config: Path) -> None:
    done = bastion(home, "policy", "explain", "--server", "nope", "--tool", "read_file", "--config", str(config))
    assert done.returncode == USAGE
    assert done.stdout == ""
    assert "fs, sh" in done.stderr
    known = bastion(home, "policy", "explain", "--server", "fs", "--tool", "read_file", "--config", str(config))
    assert known.returncode == 0, known.stderr


@pytest.mark.parametrize("command", ["kill", "unkill"])
def test_a_kill_switch_for_a_server_that_is_not_configured_is_refused(home: Path, config: Path, command: str) -> None:
    done = bastion(home, "policy", command, "nope", "write_file", "--reason", "r", "--config", str(config))
    assert done.returncode == USAGE
    assert "fs, sh" in done.stderr
    assert json.loads(bastion(home, "policy", "kills", "--json").stdout) == []


def test_a_case_naming_a_server_that_is_not_configured_fails_the_file(home: Path, config: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text(
        '[[case]]\nserver = "fs"\ntool = "rm_rf"\nexpect = "deny"\n'
        '[[case]]\nserver = "fss"\ntool = "rm_rf"\nexpect = "deny"\n',
        encoding="utf-8",
    )
    done = bastion(home, "policy", "test", str(cases), "--config", str(config))
    assert done.returncode == USAGE, "a typo decided as an unknown server (deny) would pass a case expecting deny"
    assert "case[2].server" in done.stderr


def test_kills_lists_switched_off_tools_as_json(home: Path, config: Path) -> None:
    done = bastion(home, "policy", "kill", "fs", "write_file", "--reason", "incident 42", "--config", str(config))
    assert done.returncode == 0, done.stderr
    listed = bastion(home, "policy", "kills", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(row["server"], row["tool"], row["reason"]) for row in json.loads(listed.stdout)] == [
        ("fs", "write_file", "incident 42")
    ]

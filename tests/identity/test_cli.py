"""`bastion secrets` and `bastion identity` as a person uses them: values in by stdin only, never out,
every change an audit entry naming server, identity and version but never the value."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer

from bastion.cli import secrets
from tests.conftest import BASTION, child_env

pytestmark = pytest.mark.e2e

VALUE = "sk-live-CLI-NEVER-IN-CLEAR-93a7c1"
ROTATED = "sk-live-CLI-ROTATED-NEVER-IN-CLEAR-5be2"


def bastion(home: Path, cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASTION, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=child_env(home),
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory without a bastion.toml: secrets can be set before a config exists."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def audit_entries(home: Path, cwd: Path, kind: str) -> list[dict[str, Any]]:
    found = bastion(home, cwd, "audit", "search", "--kind", kind, "--json")
    assert found.returncode == 0, found.stderr
    return [json.loads(line) for line in found.stdout.splitlines()]


def no_value_anywhere(home: Path, *outputs: subprocess.CompletedProcess[str]) -> None:
    for done in outputs:
        assert VALUE not in done.stdout + done.stderr
        assert ROTATED not in done.stdout + done.stderr
    for file in home.rglob("*"):
        if file.is_file():
            assert VALUE.encode() not in file.read_bytes(), file
            assert ROTATED.encode() not in file.read_bytes(), file


def test_a_secret_set_from_stdin_is_listed_with_its_version_but_never_its_value(home: Path, workdir: Path) -> None:
    done = bastion(home, workdir, "secrets", "set", "mail", "API_KEY", stdin=VALUE + "\n")
    assert done.returncode == 0, done.stderr
    listed = bastion(home, workdir, "secrets", "list")
    assert listed.returncode == 0, listed.stderr
    assert "API_KEY" in listed.stdout
    as_json = bastion(home, workdir, "secrets", "list", "mail", "--json")
    [row] = json.loads(as_json.stdout)
    assert (row["server"], row["name"], row["version"], row["state"]) == ("mail", "API_KEY", 1, "live")
    assert "value" not in row
    no_value_anywhere(home, done, listed, as_json)


def test_a_value_cannot_be_given_on_the_command_line(home: Path, workdir: Path) -> None:
    positional = bastion(home, workdir, "secrets", "set", "mail", "API_KEY", VALUE, stdin=VALUE)
    option = bastion(home, workdir, "secrets", "set", "mail", "API_KEY", "--value", VALUE, stdin=VALUE)
    assert positional.returncode != 0
    assert option.returncode != 0
    helped = bastion(home, workdir, "secrets", "set", "--help")
    assert "--value" not in helped.stdout
    listed = bastion(home, workdir, "secrets", "list", "--json")
    assert json.loads(listed.stdout) == []


def test_an_empty_value_is_refused(home: Path, workdir: Path) -> None:
    done = bastion(home, workdir, "secrets", "set", "mail", "API_KEY", stdin="\n")
    assert done.returncode == 1
    assert json.loads(bastion(home, workdir, "secrets", "list", "--json").stdout) == []


def test_rotate_and_revoke_count_versions_and_every_change_is_recorded_without_its_value(
    home: Path, workdir: Path
) -> None:
    outputs = [
        bastion(home, workdir, "secrets", "set", "mail", "API_KEY", stdin=VALUE),
        bastion(home, workdir, "secrets", "rotate", "mail", "API_KEY", stdin=ROTATED),
        bastion(home, workdir, "secrets", "revoke", "mail", "API_KEY", "--reason", "leaked in a paste"),
    ]
    assert [done.returncode for done in outputs] == [0, 0, 0], [done.stderr for done in outputs]
    listed = bastion(home, workdir, "secrets", "list", "--json")
    [row] = json.loads(listed.stdout)
    assert (row["version"], row["state"]) == (2, "revoked")
    assert row["revoked"] is not None
    table = bastion(home, workdir, "secrets", "list")
    assert "revoked" in table.stdout
    entries = audit_entries(home, workdir, "secret.change")
    changes = sorted((e["change"], e["version"]) for e in entries)
    assert changes == [("revoke", 2), ("rotate", 2), ("set", 1)]
    identity = json.loads(bastion(home, workdir, "identity", "show", "mail", "--json").stdout)
    for entry in entries:
        assert entry["server"] == {"name": "mail", "id": identity["id"]}
        assert entry["secret"] == "API_KEY"
        assert entry["by"]
        assert VALUE not in json.dumps(entry)
        assert ROTATED not in json.dumps(entry)
    [revoked] = [e for e in entries if e["change"] == "revoke"]
    assert revoked["reason"] == "leaked in a paste"
    no_value_anywhere(home, *outputs, listed, table)


def test_rotating_or_revoking_a_secret_that_does_not_exist_fails(home: Path, workdir: Path) -> None:
    assert bastion(home, workdir, "secrets", "rotate", "mail", "API_KEY", stdin=VALUE).returncode == 1
    assert bastion(home, workdir, "secrets", "revoke", "mail", "API_KEY").returncode == 1
    assert audit_entries(home, workdir, "secret.change") == []


def test_a_server_missing_from_an_existing_config_is_a_config_error(home: Path, workdir: Path) -> None:
    (workdir / "bastion.toml").write_text('[servers.mail]\ncommand = "x"\n', encoding="utf-8")
    configured = bastion(home, workdir, "secrets", "set", "mail", "API_KEY", stdin=VALUE)
    assert configured.returncode == 0, configured.stderr
    unknown = bastion(home, workdir, "secrets", "set", "calendar", "API_KEY", stdin=VALUE)
    assert unknown.returncode == 2
    assert "calendar" in unknown.stderr
    assert bastion(home, workdir, "identity", "show", "calendar").returncode == 2
    missing = bastion(home, workdir, "secrets", "list", "--config", str(workdir / "missing.toml"))
    assert missing.returncode == 2


def test_identity_show_is_stable_and_rotate_changes_it_and_is_recorded(home: Path, workdir: Path) -> None:
    first = json.loads(bastion(home, workdir, "identity", "show", "mail", "--json").stdout)
    again = json.loads(bastion(home, workdir, "identity", "show", "mail", "--json").stdout)
    assert first == again
    assert first["id"].startswith("srv_")
    rotated = bastion(home, workdir, "identity", "rotate", "mail", "--reason", "yearly")
    assert rotated.returncode == 0, rotated.stderr
    now = json.loads(bastion(home, workdir, "identity", "show", "mail", "--json").stdout)
    assert now["id"] != first["id"]
    assert now["id"] in rotated.stdout
    [entry] = audit_entries(home, workdir, "identity.change")
    assert entry["server"] == {"name": "mail", "id": now["id"]}
    assert (entry["change"], entry["previous"], entry["reason"]) == ("rotate", first["id"], "yearly")
    assert (home / "identities" / "mail.key.1").exists()


def test_every_command_argument_and_option_has_help() -> None:
    for group in (secrets.app, secrets.identity_app):
        root = typer.main.get_group(group)
        assert root.help
        for name, command in root.commands.items():
            assert command.help, name
            for param in command.params:
                assert getattr(param, "help", None), f"{name} {param.name}"

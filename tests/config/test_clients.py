"""Client configs: import into bastion.toml without secrets, install and uninstall with backups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import BASTION

from bastion.config.clients import (
    ClientKind,
    import_servers,
    install,
    render_toml,
    uninstall,
    unwrap_entries,
    wrap_entries,
)
from bastion.config.load import parse_config
from bastion.errors import ClientConfigError

GITHUB_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
DESKTOP: dict[str, Any] = {
    "mcpServers": {
        "filesystem": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem@2026.8.31", "/srv/data"],
        },
        "github": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-github"],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": GITHUB_TOKEN, "LOG_LEVEL": "info"},
        },
        "tickets": {
            "type": "http",
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer sekrit-value"},
        },
    },
    "globalShortcut": "Ctrl+Space",
}
VSCODE: dict[str, Any] = {
    "inputs": [{"type": "promptString", "id": "key", "password": True}],
    "servers": {
        "time": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time"], "env": {"API_KEY": "${input:key}"}}
    },
}
CLAUDE_CODE: dict[str, Any] = {
    "mcpServers": {"git": {"command": "uvx", "args": ["mcp-server-git"]}},
    "projects": {
        "/home/me/app": {"mcpServers": {"git": {"command": "uvx", "args": ["mcp-server-git", "--repository", "."]}}}
    },
}


def test_importing_claude_desktop_keeps_servers_and_never_writes_secrets(tmp_path: Path) -> None:
    imported = import_servers(DESKTOP, None, tmp_path / "c.json")
    text = render_toml(imported.config, "imported")
    assert GITHUB_TOKEN not in text
    assert "sekrit-value" not in text
    config = parse_config(text)
    assert set(config.servers) == {"filesystem", "github", "tickets"}
    github = config.servers["github"]
    assert github.env == {"LOG_LEVEL": "info"}
    assert github.env_pass == ("GITHUB_PERSONAL_ACCESS_TOKEN",)
    assert config.servers["tickets"].bearer_token_env == "TICKETS_TOKEN"
    assert any("GITHUB_PERSONAL_ACCESS_TOKEN" in warning for warning in imported.warnings)


def test_importing_vscode_reads_its_servers_key_and_warns_about_inputs(tmp_path: Path) -> None:
    imported = import_servers(VSCODE, ClientKind.VSCODE, tmp_path / "mcp.json")
    assert imported.config.servers["time"].env_pass == ("API_KEY",)
    assert any("${input:key}" in warning for warning in imported.warnings)


def test_importing_claude_code_includes_project_servers_without_shadowing(tmp_path: Path) -> None:
    imported = import_servers(CLAUDE_CODE, ClientKind.CLAUDE_CODE, tmp_path / ".claude.json")
    assert set(imported.config.servers) == {"git", "git-app"}


def test_a_config_without_servers_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClientConfigError):
        import_servers({"theme": "dark"}, None, tmp_path / "x.json")


def test_wrapping_is_idempotent_and_unwrapping_restores_the_original() -> None:
    wrapped, changed, skipped = wrap_entries(DESKTOP, ClientKind.CLAUDE_DESKTOP, ["/opt/bastion/bin/bastion"])
    assert sorted(changed) == ["filesystem", "github"]
    assert skipped
    assert "tickets" in skipped[0]
    entry = wrapped["mcpServers"]["filesystem"]
    assert entry["command"] == "/opt/bastion/bin/bastion"
    assert entry["args"][:4] == ["wrap", "--name", "filesystem", "--"]
    again, changed_again, _ = wrap_entries(wrapped, ClientKind.CLAUDE_DESKTOP, ["/opt/bastion/bin/bastion"])
    assert changed_again == []
    assert again == wrapped
    restored, _ = unwrap_entries(wrapped, ClientKind.CLAUDE_DESKTOP)
    assert restored == DESKTOP


def test_install_keeps_a_backup_and_uninstall_restores_the_servers(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps(DESKTOP, indent=2), encoding="utf-8")
    os.chmod(path, 0o600)
    original = path.read_bytes()
    result = install(ClientKind.CLAUDE_DESKTOP, path, ["/usr/local/bin/bastion"], _now())
    assert result.backup is not None
    assert result.backup.read_bytes() == original
    assert path.stat().st_mode & 0o777 == 0o600
    installed = json.loads(path.read_text(encoding="utf-8"))
    assert installed["globalShortcut"] == "Ctrl+Space", "the rest of the file is untouched"
    uninstall(ClientKind.CLAUDE_DESKTOP, path, _now())
    assert json.loads(path.read_text(encoding="utf-8")) == DESKTOP


def test_a_file_that_does_not_parse_is_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {,}', encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ClientConfigError) as raised:
        install(ClientKind.CURSOR, path, ["bastion"], _now())
    assert "line 1" in str(raised.value)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.e2e
def test_an_installed_server_really_launches_through_bastion(tmp_path: Path) -> None:
    """Install into a client config, then launch the entry exactly as a client would."""
    notes = tmp_path / "notes"
    notes.mkdir()
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {"mcpServers": {"notes": {"command": sys.executable, "args": ["-m", "bastion.demo.server", str(notes)]}}}
        ),
        encoding="utf-8",
    )
    install(ClientKind.CURSOR, path, BASTION, _now())
    entry = json.loads(path.read_text(encoding="utf-8"))["mcpServers"]["notes"]
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}},
    }
    env = {**os.environ, "BASTION_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [entry["command"], *entry["args"]],
        input=json.dumps(init) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    reply = json.loads(done.stdout.splitlines()[0])
    assert reply["result"]["serverInfo"]["name"] == "bastion"


def test_the_import_command_writes_a_loadable_config(tmp_path: Path) -> None:
    source = tmp_path / "claude_desktop_config.json"
    source.write_text(json.dumps(DESKTOP), encoding="utf-8")
    out = tmp_path / "bastion.toml"
    env = {**os.environ, "BASTION_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [*BASTION, "import", str(source), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert GITHUB_TOKEN not in out.read_text(encoding="utf-8")
    assert "looks secret" in done.stderr
    assert set(parse_config(out.read_text(encoding="utf-8")).servers) == {"filesystem", "github", "tickets"}


def _now() -> datetime:
    return datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_directories_a_server_was_given_become_its_read_grants(tmp_path: Path) -> None:
    data = {
        "mcpServers": {
            "fs": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", str(tmp_path), "/no/such/dir"],
            }
        }
    }
    imported = import_servers(data, None, tmp_path / "c.json")
    assert imported.config.servers["fs"].fs_read == (str(tmp_path),)
    wrapped, changed, _skipped = wrap_entries(data, None, ["bastion"])
    assert changed == ["fs"]
    args = wrapped["mcpServers"]["fs"]["args"]
    assert args[args.index("--fs-read") + 1] == str(tmp_path)
    assert args.count("--fs-read") == 1

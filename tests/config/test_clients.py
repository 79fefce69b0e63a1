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
    MovedEnv,
    import_servers,
    install,
    read_client_config,
    render_toml,
    uninstall,
    unwrap_entries,
    wrap_entries,
)
from bastion.config.load import parse_config
from bastion.errors import ClientConfigError
from bastion.types import Secret

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


def test_wrapping_is_idempotent_and_unwrapping_from_the_backup_restores_the_original(tmp_path: Path) -> None:
    wrapped = wrap_entries(DESKTOP, ClientKind.CLAUDE_DESKTOP, ["/opt/bastion/bin/bastion"])
    assert sorted(wrapped.changed) == ["filesystem", "github"]
    assert len(wrapped.skipped) == 1
    assert "tickets" in wrapped.skipped[0]
    entry = wrapped.data["mcpServers"]["filesystem"]
    assert entry["command"] == "/opt/bastion/bin/bastion"
    assert entry["args"][:4] == ["wrap", "--name", "filesystem", "--"]
    again = wrap_entries(wrapped.data, ClientKind.CLAUDE_DESKTOP, ["/opt/bastion/bin/bastion"])
    assert again.changed == []
    assert again.moved == []
    assert again.data == wrapped.data
    backup = tmp_path / "claude_desktop_config.json.bastion-backup-20261124T120000Z"
    restored, how = unwrap_entries(wrapped.data, ClientKind.CLAUDE_DESKTOP, [(backup, DESKTOP["mcpServers"])])
    assert restored == DESKTOP
    assert {(entry.entry, entry.server, entry.backup) for entry in how} == {
        ("filesystem", "filesystem", backup),
        ("github", "github", backup),
    }


def test_wrapping_moves_env_values_out_of_the_entry_and_passes_references_through() -> None:
    data: dict[str, Any] = {
        "servers": {
            "gh": {
                "type": "stdio",
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-github"],
                "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": GITHUB_TOKEN, "KEY": "${input:key}", "HOME_DIR": "${env:HOME}"},
            },
            "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
        }
    }
    wrapped = wrap_entries(data, ClientKind.VSCODE, ["bastion"])
    assert GITHUB_TOKEN not in json.dumps(wrapped.data)
    gh = wrapped.data["servers"]["gh"]
    assert gh["env"] == {"KEY": "${input:key}", "HOME_DIR": "${env:HOME}"}, "the client fills these in"
    assert gh["args"][: gh["args"].index("--")] == ["wrap", "--name", "gh", "--env", "KEY", "--env", "HOME_DIR"]
    assert "env" not in wrapped.data["servers"]["time"]
    assert [(moved.entry, moved.server, sorted(moved.values)) for moved in wrapped.moved] == [
        ("gh", "gh", ["GITHUB_PERSONAL_ACCESS_TOKEN"]),
        ("time", "time", ["TZ"]),
    ]
    assert wrapped.moved[0].values["GITHUB_PERSONAL_ACCESS_TOKEN"] == Secret(GITHUB_TOKEN)
    assert GITHUB_TOKEN not in repr(wrapped.moved), "a moved value does not show itself"


def test_two_entries_that_tidy_to_one_name_get_their_own_servers_and_secrets() -> None:
    data = {
        "mcpServers": {
            "my server": {"command": "a", "env": {"TOKEN": "one"}},
            "my-server": {"command": "b", "env": {"TOKEN": "two"}},
        }
    }
    wrapped = wrap_entries(data, None, ["bastion"])
    assert [moved.server for moved in wrapped.moved] == ["my-server", "my-server-2"]
    assert wrapped.data["mcpServers"]["my-server"]["args"][2] == "my-server-2"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"command": "a", "env": ["TOKEN=x"]}, "its env is not an object"),
        ({"command": "a", "env": {"PORT": 8080}}, "its env 'PORT' is not a string"),
        ({"command": "a", "env": {"MY-TOKEN": "x"}}, "its env 'MY-TOKEN' is not an environment variable name"),
        ({"command": "a", "args": "--verbose"}, "its args is not a list"),
    ],
)
def test_an_entry_that_cannot_be_wrapped_is_skipped_with_the_reason(entry: dict[str, Any], reason: str) -> None:
    wrapped = wrap_entries({"mcpServers": {"bad": entry}}, None, ["bastion"])
    assert wrapped.changed == []
    assert len(wrapped.skipped) == 1
    assert wrapped.skipped[0].startswith(f"bad: {reason}")
    assert wrapped.data["mcpServers"]["bad"] == entry


def test_wrapping_claude_code_names_each_project_server_it_leaves_alone() -> None:
    wrapped = wrap_entries(CLAUDE_CODE, ClientKind.CLAUDE_CODE, ["bastion"])
    assert wrapped.changed == ["git"]
    assert len(wrapped.skipped) == 1
    assert wrapped.skipped[0].startswith("git of project /home/me/app: project-scoped servers are not rewritten")
    assert wrapped.data["projects"] == CLAUDE_CODE["projects"]
    assert wrap_entries(CLAUDE_CODE, ClientKind.CURSOR, ["bastion"]).skipped == []


def test_install_keeps_a_backup_and_uninstall_restores_the_servers(tmp_path: Path) -> None:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps(DESKTOP, indent=2), encoding="utf-8")
    os.chmod(path, 0o600)
    original = path.read_bytes()
    kept: list[MovedEnv] = []
    result = install(ClientKind.CLAUDE_DESKTOP, path, ["/usr/local/bin/bastion"], _now(), kept.extend)
    assert result.backup is not None
    assert result.backup.read_bytes() == original
    assert path.stat().st_mode & 0o777 == 0o600
    assert GITHUB_TOKEN not in path.read_text(encoding="utf-8")
    assert [(moved.server, sorted(moved.values)) for moved in kept] == [
        ("github", ["GITHUB_PERSONAL_ACCESS_TOKEN", "LOG_LEVEL"])
    ]
    installed = json.loads(path.read_text(encoding="utf-8"))
    assert installed["globalShortcut"] == "Ctrl+Space", "the rest of the file is untouched"
    undone = uninstall(ClientKind.CLAUDE_DESKTOP, path, _now(), _no_store)
    assert json.loads(path.read_text(encoding="utf-8")) == DESKTOP, "the backup gives the env back"
    assert undone.backup is not None
    assert undone.backup != result.backup, "a backup made in the same second does not replace another"
    assert result.backup.read_bytes() == original


def test_uninstall_without_a_backup_restores_the_command_and_the_stored_secrets(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(DESKTOP), encoding="utf-8")
    install(ClientKind.CURSOR, path, ["bastion"], _now(), lambda _moved: None)
    for backup in tmp_path.glob("mcp.json.bastion-backup-*"):
        backup.unlink()
    asked: list[str] = []

    def stored(server: str) -> dict[str, str]:
        asked.append(server)
        return {"GITHUB_PERSONAL_ACCESS_TOKEN": "rotated-in-bastion"} if server == "github" else {}

    result = uninstall(ClientKind.CURSOR, path, _now(), stored)
    github = json.loads(path.read_text(encoding="utf-8"))["mcpServers"]["github"]
    assert github == {**DESKTOP["mcpServers"]["github"], "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "rotated-in-bastion"}}
    assert sorted(asked) == ["filesystem", "github"]
    assert any("GITHUB_PERSONAL_ACCESS_TOKEN written back" in note for note in result.notes)


def test_a_failing_secret_store_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(DESKTOP), encoding="utf-8")
    before = path.read_bytes()

    def broken(_moved: object) -> None:
        raise ClientConfigError(path, "the store said no")

    with pytest.raises(ClientConfigError):
        install(ClientKind.CURSOR, path, ["bastion"], _now(), broken)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_a_file_that_does_not_parse_is_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {,}', encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ClientConfigError) as raised:
        install(ClientKind.CURSOR, path, ["bastion"], _now(), _refuse)
    assert "line 1" in str(raised.value)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


JSONC = """{
  // the servers Cursor starts
  "mcpServers": {
    "docs": {"command": "uvx", "args": ["mcp-docs", "--base", "https://example.com/a//b"],},
    /* time, pinned */
    "time": {"command": "uvx", "args": ["mcp-server-time==2026.10.19"]},
  },
}
"""


def test_jsonc_is_read_with_the_line_of_its_first_comment(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(JSONC, encoding="utf-8")
    read = read_client_config(path)
    assert read.comment_line == 2
    assert set(read.data["mcpServers"]) == {"docs", "time"}
    assert set(import_servers(read.data, ClientKind.CURSOR, path).config.servers) == {"docs", "time"}


def test_a_double_slash_inside_a_string_is_not_a_comment(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {"a": {"command": "x", "args": ["http://h//p", "\\"//"],},},}', encoding="utf-8")
    assert read_client_config(path).comment_line is None


def test_install_refuses_to_rewrite_a_file_with_comments_and_says_where(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(JSONC, encoding="utf-8")
    with pytest.raises(ClientConfigError) as raised:
        install(ClientKind.CURSOR, path, ["bastion"], _now(), _refuse)
    assert raised.value.path == path
    assert "line 2" in raised.value.message
    assert "remove the comments" in raised.value.fix
    assert path.read_text(encoding="utf-8") == JSONC
    assert list(tmp_path.iterdir()) == [path]


def test_a_commented_file_with_nothing_to_change_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(
        '// nothing here yet\n{"mcpServers": {"remote": {"url": "https://x.example/mcp"}}}', encoding="utf-8"
    )
    result = install(ClientKind.CURSOR, path, ["bastion"], _now(), _refuse)
    assert result.changed == []
    assert result.backup is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("[1, 2]", "is not a JSON object"),
        ('{"mcpServers": ["a"]}', "'mcpServers' is not an object"),
        ('{\n  "mcpServers": {\n    "a": {"command": "x"}\n    "b": {}\n  }\n}', "line 4"),
        (b"\xff\xfe{}", "is not UTF-8 text"),
    ],
)
def test_a_bad_client_file_is_a_clear_error(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "mcp.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ClientConfigError) as raised:
        install(ClientKind.CURSOR, path, ["bastion"], _now(), _refuse)
    assert message in raised.value.message
    assert raised.value.fix


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClientConfigError) as missing:
        read_client_config(tmp_path / "nope.json")
    assert missing.value.message == "does not exist"
    with pytest.raises(ClientConfigError) as directory:
        read_client_config(tmp_path)
    assert "cannot be read" in directory.value.message


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
    install(ClientKind.CURSOR, path, BASTION, _now(), _refuse)
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


def _no_store(_server: str) -> dict[str, str]:
    return {}


def _refuse(moved: object) -> None:
    assert moved == [], "nothing is moved"


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
    wrapped = wrap_entries(data, None, ["bastion"])
    assert wrapped.changed == ["fs"]
    args = wrapped.data["mcpServers"]["fs"]["args"]
    assert args[args.index("--fs-read") + 1] == str(tmp_path)
    assert args.count("--fs-read") == 1


def test_importing_an_entry_bastion_cannot_take_warns_and_skips_it(tmp_path: Path) -> None:
    data = {
        "mcpServers": {
            "good": {"command": "uvx", "args": ["mcp-server-time"]},
            "bad-ref": {"command": "x", "env": {"BAD-NAME": "${env:Y}"}},
            "bad-url": {"url": "ftp://files.example"},
        }
    }
    imported = import_servers(data, None, tmp_path / "mcp.json")
    assert set(imported.config.servers) == {"good"}
    assert any(warning.startswith("bad-ref: skipped, env_pass:") for warning in imported.warnings)
    assert any(warning.startswith("bad-url: skipped,") for warning in imported.warnings)

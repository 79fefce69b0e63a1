"""`bastion install` and `uninstall` as a user runs them: the real CLI on real client files,
then the rewritten entry launched exactly as the client would launch it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import mcp_types as mt
import pytest
from mcp import Client, StdioServerParameters

from bastion.cli.clients import bastion_command
from tests.conftest import BASTION, PYTHON, child_env

pytestmark = [pytest.mark.e2e]

ENV_ECHO = str(Path(__file__).parents[1] / "servers" / "env_echo.py")
SCRIPTS = Path(sysconfig.get_path("scripts"))
ALPHA_TOKEN = "alpha-token-4711-not-in-any-file"
BETA_TOKEN = "beta-token-0815-not-in-any-file"


def bastion(home: Path, *args: str, argv: list[str] = BASTION, **env: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, in its own BASTION_HOME, with `env` overriding the environment (PATH, HOME)."""
    return subprocess.run(
        [*argv, *args],
        capture_output=True,
        text=True,
        env={**child_env(home), **env},
        cwd=home.parent,
        timeout=120,
        check=False,
    )


def with_scripts() -> str:
    """PATH with this installation's scripts first: where `pip install` put the `bastion` entry point."""
    assert (SCRIPTS / "bastion").is_file(), f"no bastion entry point in {SCRIPTS}: pip install -e . first"
    return f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', os.defpath)}"


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def text(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


async def read_env(home: Path, entry: dict[str, Any], names: list[str]) -> dict[str, str]:
    """Launch a client entry as a client does (its command, args and env), then ask its server for variables."""
    params = StdioServerParameters(
        command=entry["command"], args=entry["args"], env={**child_env(home), **entry.get("env", {})}
    )
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        return {name: text(await client.call_tool("read_env", {"name": name})) for name in names}


ORIGINAL: dict[str, Any] = {
    "mcpServers": {
        "alpha": {"command": PYTHON, "args": [ENV_ECHO], "env": {"ALPHA_TOKEN": ALPHA_TOKEN, "LOG_LEVEL": "debug"}},
        "beta": {"command": PYTHON, "args": [ENV_ECHO], "env": {"BETA_TOKEN": BETA_TOKEN}},
    },
    "theme": "dark",
}


@pytest.mark.anyio
async def test_install_moves_env_secrets_into_the_store_and_only_their_server_gets_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = write(tmp_path / "mcp.json", ORIGINAL)
    done = bastion(home, "install", "--client", "cursor", "--config-path", str(config), PATH=with_scripts())
    assert done.returncode == 0, done.stderr
    assert "alpha: moved ALPHA_TOKEN, LOG_LEVEL into Bastion's secret store" in done.stderr
    assert "beta: moved BETA_TOKEN" in done.stderr
    for token in (ALPHA_TOKEN, BETA_TOKEN):
        assert token not in done.stdout + done.stderr, "values are never printed"
        assert token not in config.read_text(encoding="utf-8"), "the rewritten file holds no secret"
    entries = json.loads(config.read_text(encoding="utf-8"))["mcpServers"]
    assert entries["alpha"]["command"] == str(SCRIPTS / "bastion")
    assert entries["alpha"]["args"][:3] == ["wrap", "--name", "alpha"]
    assert "env" not in entries["alpha"]

    seen = await read_env(home, entries["alpha"], ["ALPHA_TOKEN", "LOG_LEVEL", "BETA_TOKEN"])
    assert seen == {"ALPHA_TOKEN": ALPHA_TOKEN, "LOG_LEVEL": "debug", "BETA_TOKEN": "<unset>"}
    seen = await read_env(home, entries["beta"], ["BETA_TOKEN", "ALPHA_TOKEN"])
    assert seen == {"BETA_TOKEN": BETA_TOKEN, "ALPHA_TOKEN": "<unset>"}

    listed = bastion(home, "secrets", "list", "alpha", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {(row["name"], row["version"]) for row in json.loads(listed.stdout)} == {
        ("ALPHA_TOKEN", 1),
        ("LOG_LEVEL", 1),
    }

    undone = bastion(home, "uninstall", "--client", "cursor", "--config-path", str(config))
    assert undone.returncode == 0, undone.stderr
    assert json.loads(config.read_text(encoding="utf-8")) == ORIGINAL, "the backup gives the secrets back"


def test_installing_twice_or_from_another_client_with_the_same_secret_stores_it_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cursor = write(tmp_path / "cursor.json", ORIGINAL)
    desktop = write(tmp_path / "desktop.json", {"mcpServers": {"alpha": ORIGINAL["mcpServers"]["alpha"]}})
    for client, path in (("cursor", cursor), ("claude-desktop", desktop)):
        done = bastion(home, "install", "--client", client, "--config-path", str(path), PATH=with_scripts())
        assert done.returncode == 0, done.stderr
    listed = json.loads(bastion(home, "secrets", "list", "alpha", "--json").stdout)
    assert [row["version"] for row in listed] == [1, 1]


def test_a_different_secret_already_stored_for_that_server_stops_install_and_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert (
        bastion(
            home, "install", "--client", "cursor", "--config-path", str(write(tmp_path / "a.json", ORIGINAL))
        ).returncode
        == 0
    )
    other = {
        "mcpServers": {"alpha": {"command": PYTHON, "args": [ENV_ECHO], "env": {"ALPHA_TOKEN": "gamma-token-9999"}}}
    }
    path = write(tmp_path / "b.json", other)
    before = path.read_bytes()
    done = bastion(home, "install", "--client", "claude-desktop", "--config-path", str(path))
    assert done.returncode == 2
    assert "another ALPHA_TOKEN for server alpha" in done.stderr
    assert "bastion secrets rotate alpha ALPHA_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr
    assert "gamma-token-9999" not in done.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("b.json")) == ["b.json"]


JSONC = """// Cursor's MCP servers
{
  "mcpServers": {
    /* the time server, pinned */
    "time": {
      "command": "uvx",
      "args": ["mcp-server-time==2026.10.19",],  // trailing comma, as editors allow
      "env": {"TZ": "Europe/Berlin", "DOCS": "https://example.com/a//b"},
    },
  },
}
"""


def test_import_reads_jsonc_and_install_refuses_to_drop_its_comments(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = tmp_path / "mcp.json"
    source.write_text(JSONC, encoding="utf-8")
    out = tmp_path / "bastion.toml"
    imported = bastion(home, "import", str(source), "--out", str(out))
    assert imported.returncode == 0, imported.stderr
    assert "time" in out.read_text(encoding="utf-8")

    refused = bastion(home, "install", "--client", "cursor", "--config-path", str(source))
    assert refused.returncode == 2
    assert f"{source}: has comments (the first on line 1)" in refused.stderr
    assert "remove the comments" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert source.read_text(encoding="utf-8") == JSONC
    assert not (home / "secrets.db").exists(), "nothing moved for a rewrite that did not happen"


def test_install_rewrites_jsonc_with_trailing_commas_but_no_comments(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = tmp_path / "mcp.json"
    source.write_text('{"servers": {"time": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time",],},},}')
    done = bastion(home, "install", "--client", "vscode", "--config-path", str(source), PATH=with_scripts())
    assert done.returncode == 0, done.stderr
    entry = json.loads(source.read_text(encoding="utf-8"))["servers"]["time"]
    assert entry["args"][-3:] == ["--", "uvx", "mcp-server-time"]


def test_install_never_names_another_installations_bastion_on_path(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "bastion"
    shim.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    shim.chmod(0o755)
    config = write(tmp_path / "mcp.json", {"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}}})
    done = bastion(
        tmp_path / "home",
        "install",
        "--client",
        "cursor",
        "--config-path",
        str(config),
        PATH=f"{shims}{os.pathsep}{os.defpath}",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(config.read_text(encoding="utf-8"))["mcpServers"]["time"]["command"] == str(SCRIPTS / "bastion")
    assert f"the `bastion` on PATH ({shim}) belongs to another installation" in done.stderr
    assert sys.executable not in config.read_text(encoding="utf-8")


def test_install_keeps_the_path_name_of_this_installations_bastion(tmp_path: Path) -> None:
    links = tmp_path / "bin"
    links.mkdir()
    (links / "bastion").symlink_to(SCRIPTS / "bastion")
    config = write(tmp_path / "mcp.json", {"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}}})
    done = bastion(
        tmp_path / "home",
        "install",
        "--client",
        "cursor",
        "--config-path",
        str(config),
        PATH=f"{links}{os.pathsep}{os.defpath}",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(config.read_text(encoding="utf-8"))["mcpServers"]["time"]["command"] == str(links / "bastion")
    assert "warning" not in done.stderr


@pytest.mark.parametrize("started_as", ["entry point", "python -m"])
def test_without_bastion_on_path_install_names_this_installations_entry_point(tmp_path: Path, started_as: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    config = write(tmp_path / "mcp.json", {"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}}})
    argv = [str(SCRIPTS / "bastion")] if started_as == "entry point" else BASTION
    done = bastion(
        tmp_path / "home", "install", "--client", "cursor", "--config-path", str(config), argv=argv, PATH=str(empty)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(config.read_text(encoding="utf-8"))["mcpServers"]["time"]["command"] == str(SCRIPTS / "bastion")
    assert "warning" not in done.stderr


def test_install_for_claude_code_names_the_project_servers_it_leaves_alone(tmp_path: Path) -> None:
    fake_home = tmp_path / "user"
    fake_home.mkdir()
    write(
        fake_home / ".claude.json",
        {
            "mcpServers": {"git": {"command": "uvx", "args": ["mcp-server-git"]}},
            "projects": {
                "/home/me/app": {"mcpServers": {"db": {"command": "uvx", "args": ["mcp-server-sqlite"]}}},
                "/home/me/site": {"mcpServers": {"docs": {"type": "http", "url": "https://docs.example/mcp"}}},
                "/home/me/empty": {"mcpServers": {}},
            },
        },
    )
    done = bastion(tmp_path / "home", "install", "--client", "claude-code", PATH=with_scripts(), HOME=str(fake_home))
    assert done.returncode == 0, done.stderr
    assert "skipped db of project /home/me/app: project-scoped servers are not rewritten" in done.stderr
    assert "skipped docs of project /home/me/site" in done.stderr
    assert "/home/me/empty" not in done.stderr
    assert "git now launch through Bastion" in done.stdout
    installed = json.loads((fake_home / ".claude.json").read_text(encoding="utf-8"))
    assert installed["projects"]["/home/me/app"]["mcpServers"]["db"]["command"] == "uvx"


def test_only_without_any_entry_point_does_install_fall_back_to_this_python_and_say_so(tmp_path: Path) -> None:
    command, warning = bastion_command(str(tmp_path), str(tmp_path / "__main__.py"), tmp_path)
    assert command == [sys.executable, "-m", "bastion"]
    assert warning is not None
    assert "no `bastion` entry point found" in warning

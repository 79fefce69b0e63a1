"""The commands that run a gateway (`wrap`, `run`, `serve`, `dashboard`): what `wrap`'s flags become,
and that a bad configuration stops each of them before anything starts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli.gateway import wrap_config
from bastion.cli.main import app
from bastion.config.model import ToolRules
from bastion.errors import ConfigError


@pytest.fixture(autouse=True)
def logging_restored(home: Path) -> Iterator[None]:
    """The commands install Bastion's stderr logging; later tests get the logging they had."""
    loggers = [logging.getLogger(), logging.getLogger("bastion.announce")]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    yield
    for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def wrapped(command: list[str], name: str | None = None) -> str:
    config = wrap_config(command, name=name, rules=ToolRules(), fs_read=(), fs_write=(), network=None, env_pass=())
    [server] = config.servers
    return server


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["npx", "-y", "@modelcontextprotocol/server-filesystem@2026.8.31", "/srv"], "filesystem"),
        (["uvx", "mcp-server-git", "--repository", "."], "git"),
        (["python3", "tools/notes_server.py"], "notes_server"),
        (["/usr/local/bin/my.weird server!"], "my-weird-server"),
        (["node", "!!!"], "server"),
    ],
)
def test_a_wrapped_server_is_named_after_its_package_or_script(command: list[str], name: str) -> None:
    assert wrapped(command) == name


def test_wraps_flags_become_the_config_a_file_would_give() -> None:
    config = wrap_config(
        ["srv", "--port", "1"],
        name="files",
        rules=ToolRules(deny=("rm",), approve=("write",)),
        read_only=True,
        grants=("write",),
        fs_read=("/srv",),
        fs_write=("/srv/out",),
        network=False,
        env_pass=("TOKEN",),
        protocol="2025-11-25",
    )
    server = config.servers["files"]
    assert (server.command, server.args) == ("srv", ("--port", "1"))
    assert (server.tools.deny, server.tools.approve, server.grants) == (("rm",), ("write",), ("write",))
    assert (server.fs_read, server.fs_write, server.env_pass, server.protocol) == (
        ("/srv",),
        ("/srv/out",),
        ("TOKEN",),
        "2025-11-25",
    )


def test_wrapping_nothing_or_an_unknown_capability_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        wrap_config([], name=None, rules=ToolRules(), fs_read=(), fs_write=(), network=None, env_pass=())
    with pytest.raises(ConfigError):
        wrap_config(["srv"], name=None, rules=ToolRules(), grants=("teleport",), fs_read=(), fs_write=(),
                    network=None, env_pass=())  # fmt: skip


def test_bastion_wrap_with_a_bad_flag_stops_before_starting_the_server(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    result = CliRunner().invoke(app, ["wrap", "--grant", "teleport", "--", "touch", str(marker)])
    assert isinstance(result.exception, ConfigError)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["run", "serve", "dashboard"])
def test_a_missing_config_file_stops_the_command(command: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [command, "--config", str(tmp_path / "absent.toml")])
    assert isinstance(result.exception, ConfigError)


def test_a_candidate_policy_that_does_not_load_stops_run(tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text('[servers.s]\ncommand = "srv"\n', encoding="utf-8")
    (tmp_path / "candidate.toml").write_text("[servers.s]\nunknown_key = 1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--candidate", str(tmp_path / "candidate.toml")])
    assert isinstance(result.exception, ConfigError)


def test_wrap_without_a_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["wrap"])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)

"""A gateway refuses to start on settings it would silently ignore: lint errors and what this
release cannot enforce yet, every problem named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config.load import parse_config
from bastion.errors import ConfigError
from bastion.policy.enforceable import check_enforceable


def test_a_config_with_only_warnings_may_start() -> None:
    check_enforceable(parse_config('[servers.s]\ncommand = "x"\nread_only = false\n'))


def test_a_root_that_is_not_a_directory_stops_the_gateway(tmp_path: Path) -> None:
    config = parse_config(f'[servers.s]\ncommand = "x"\nfs_read = ["{tmp_path / "missing"}"]\n')
    with pytest.raises(ConfigError) as raised:
        check_enforceable(config)
    [problem] = raised.value.problems
    assert problem.location == "servers.s.fs_read"


def test_the_newest_protocol_to_a_remote_server_is_refused_until_supported() -> None:
    config = parse_config('[servers.r]\nurl = "https://mcp.example/mcp"\nprotocol = "2026-07-28"\n')
    with pytest.raises(ConfigError) as raised:
        check_enforceable(config)
    assert [problem.location for problem in raised.value.problems] == ["servers.r.protocol"]
    check_enforceable(parse_config('[servers.r]\nurl = "https://mcp.example/mcp"\nprotocol = "auto"\n'))


def test_a_disabled_server_is_not_held_to_what_cannot_be_enforced() -> None:
    toml = '[servers.r]\nurl = "https://mcp.example/mcp"\nprotocol = "2026-07-28"\nenabled = false\n'
    check_enforceable(parse_config(toml))


def test_every_problem_is_named_in_one_error(tmp_path: Path) -> None:
    toml = (
        f'[servers.s]\ncommand = "x"\nfs_read = ["{tmp_path / "a"}"]\nfs_write = ["{tmp_path / "b"}"]\n'
        '[servers.r]\nurl = "https://mcp.example/mcp"\nprotocol = "2026-07-28"\n'
    )
    with pytest.raises(ConfigError) as raised:
        check_enforceable(parse_config(toml))
    assert [problem.location for problem in raised.value.problems] == [
        "servers.s.fs_read",
        "servers.s.fs_write",
        "servers.r.protocol",
    ]

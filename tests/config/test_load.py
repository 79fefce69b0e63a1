"""bastion.toml errors name the file, the line, the field and the fix; the starter loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config.load import load_config, parse_config
from bastion.config.starter import starter_toml
from bastion.errors import ConfigError


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, Path("bastion.toml"))
    return [(p.location, p.line, p.fix) for p in raised.value.problems]


def test_the_starter_config_loads() -> None:
    config = parse_config(starter_toml())
    assert "filesystem" in config.servers


def test_an_unknown_key_names_its_line_and_suggests_a_fix() -> None:
    [(location, line, fix)] = problems('[gateway]\ninstance = "x"\n\n[servers.fs]\ncommand = "npx"\nargz = ["-y"]\n')
    assert location == "servers.fs.argz"
    assert line == 6
    assert "spelling" in fix


def test_a_wrong_type_names_its_line() -> None:
    [(location, line, _fix)] = problems('[servers.fs]\ncommand = "npx"\nstartup_timeout = "soon"\n')
    assert location == "servers.fs.startup_timeout"
    assert line == 3


def test_a_syntax_error_names_its_line() -> None:
    [(location, line, _fix)] = problems('[servers.fs]\ncommand = "npx\n')
    assert location == "syntax"
    assert line == 2


def test_a_server_needs_exactly_one_of_command_and_url() -> None:
    assert problems('[servers.fs]\ncommand = "npx"\nurl = "https://x"\n')[0][0] == "servers.fs"
    assert problems("[servers.fs]\nargs = []\n")[0][0] == "servers.fs"


def test_a_namespace_without_both_placeholders_is_refused() -> None:
    [(location, line, _fix)] = problems('[gateway]\nnamespace = "{tool}"\n')
    assert location == "gateway.namespace"
    assert line == 2


def test_open_http_is_a_plain_bool_and_server_names_are_checked() -> None:
    assert problems('[servers."bad name"]\ncommand = "x"\n')[0][0] == "servers"


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "bastion.toml")
    assert "bastion init" in raised.value.problems[0].fix

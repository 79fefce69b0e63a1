"""The starter `bastion.toml` that `bastion init` writes: the schema directive first, then a config that loads."""

from __future__ import annotations

import tomllib

from bastion.config.load import parse_config
from bastion.config.schema import SCHEMA_DIRECTIVE
from bastion.config.starter import starter_toml


def test_the_first_line_names_the_schema_for_editors() -> None:
    lines = starter_toml().splitlines()
    assert lines[0] == SCHEMA_DIRECTIVE
    assert lines[1] == ""


def test_the_starter_keeps_the_defaults_that_make_bastion_safe() -> None:
    config = parse_config(starter_toml())
    server = config.servers["filesystem"]
    assert server.read_only
    assert server.grants == ()
    assert server.fs_read == ()
    assert not config.http.open
    assert config.http.listen == "127.0.0.1:8765"


def test_the_remote_server_example_is_commented_out() -> None:
    data = tomllib.loads(starter_toml())
    assert set(data["servers"]) == {"filesystem"}
    assert '# url = "https://mcp.example.com/mcp"' in starter_toml()


def test_every_table_the_starter_writes_is_a_section_the_models_know() -> None:
    data = tomllib.loads(starter_toml())
    assert set(data) == {"gateway", "audit", "http", "servers"}
    assert data["audit"] == {}

"""A tool as policy sees it: its risk, its declared arguments, and which of them hold what."""

from __future__ import annotations

from typing import Any

from bastion.config.model import ArgumentKinds
from bastion.policy.profile import ArgKind, profile_tool, recognise
from bastion.types import RiskClass

NONE = ArgumentKinds()


def tool(name: str, description: str = "", additional: object = False, **properties: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if additional is not None:
        schema["additionalProperties"] = additional
    return {"name": name, "description": description, "inputSchema": schema}


def test_arguments_are_recognised_by_name_suffix_and_url_format() -> None:
    profile = profile_tool(
        tool("fetch", target_dir={}, homepage={"format": "uri"}, callback_url={}, cmd={}, title={}), NONE
    )
    assert dict(profile.kinds) == {
        "target_dir": ArgKind.PATH,
        "homepage": ArgKind.URL,
        "callback_url": ArgKind.URL,
        "cmd": ArgKind.COMMAND,
    }
    assert profile.declared == frozenset({"target_dir", "homepage", "callback_url", "cmd", "title"})


def test_a_query_is_sql_only_where_the_tool_or_server_speaks_sql() -> None:
    assert recognise("query", None, speaks_sql=False) is None
    assert recognise("QUERY", None, speaks_sql=True) is ArgKind.SQL
    assert profile_tool(tool("search", "Full-text search", query={}), NONE).kinds == {}
    assert profile_tool(tool("run", "Run a PostgreSQL statement", query={}), NONE).kinds == {"query": ArgKind.SQL}
    assert profile_tool(tool("search", query={}), NONE, sql_server=True).kinds == {"query": ArgKind.SQL}


def test_the_servers_kinds_add_and_plain_removes_for_one_tool_or_all() -> None:
    kinds = ArgumentKinds(url=("mirror",), path=("copy.to",), plain=("notes.file",))
    copy = profile_tool(tool("copy", to={}, mirror={}), kinds)
    assert dict(copy.kinds) == {"to": ArgKind.PATH, "mirror": ArgKind.URL}
    notes = profile_tool(tool("notes", to={}, file={}), kinds)
    assert dict(notes.kinds) == {"mirror": ArgKind.URL}
    assert notes.plain == frozenset({"file"})


def test_a_command_tools_argument_list_is_its_argv() -> None:
    profile = profile_tool(tool("launch", command={}, args={}), NONE)
    assert dict(profile.kinds) == {"command": ArgKind.COMMAND, "args": ArgKind.ARGV}
    assert profile.command_names
    assert profile_tool(tool("greet", args={}), NONE).kinds == {}


def test_a_shell_server_makes_every_tool_one_that_runs_commands() -> None:
    assert not profile_tool(tool("greet", "Says hello"), NONE).runs_commands
    shell = profile_tool(tool("greet", "Says hello"), NONE, shell_server=True)
    assert shell.runs_commands
    assert shell.command_names


def test_an_override_sets_the_risk_class() -> None:
    assert profile_tool(tool("read_file", path={}), NONE).risk is RiskClass.READ
    assert profile_tool(tool("read_file", path={}), NONE, RiskClass.DESTRUCTIVE).risk is RiskClass.DESTRUCTIVE


def test_a_definition_without_a_usable_name_or_schema_declares_nothing() -> None:
    profile = profile_tool({"name": 7, "inputSchema": "not an object"}, NONE)
    assert profile.name == ""
    assert profile.declared is None
    assert profile.schema is None
    assert not profile.open_schema
    assert profile_tool(tool("t", additional=True, x={}), NONE).open_schema
    assert not profile_tool(tool("t", additional=None, x={}), NONE).open_schema

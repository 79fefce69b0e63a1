"""What policy needs to know about one tool: its risk class, its declared arguments, and which
of them hold paths, URLs, SQL or commands.

Argument kinds are recognised by name (and, for URLs, by the schema's `format`), extended and
corrected per server in `[servers.NAME.arguments]`. Names only add checks: every string of a
call is also judged by its content (`leaves.py`), declared or not. Recognition is a heuristic that errs
towards checking: a `query` argument counts as SQL only when the tool speaks of SQL or the
server has `[servers.NAME.sql]` configured, so a search box is not parsed as a statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bastion.config.model import ArgumentKinds
from bastion.policy.commands import runs_commands
from bastion.policy.git import is_git_tool
from bastion.policy.risk import classify
from bastion.policy.schema import SchemaCheck, compile_schema
from bastion.types import RiskClass

__all__ = ["ArgKind", "ToolProfile", "profile_tool", "recognise"]


class ArgKind(StrEnum):
    PATH = "path"
    URL = "url"
    SQL = "sql"
    COMMAND = "command"
    ARGV = "argv"
    """The separate argument list of a command tool (`args`, `argv`)."""


PATH_NAMES = frozenset(
    {
        "path", "paths", "file", "files", "filename", "filepath", "file_path", "dir", "dirs", "directory",
        "dirname", "folder", "source", "destination", "src", "dst", "dest", "root", "cwd", "workdir",
        "working_dir", "working_directory", "repo", "repo_path", "target_path",
    }
)  # fmt: skip
PATH_SUFFIXES = ("_path", "_paths", "_dir", "_directory", "_file", "_folder")
URL_NAMES = frozenset({"url", "urls", "uri", "endpoint", "link", "href", "webhook", "base_url"})
URL_SUFFIXES = ("_url", "_uri", "_urls")
URL_FORMATS = frozenset({"uri", "url", "iri", "uri-reference", "iri-reference"})
SQL_NAMES = frozenset({"sql", "sql_query", "statement", "sql_statement"})
SQL_CONTEXT = re.compile(r"\b(sql|sqlite|postgres(ql)?|mysql|database|select)\b", re.IGNORECASE)
COMMAND_NAMES = frozenset({"command", "cmd", "commandline", "command_line", "shell_command"})
ARGV_NAMES = frozenset({"args", "argv", "arguments"})


@dataclass(frozen=True, slots=True)
class ToolProfile:
    """One tool as policy sees it; built once per listed definition."""

    name: str
    risk: RiskClass
    risk_reasons: tuple[str, ...]
    declared: frozenset[str] | None
    """Argument names the input schema declares; None when the schema declares none at all."""
    open_schema: bool
    """The schema explicitly allows undeclared arguments (`additionalProperties` not false)."""
    kinds: Mapping[str, ArgKind]
    """Kinds from declared names, the schema's formats and the server's overrides."""
    plain: frozenset[str] = frozenset()
    """Arguments `[servers.NAME.arguments] plain` exempts from every content check (audited opt-out)."""
    speaks_sql: bool = False
    """The tool or its server speaks SQL, so a `query` argument is a statement."""
    schema: SchemaCheck | None = field(default=None, compare=False)
    """The listed input schema, compiled (None: the tool lists none)."""
    runs_commands: bool = False
    """Its name or description says it runs or pings something, or its server runs a shell
    (`commands.shell = true`): shell syntax in any string is refused."""
    git: bool = False
    """It drives git: its refs, ranges, paths and URLs are judged as git reads them."""
    command_names: bool = False
    """A `command`/`cmd` key nested in its arguments (or in JSON inside a string) is a command line:
    the tool runs commands or takes a command argument. Elsewhere such a key is data, judged by content."""


def profile_tool(
    definition: Mapping[str, Any],
    kinds: ArgumentKinds,
    override: RiskClass | None = None,
    *,
    sql_server: bool = False,
    shell_server: bool = False,
) -> ToolProfile:
    """Classify a tool definition (as the server listed it) and find its constrained arguments.

    `shell_server`: the operator says the server hands command strings to a shell, so every tool
    of it is treated as one that runs commands."""
    name = definition.get("name")
    name = name if isinstance(name, str) else ""
    classification = classify(definition, override)
    schema = definition.get("inputSchema")
    properties: dict[str, Any] = {}
    open_schema = False
    if isinstance(schema, dict):
        raw = schema.get("properties")  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if isinstance(raw, dict):
            properties = {str(key): value for key, value in raw.items()}  # pyright: ignore[reportUnknownVariableType]
        open_schema = schema.get("additionalProperties") not in (None, False)  # pyright: ignore[reportUnknownMemberType]
    raw_description = definition.get("description")
    description = raw_description if isinstance(raw_description, str) else None
    speaks_sql = sql_server or bool(SQL_CONTEXT.search(f"{name} {description or ''}"))
    found: dict[str, ArgKind] = {}
    for arg, spec in properties.items():
        kind = recognise(arg, spec, speaks_sql=speaks_sql)
        if kind is not None:
            found[arg] = kind
    for kind_name in ("path", "url", "sql", "command"):
        for entry in getattr(kinds, kind_name):
            tool, _, arg = entry.rpartition(".")
            if not tool or tool == name:
                found[arg] = ArgKind(kind_name)
    plain: set[str] = set()
    for entry in kinds.plain:
        tool, _, arg = entry.rpartition(".")
        if not tool or tool == name:
            found.pop(arg, None)
            plain.add(arg)
    takes_command = any(kind is ArgKind.COMMAND for kind in found.values())
    if takes_command:
        for arg in properties:
            if arg in ARGV_NAMES:
                found[arg] = ArgKind.ARGV
    runs = shell_server or runs_commands(name, description)
    return ToolProfile(
        name,
        classification.risk,
        tuple(classification.reasons),
        frozenset(properties) if properties else None,
        open_schema,
        found,
        frozenset(plain),
        speaks_sql,
        compile_schema(schema),
        runs,
        is_git_tool(name, description),
        runs or takes_command,
    )


def recognise(arg: str, spec: object, *, speaks_sql: bool) -> ArgKind | None:
    """The kind an argument's name (and schema `format`) says it holds, or None."""
    lowered = arg.lower()
    fmt = spec.get("format") if isinstance(spec, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    if lowered in PATH_NAMES or lowered.endswith(PATH_SUFFIXES):
        return ArgKind.PATH
    if lowered in URL_NAMES or lowered.endswith(URL_SUFFIXES) or fmt in URL_FORMATS:
        return ArgKind.URL
    if lowered in SQL_NAMES or (speaks_sql and lowered == "query"):
        return ArgKind.SQL
    if lowered in COMMAND_NAMES:
        return ArgKind.COMMAND
    return None

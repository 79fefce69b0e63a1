"""Loading `bastion.toml` with errors that name the file, the line, the field and the fix."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bastion.config.model import BastionConfig
from bastion.errors import ConfigError, ConfigProblem

__all__ = ["find_line", "load_config", "parse_config", "validation_problems"]

_FIXES = {
    "extra_forbidden": "remove it, or check its spelling against docs/configuration.md",
    "missing": "add it",
    "bool_type": "write true or false",
    "int_type": "write a whole number",
    "float_type": "write a number",
    "string_type": "write a quoted string",
    "literal_error": "use one of the values listed",
    "greater_than": "use a larger number",
    "less_than_equal": "use a smaller number",
    "enum": "use one of the values listed",
}


def load_config(path: Path) -> BastionConfig:
    """Read and validate a config file; raise ConfigError naming every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path, [ConfigProblem("file", "does not exist", "run `bastion init` to write a starter config")]
        ) from None
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem("file", f"cannot be read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError(path, [ConfigProblem("file", "is not UTF-8 text", "save it as UTF-8")]) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | None = None) -> BastionConfig:
    import tomllib  # only where a file is read: `bastion wrap` builds its config from flags (issue 13 §5)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError(
            path, [ConfigProblem("syntax", str(exc), "fix the TOML syntax at that line", line=line)]
        ) from None
    try:
        return BastionConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, validation_problems(exc, text)) from None


def validation_problems(exc: ValidationError, text: str = "") -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        fix = _FIXES.get(error["type"], "")
        problems.append(ConfigProblem(".".join(loc) or "(top level)", message, fix, find_line(text, loc)))
    return problems


def find_line(text: str, loc: Sequence[str]) -> int | None:
    """Best line for a field path: the key's own line inside its table, else the table header."""
    if not text or not loc:
        return None
    lines = text.splitlines()
    table_path = list(loc[:-1])
    key = loc[-1]
    best: int | None = None
    # Try deepest table first: [servers.fs] then key "command"; fall back to shallower tables.
    for depth in range(len(table_path), -1, -1):
        header_line = _table_line(lines, table_path[:depth]) if depth else 0
        if header_line is None:
            continue
        inline_keys = [*table_path[depth:], key]
        found = _key_line(lines, header_line, inline_keys[0])
        if found is not None:
            return found
        if best is None and depth:
            best = header_line + 1
    return best


def _table_line(lines: list[str], path: list[str]) -> int | None:
    wanted = [p.strip('"') for p in path]
    for number, raw in enumerate(lines):
        stripped = raw.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            name = stripped.strip("[]").split("#")[0].strip()
            parts = [p.strip().strip('"').strip("'") for p in name.split(".")]
            if parts == wanted:
                return number
    return None


def _key_line(lines: list[str], start: int, key: str) -> int | None:
    pattern = re.compile(rf"^\s*(\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*[=.]")
    for number in range(start, len(lines)):
        if number > start and lines[number].strip().startswith("["):
            break
        if pattern.match(lines[number]):
            return number + 1
    return None


def _toml_error_line(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


def as_toml_data(config: BastionConfig) -> dict[str, Any]:
    """The config as plain data for writing back to TOML (defaults left out)."""
    return config.model_dump(mode="json", exclude_defaults=True)

"""Running the real `bastion` command the way a person does, in an 80-column terminal."""

from __future__ import annotations

import subprocess
from pathlib import Path

from rich.cells import cell_len

from tests.conftest import BASTION, child_env

WIDTH = 80
USAGE = 2
"""Bastion's exit code for a bad flag, argument or configuration."""


def bastion(home: Path, *args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`bastion ARGS…` with its own BASTION_HOME, its output piped, and COLUMNS=80."""
    env = {**child_env(home), "COLUMNS": str(WIDTH)}
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "BASTION_CONFIG", "BASTION_AUDIT_STORE"):
        env.pop(name, None)
    return subprocess.run(
        [*BASTION, *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False
    )


def on_one_line(output: str, *values: str) -> list[str]:
    """The values that no line of `output` holds whole (empty when every one is whole somewhere)."""
    lines = output.splitlines()
    return [value for value in values if not any(value in line for line in lines)]


def too_wide(output: str) -> list[str]:
    """The lines wider than the terminal (a table that does not fit is cut by it)."""
    return [line for line in output.splitlines() if cell_len(line) > WIDTH]


def table_of(output: str) -> str:
    """The lines of the tables in `output` (other lines may be soft-wrapped by the terminal on purpose)."""
    return "\n".join(line for line in output.splitlines() if line[:1] in "┏┃┡│├└")

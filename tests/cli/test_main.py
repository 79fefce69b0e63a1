"""The CLI's one error boundary: a usage error is a short message and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion import __version__
from tests.cli.conftest import USAGE, bastion


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["inventry"], "inventory"),
        (["install", "--client", "claud-desktop"], "claude-desktop"),
        (["wrap", "--grnt", "write", "--", "x"], "--grant"),
        (["audit", "tial"], "tail"),
        (["policy", "explain", "--servr", "fs"], "--server"),
        (["tokens", "create"], "--client"),
    ],
)
def test_a_typo_gets_a_usage_message_and_exit_2_not_a_traceback(home: Path, args: list[str], hint: str) -> None:
    done = bastion(home, *args)
    assert done.returncode == USAGE
    assert "Traceback" not in done.stderr
    assert hint in done.stderr
    assert done.stdout == ""


def test_shell_completion_is_offered(home: Path) -> None:
    done = bastion(home, "--show-completion", "bash")
    assert done.returncode == 0
    assert "complete" in done.stdout
    assert "--install-completion" in bastion(home, "--help").stdout


def test_version_and_help_exit_0(home: Path) -> None:
    assert bastion(home, "--version").stdout.strip() == f"bastion-mcp-gateway {__version__}"
    assert bastion(home, "--help").returncode == 0


def test_a_bastion_error_is_one_line_and_its_exit_code(home: Path, tmp_path: Path) -> None:
    done = bastion(home, "run", "--config", str(tmp_path / "missing.toml"))
    assert done.returncode == USAGE  # invalid configuration
    assert done.stderr.startswith("bastion: invalid configuration")
    assert "Traceback" not in done.stderr

"""The CLI's one error boundary: a usage error is a short message and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import typer
from typer.main import get_group

from bastion import __version__
from bastion.cli.main import app
from tests.cli.conftest import USAGE, bastion
from tests.conftest import PYTHON


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


def test_every_command_help_lists_is_one_its_module_registers_and_none_is_left_out() -> None:
    group = get_group(app)
    context = typer.Context(group)
    listed = group.list_commands(context)
    assert [name for name in listed if group.get_command(context, name) is None] == []
    assert sorted(group.commands) == sorted(listed)  # every module loaded now: nothing it adds is unlisted


@pytest.mark.parametrize("command", ["wrap", "run"])
def test_the_gateway_commands_load_only_their_own_module_and_not_rich(command: str) -> None:
    script = (
        "import sys, typer; from typer.main import get_group; from bastion.cli.main import app\n"
        f"group = get_group(app); assert group.get_command(typer.Context(group), {command!r}) is not None\n"
        "print(' '.join(sys.modules))"
    )
    done = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    loaded = done.stdout.split()
    assert sorted(name for name in loaded if name.startswith("bastion.cli.")) == [
        "bastion.cli._common",
        "bastion.cli._logging",
        "bastion.cli.gateway",
        "bastion.cli.main",
    ]
    assert [name for name in loaded if name.split(".")[0] in ("rich", "jinja2") or name == "bastion.doctor"] == []
    # Nor what only some gateways use (issue 13 §5): OpenTelemetry until something could have set a
    # tracer provider, urllib's HTTP client until a webhook, heartbeat or package registry is asked.
    assert [name for name in loaded if name.split(".")[0] == "opentelemetry"] == []
    assert [name for name in loaded if name in ("urllib.request", "http.client", "bastion.inventory.collect")] == []
    # Raw key bytes come from the key objects themselves, not cryptography's serialization module.
    assert "cryptography.hazmat.primitives.serialization" not in loaded
    # jsonschema until a schema or a call leaves the subset certified without it; IDNA's tables until
    # a host outside plain ASCII; cron parsing until a check has a schedule; TOML until a file is read.
    assert [name for name in loaded if name.split(".")[0] in ("jsonschema", "referencing", "attrs")] == []
    assert [name for name in loaded if name.split(".")[0] in ("idna", "cronsim", "tomllib", "getpass")] == []

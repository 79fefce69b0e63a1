"""`bastion doctor`: what works on this host for the configuration, and what to do about what does not."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from bastion.cli._common import JsonOption, setup_logging
from bastion.cli._console import console
from bastion.cli._listing import Listing
from bastion.doctor import Check, Diagnosis, Status, diagnose

__all__ = ["register"]

_STYLE = {Status.OK: None, Status.WARN: "yellow", Status.FAIL: "red"}
_WORD = {Status.OK: "ok", Status.WARN: "WARN", Status.FAIL: "FAIL"}


def register(app: typer.Typer) -> None:
    app.command()(doctor)


def doctor(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="BASTION_CONFIG",
            dir_okay=False,
            help="Path to bastion.toml (default: ./bastion.toml if there is one, else the defaults).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check this host for what the config needs: sandbox, state directory, keys, database, servers, sinks.

    Exits 0 when everything the config needs is present, else 1, with one line per problem and its fix.
    What the config does not need (Chromium when no PDF is made, the process limit) is reported as a warning.
    """
    setup_logging("error")
    found = diagnose(config, dict(os.environ))
    if as_json:
        typer.echo(json.dumps(_document(found), indent=2))
    elif console.is_terminal:
        _table(found)
    else:
        for check in found.checks:
            typer.echo(_line(check))
        typer.echo(_summary(found))
    raise typer.Exit(found.exit_code)


def _document(found: Diagnosis) -> dict[str, object]:
    return {
        "ok": found.exit_code == 0,
        "home": found.home,
        "config": found.config,
        "checks": [{**asdict(check), "status": check.status.value} for check in found.checks],
    }


def _line(check: Check) -> str:
    """One line per check; a problem's line ends with its fix."""
    fix = f" (fix: {check.fix})" if check.fix and check.status is not Status.OK else ""
    return f"{_WORD[check.status]:<4}  {check.name}: {check.detail}{fix}"


def _summary(found: Diagnosis) -> str:
    failed = sum(1 for c in found.checks if c.status is Status.FAIL)
    warned = sum(1 for c in found.checks if c.status is Status.WARN)
    if failed:
        return f"{failed} problem{'' if failed == 1 else 's'} to fix, {warned} warning{'' if warned == 1 else 's'}"
    return f"everything the config needs is here ({warned} warning{'' if warned == 1 else 's'})"


def _table(found: Diagnosis) -> None:
    console.print(f"state: {found.home}", markup=False, soft_wrap=True)
    console.print(f"config: {found.config or 'none (the defaults)'}", markup=False, soft_wrap=True)
    table = Listing("check", "status", "detail\nfix", keys=("check", "status"), lines=True)
    for check in found.checks:
        fix = f"\nfix: {check.fix}" if check.fix and check.status is not Status.OK else ""
        table.add(check.name, check.status.value, check.detail + fix, style=_STYLE[check.status])
    console.print(table)
    style = "bold red" if found.exit_code else "green"
    console.print(Text(_summary(found), style=style))

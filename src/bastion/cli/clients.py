"""`bastion init`, `import`, `install`, `uninstall`: from client configs to Bastion and back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bastion.config.starter import starter_toml
from bastion.errors import ConfigError, ConfigProblem

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(init)


def init(
    path: Annotated[Path, typer.Option("--path", help="Where to write the config.")] = Path("bastion.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter bastion.toml."""
    if path.exists() and not force:
        raise ConfigError(path, [ConfigProblem("file", "already exists", "pass --force to overwrite it")])
    path.write_text(starter_toml(), encoding="utf-8")
    typer.echo(f"wrote {path}; edit it, then run `bastion inventory --config {path}`")

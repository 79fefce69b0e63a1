"""What every command shares: the console, logging to stderr, config and store opening."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bastion.cli._logging import install_logging
from bastion.config.load import load_config
from bastion.config.model import BastionConfig
from bastion.store.home import bastion_home, ensure_home
from bastion.store.sqlite import StateStore

__all__ = [
    "ConfigOption",
    "JsonOption",
    "console",
    "err_console",
    "home",
    "open_store",
    "read_config",
    "setup_logging",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", envvar="BASTION_CONFIG", help="Path to bastion.toml.", show_default=True, dir_okay=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (one document, on standard output).")]


def setup_logging(level: str) -> None:
    """Log to stderr only (on a stdio front, stdout belongs to the protocol), as text or JSON lines
    as `--log-format` chose."""
    install_logging(level)


def read_config(path: Path) -> BastionConfig:
    return load_config(path)


def home() -> Path:
    """BASTION_HOME, created private to this user."""
    return ensure_home(bastion_home(os.environ))


def open_store() -> StateStore:
    return StateStore.open(home())

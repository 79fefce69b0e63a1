"""`bastion init`, `import`, `install`, `uninstall`: from client configs to Bastion and back."""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from bastion.cli._common import console, err_console
from bastion.config.clients import ClientKind, default_config_path, import_servers, render_toml
from bastion.config.clients import install as install_client
from bastion.config.clients import uninstall as uninstall_client
from bastion.config.load import parse_config
from bastion.config.starter import starter_toml
from bastion.errors import ClientConfigError, ConfigError, ConfigProblem

__all__ = ["register"]

ClientOption = Annotated[ClientKind, typer.Option("--client", help="Which client's config to change.")]
PathOption = Annotated[
    Path | None, typer.Option("--config-path", help="The client's config file (default: its usual place).")
]


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command("import")(import_config)
    app.command()(install)
    app.command()(uninstall)


def init(
    path: Annotated[Path, typer.Option("--path", help="Where to write the config.")] = Path("bastion.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter bastion.toml."""
    if path.exists() and not force:
        raise ConfigError(path, [ConfigProblem("file", "already exists", "pass --force to overwrite it")])
    path.write_text(starter_toml(), encoding="utf-8")
    typer.echo(f"wrote {path}; edit it, then run `bastion inventory --config {path}`")


def import_config(
    source: Annotated[
        Path, typer.Argument(help="A client's MCP config (claude_desktop_config.json, .mcp.json, mcp.json …).")
    ],
    out: Annotated[Path, typer.Option("--out", help="The bastion.toml to write.")] = Path("bastion.toml"),
    client: Annotated[ClientKind | None, typer.Option("--client", help="The client (default: detected).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing bastion.toml.")] = False,
) -> None:
    """Read an existing client config's servers into bastion.toml (secrets are named, never copied)."""
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClientConfigError(source, "does not exist", "pass the path of the client's MCP config") from None
    except json.JSONDecodeError as exc:
        raise ClientConfigError(
            source, f"is not valid JSON (line {exc.lineno}, column {exc.colno})", "fix the file first"
        ) from None
    if out.exists() and not force:
        raise ConfigError(
            out, [ConfigProblem("file", "already exists", "pass --force to overwrite it, or --out elsewhere")]
        )
    imported = import_servers(data, client, source)
    text = render_toml(
        imported.config, f"Imported by `bastion import` from {source}.\nReference: docs/configuration.md"
    )
    parse_config(text, out)  # what we write must load
    out.write_text(text, encoding="utf-8")
    for warning in imported.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    typer.echo(f"wrote {out} with {len(imported.config.servers)} servers: {', '.join(imported.config.servers)}")


def _bastion_argv() -> list[str]:
    """How the client should launch Bastion: this installation's own executable, by absolute path."""
    found = shutil.which("bastion")
    if found:
        return [str(Path(found).resolve())]
    return [sys.executable, "-m", "bastion"]


def _path(client: ClientKind, config_path: Path | None) -> Path:
    return config_path or default_config_path(client, Path.home(), sys.platform, Path.cwd())


def install(client: ClientOption, config_path: PathOption = None) -> None:
    """Rewrite a client's config so every stdio server launches through `bastion wrap` (with a backup)."""
    result = install_client(client, _path(client, config_path), _bastion_argv(), datetime.now(UTC))
    for note in result.skipped:
        err_console.print(f"skipped {note}", markup=False)
    if not result.changed:
        typer.echo(f"{result.path}: nothing to change (already installed, or no stdio servers)")
        return
    console.print(f"{result.path}: {', '.join(result.changed)} now launch through Bastion", markup=False)
    console.print(f"backup: {result.backup}; undo with: bastion uninstall --client {client.value}", markup=False)
    typer.echo("restart the client to apply", err=True)


def uninstall(client: ClientOption, config_path: PathOption = None) -> None:
    """Undo `install`: every server wrapped by Bastion launches directly again (with a backup)."""
    result = uninstall_client(client, _path(client, config_path), datetime.now(UTC))
    if not result.changed:
        typer.echo(f"{result.path}: no server launches through Bastion")
        return
    console.print(
        f"{result.path}: {', '.join(result.changed)} launch directly again (backup: {result.backup})", markup=False
    )

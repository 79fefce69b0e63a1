"""`bastion init`, `import`, `install`, `uninstall`: from client configs to Bastion and back."""

from __future__ import annotations

import functools
import os
import shutil
import sys
import sysconfig
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from bastion.audit.entry import Kind, Record
from bastion.cli._common import home, record_entry, who
from bastion.cli._console import console, err_console
from bastion.cli.config import write_schema
from bastion.config.clients import (
    ClientKind,
    MovedEnv,
    default_config_path,
    import_servers,
    read_client_config,
    render_toml,
)
from bastion.config.clients import install as install_client
from bastion.config.clients import uninstall as uninstall_client
from bastion.config.load import parse_config
from bastion.config.model import BastionConfig
from bastion.config.schema import SCHEMA_NAME
from bastion.config.starter import starter_toml
from bastion.errors import ClientConfigError, ConfigError, ConfigProblem, SecretError
from bastion.files import current_mode, replace_atomically
from bastion.identity.secrets import SecretStore
from bastion.identity.servers import ServerIdentities

__all__ = ["bastion_command", "register"]

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
    write_config(path, starter_toml())
    # Beside it, the schema its first line names: editors (taplo, Even Better TOML) complete and check keys.
    schema = path.parent / SCHEMA_NAME
    write_schema(schema)
    typer.echo(f"wrote {path} (and {schema}, for editors); edit it, then run `bastion inventory --config {path}`")


def import_config(
    source: Annotated[
        Path, typer.Argument(help="A client's MCP config (claude_desktop_config.json, .mcp.json, mcp.json …).")
    ],
    out: Annotated[Path, typer.Option("--out", help="The bastion.toml to write.")] = Path("bastion.toml"),
    client: Annotated[ClientKind | None, typer.Option("--client", help="The client (default: detected).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing bastion.toml.")] = False,
) -> None:
    """Read an existing client config's servers into bastion.toml (secrets are named, never copied).

    JSON with comments and trailing commas (JSONC, as VS Code and Cursor write it) is read too."""
    data = read_client_config(source, "pass the path of the client's MCP config").data
    if out.exists() and not force:
        raise ConfigError(
            out, [ConfigProblem("file", "already exists", "pass --force to overwrite it, or --out elsewhere")]
        )
    imported = import_servers(data, client, source)
    text = render_toml(
        imported.config, f"Imported by `bastion import` from {source}.\nReference: docs/configuration.md"
    )
    parse_config(text, out)  # what we write must load
    write_config(out, text)
    for warning in imported.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    typer.echo(f"wrote {out} with {len(imported.config.servers)} servers: {', '.join(imported.config.servers)}")


def bastion_command(search_path: str | None, started_as: str, scripts: Path) -> tuple[list[str], str | None]:
    """How a client should launch Bastion, and a warning if only a fragile way was found.

    Bastion's installed entry point, by absolute path (a symlink such as pipx's is kept, not
    resolved): the one this process was started as, else the `bastion` on PATH when it is this
    installation's, else the one beside this interpreter. Another package may install a script
    called `bastion`, so one on PATH that is not ours is never written, only named in the warning.
    This interpreter itself only when there is no entry point: recreating its venv or upgrading
    Python would break every client.
    """
    started = Path(started_as)
    if started.name in ("bastion", "bastion.exe") and started.is_file():
        return [os.path.abspath(started)], None
    ours = next((beside for beside in (scripts / "bastion", scripts / "bastion.exe") if beside.is_file()), None)
    found = shutil.which("bastion", path=search_path)
    if found and ours and os.path.samefile(found, ours):
        return [os.path.abspath(found)], None
    other = f"; the `bastion` on PATH ({found}) belongs to another installation" if found else ""
    if ours:
        return [str(ours)], (f"clients will run {ours}{other}" if other else None)
    return [sys.executable, "-m", "bastion"], (
        f"no `bastion` entry point found in {scripts}{other}; the client will run "
        f"`{sys.executable} -m bastion`, which stops working if that Python or its venv is replaced"
    )


def _path(client: ClientKind, config_path: Path | None) -> Path:
    return config_path or default_config_path(client, Path.home(), sys.platform, Path.cwd())


def install(client: ClientOption, config_path: PathOption = None) -> None:
    """Rewrite a client's config so every stdio server launches through `bastion wrap` (with a backup).

    Each server's env values move into Bastion's secret store, for that server alone."""
    path = _path(client, config_path)
    command, warning = bastion_command(os.environ.get("PATH"), sys.argv[0], Path(sysconfig.get_path("scripts")))
    if warning:
        err_console.print(f"warning: {warning}", markup=False)
    keep = functools.partial(_keep_secrets, path)
    result = install_client(client, path, command, datetime.now(UTC), keep)
    for note in result.skipped:
        err_console.print(f"skipped {note}", markup=False)
    for note in result.notes:
        err_console.print(f"warning: {note}", markup=False)
    if not result.changed:
        typer.echo(f"{result.path}: nothing to change (already installed, or no stdio servers)")
        return
    for moved in result.moved:
        err_console.print(
            f"{moved.entry}: moved {', '.join(moved.values)} into Bastion's secret store; "
            f"only server {moved.server} gets them (see: bastion secrets list {moved.server})",
            markup=False,
        )
    console.print(f"{result.path}: {', '.join(result.changed)} now launch through Bastion", markup=False)
    console.print(f"backup: {result.backup}; undo with: bastion uninstall --client {client.value}", markup=False)
    typer.echo("restart the client to apply", err=True)


def _keep_secrets(path: Path, moved: Sequence[MovedEnv]) -> None:
    """Store the env values install takes out of a client's file, each server its own; every new value
    is an audit entry. A different value already stored for the same server stops the install."""
    if not moved:
        return
    store = SecretStore.open(home(), os.environ)
    try:
        new = [(entry, name) for entry in moved for name in entry.values if _is_new(store, path, entry, name)]
        identities = ServerIdentities(home())
        for entry, name in new:
            identity = identities.identity(entry.server)  # first: a broken identity stops an unrecorded change
            version = store.set(entry.server, name, entry.values[name], who(), time.time())
            fields: dict[str, Any] = {
                "server": {"name": entry.server, "id": identity.id},
                "secret": name,
                "version": version,
                "change": "set",
                "reason": f"moved out of {path} by bastion install",
                "by": who(),
            }
            anyio.run(record_entry, BastionConfig(), None, Record(Kind.SECRET_CHANGE, fields))
    finally:
        store.close()


def _is_new(store: SecretStore, path: Path, entry: MovedEnv, name: str) -> bool:
    """Whether the value must be stored: not if the store has it already; ClientConfigError if it has another."""
    try:
        current = store.current(entry.server, name)
    except SecretError as exc:
        raise ClientConfigError(
            path, f"{entry.entry}: {name} of server {entry.server} in Bastion's secret store {exc.detail}", exc.fix
        ) from None
    if current is None:
        return True
    if current == entry.values[name]:
        return False
    raise ClientConfigError(
        path,
        f"{entry.entry}: Bastion's secret store already has another {name} for server {entry.server}",
        f"if this is that server with a new value, run `bastion secrets rotate {entry.server} {name}` first; "
        "if it is another server, rename this entry",
    )


def uninstall(client: ClientOption, config_path: PathOption = None) -> None:
    """Undo `install`: every server wrapped by Bastion launches directly again, as the backup install
    made holds it (its env included), with a new backup."""
    result = uninstall_client(client, _path(client, config_path), datetime.now(UTC), _stored_secrets)
    if not result.changed:
        typer.echo(f"{result.path}: no server launches through Bastion")
        return
    for note in result.notes:
        err_console.print(note, markup=False)
    console.print(
        f"{result.path}: {', '.join(result.changed)} launch directly again (backup: {result.backup})", markup=False
    )


def _stored_secrets(server: str) -> dict[str, str]:
    """A server's live secrets, for an entry no backup holds as it was (revoked ones stay out)."""
    if not (home() / "secrets.db").exists():
        return {}
    store = SecretStore.open(home(), os.environ)
    try:
        live = [info.name for info in store.list(server) if info.revoked is None]
        return {name: value.reveal() for name in live if (value := store.current(server, name)) is not None}
    finally:
        store.close()


def write_config(path: Path, text: str) -> None:
    """A bastion.toml written whole or not at all; a new one is private (0600: it may name webhook
    URLs and tokens' environment variables), one that is replaced keeps its mode."""
    replace_atomically(path, text.encode("utf-8"), mode=current_mode(path, 0o600))

"""`bastion secrets` and `bastion identity`: each server's own secrets and identity.

A value is read from standard input (when it is not a terminal) or a hidden prompt, never
from the command line, where `ps` and shell history would keep it. Every change is an audit
entry naming the server, its identity, the secret and its version, never the value.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from bastion.audit.entry import Kind, Record
from bastion.cli._common import JsonOption, home, read_config, record_entry, who
from bastion.cli._console import console
from bastion.cli._listing import Listing
from bastion.config.model import BastionConfig
from bastion.errors import ConfigError, ConfigProblem, SecretError
from bastion.identity.secrets import SecretStore, check_secret_name, check_server_name
from bastion.identity.servers import ServerIdentities, ServerIdentity
from bastion.types import Secret

__all__ = ["app", "identity_app"]

app = typer.Typer(
    help="Each server's own secrets: encrypted at rest, injected only into that server's environment.",
    no_args_is_help=True,
)
identity_app = typer.Typer(
    help="Each server's own identity: an Ed25519 key pair whose id audit records name.", no_args_is_help=True
)

ServerArgument = Annotated[str, typer.Argument(help="The server, as named in bastion.toml.", show_default=False)]
NameArgument = Annotated[
    str, typer.Argument(help="The secret's name: the environment variable the server sees.", show_default=False)
]
ConfigPath = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="BASTION_CONFIG",
        dir_okay=False,
        help="bastion.toml, to check the server is configured and find the audit store (default: ./bastion.toml if it exists).",
    ),
]
StorePath = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="BASTION_AUDIT_STORE",
        help="Audit store: sqlite:PATH or postgresql://… (default: the config's).",
    ),
]
ReasonOption = Annotated[str | None, typer.Option(help="Why (recorded in the audit log).")]


def _config(path: Path | None, server: str | None) -> BastionConfig:
    """The config, or an empty one when no file exists yet; a configured server is required if it does."""
    if path is None and not Path("bastion.toml").exists():
        config, where = BastionConfig(), None
    else:
        where = path or Path("bastion.toml")
        config = read_config(where)
    if server is not None:
        check_server_name(server)
        if where is not None and server not in config.servers:
            fix = f"add [servers.{server}] to {where}, or use one of: {', '.join(config.servers) or '(none)'}"
            raise ConfigError(where, [ConfigProblem(f"servers.{server}", "is not configured", fix)])
    return config


def _read_value(server: str, name: str) -> Secret:
    """The value from standard input (one final newline dropped) or a hidden, confirmed prompt."""
    if sys.stdin.isatty():
        text = str(typer.prompt(f"value of {name} for {server}", hide_input=True, confirmation_prompt=True))
    else:
        text = sys.stdin.read()
        text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise SecretError(server, name, "an empty value was given", "pipe the value on standard input, or type it")
    return Secret(text)


def _record(config: BastionConfig, store: str | None, kind: Kind, fields: dict[str, Any]) -> None:
    anyio.run(record_entry, config, store, Record(kind, {**fields, "by": who()}))


def _change(
    server: str,
    name: str,
    config: BastionConfig,
    store: str | None,
    reason: str | None,
    change: str,
    apply: Callable[[SecretStore], int],
) -> int:
    """Apply a change to the secret store and record it; the identity is resolved first, so a
    broken identity key stops the change instead of leaving it unrecorded."""
    identity = ServerIdentities(home()).identity(server)
    secrets = SecretStore.open(home(), os.environ)
    try:
        version = apply(secrets)
    finally:
        secrets.close()
    fields: dict[str, Any] = {
        "server": {"name": server, "id": identity.id},
        "secret": name,
        "version": version,
        "change": change,
    }
    if reason:
        fields["reason"] = reason
    _record(config, store, Kind.SECRET_CHANGE, fields)
    return version


def _write(
    server: str, name: str, config_path: Path | None, store: str | None, reason: str | None, change: str
) -> None:
    config = _config(config_path, server)
    check_secret_name(server, name)
    value = _read_value(server, name)

    def apply(secrets: SecretStore) -> int:
        write = secrets.set if change == "set" else secrets.rotate
        return write(server, name, value, who(), time.time())

    version = _change(server, name, config, store, reason, change, apply)
    console.print(f"{server}: {name} is now version {version}", markup=False)


@app.command("set")
def set_secret(
    server: ServerArgument,
    name: NameArgument,
    config: ConfigPath = None,
    store: StorePath = None,
    reason: ReasonOption = None,
) -> None:
    """Set a server's secret from standard input or a hidden prompt (never from the command line)."""
    _write(server, name, config, store, reason, "set")


@app.command()
def rotate(
    server: ServerArgument,
    name: NameArgument,
    config: ConfigPath = None,
    store: StorePath = None,
    reason: ReasonOption = None,
) -> None:
    """Replace an existing secret with a new value; its version goes up and later records carry it."""
    _write(server, name, config, store, reason, "rotate")


@app.command()
def revoke(
    server: ServerArgument,
    name: NameArgument,
    reason: ReasonOption = None,
    config: ConfigPath = None,
    store: StorePath = None,
) -> None:
    """Erase a secret now; the server refuses to start until a new value is set."""
    loaded = _config(config, server)
    check_secret_name(server, name)
    version = _change(
        server, name, loaded, store, reason, "revoke", lambda secrets: secrets.revoke(server, name, who(), time.time())
    )
    console.print(
        f"{server}: {name} version {version} is revoked; set a new value before the server starts", markup=False
    )


@app.command("list")
def list_secrets(
    server: Annotated[str | None, typer.Argument(help="Only this server's secrets.", show_default=False)] = None,
    config: ConfigPath = None,
    as_json: JsonOption = False,
) -> None:
    """List secrets with their versions and states (never their values)."""
    _config(config, server)
    secrets = SecretStore.open(home(), os.environ)
    try:
        rows = secrets.list(server)
    finally:
        secrets.close()
    if as_json:
        typer.echo(json.dumps([{**asdict(row), "state": _state(row.revoked)} for row in rows], indent=2))
        return
    if not rows:
        console.print("no secrets yet; set one with `bastion secrets set SERVER NAME`", markup=False)
        return
    # The server and the secret's name (what `rotate` and `revoke` take) keep their width.
    table = Listing("server", "name", "version", "updated", keys=("server", "name"))
    for row in rows:
        table.add(row.server, row.name, f"{row.version} ({_state(row.revoked)})", f"{_when(row.updated)} by {row.by}")
    console.print(table)


@identity_app.command()
def show(server: ServerArgument, config: ConfigPath = None, as_json: JsonOption = False) -> None:
    """Show a server's identity (created on first use): its id and public key."""
    _config(config, server)
    _print_identity(ServerIdentities(home()).identity(server), as_json)


@identity_app.command("rotate")
def rotate_identity(
    server: ServerArgument, reason: ReasonOption = None, config: ConfigPath = None, store: StorePath = None
) -> None:
    """Give a server a new key pair; the old one is kept (retired) so past records stay attributable."""
    loaded = _config(config, server)
    identities = ServerIdentities(home())
    previous = identities.identity(server)
    current = identities.rotate(server)
    fields: dict[str, Any] = {
        "server": {"name": server, "id": current.id},
        "change": "rotate",
        "previous": previous.id,
        "public_key": current.public_key,
    }
    if reason:
        fields["reason"] = reason
    _record(loaded, store, Kind.IDENTITY_CHANGE, fields)
    _print_identity(current, as_json=False)


def _print_identity(identity: ServerIdentity, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(asdict(identity), indent=2))
        return
    console.print(
        f"server      {identity.server}\nid          {identity.id}\npublic key  {identity.public_key}", markup=False
    )


def _state(revoked: float | None) -> str:
    return "live" if revoked is None else "revoked"


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(moment))

"""`bastion tokens`: bearer tokens for clients of the HTTP front, stored hashed."""

from __future__ import annotations

import json
import os
import time
from typing import Annotated

import anyio
import typer

from bastion.audit.entry import Kind, Record
from bastion.cli._common import JsonOption, open_store, record_entry, who
from bastion.cli._console import console
from bastion.cli._durations import parse_duration
from bastion.cli._listing import Listing
from bastion.config.model import BastionConfig
from bastion.errors import ConfigError, ConfigProblem

__all__ = ["app"]

app = typer.Typer(help="Bearer tokens for clients of `bastion serve` (stored as SHA-256 hashes).", no_args_is_help=True)


@app.command()
def create(
    client: Annotated[str, typer.Option("--client", help="Name of the client (agent) the token identifies.")],
    servers: Annotated[
        str | None, typer.Option("--servers", help="Comma-separated servers this client may use (default: all).")
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime, e.g. 90d; default: no expiry.")] = None,
    role: Annotated[
        str, typer.Option(help="agent (an MCP client), or a dashboard role: admin, approver, auditor.")
    ] = "agent",
) -> None:
    """Create a token for a client and print it once; only its hash is kept."""
    if role not in ("agent", "admin", "approver", "auditor"):
        raise ConfigError(
            None, [ConfigProblem("--role", f"{role!r} is not a role", "use agent, admin, approver or auditor")]
        )
    now = time.time()
    expiry = now + parse_duration(expires, "--expires") if expires else None
    limited = tuple(name.strip() for name in servers.split(",") if name.strip()) if servers is not None else None
    token = open_store().create_token(client, now, expiry, limited, role)
    listed = list(limited) if limited is not None else None
    _record("token.created", client, {"servers": listed, "expires": expiry, "role": role})
    console.print(token, markup=False)
    typer.echo(
        f"Token for client {client!r} created; it is shown only now. Send it as 'Authorization: Bearer …'.", err=True
    )


@app.command("list")
def list_tokens(as_json: JsonOption = False) -> None:
    """List clients with tokens (never the tokens themselves)."""
    rows = open_store().tokens()
    if as_json:
        typer.echo(json.dumps([_row(row) for row in rows], indent=2))
        return
    if not rows:
        console.print("no tokens yet; create one with `bastion tokens create --client NAME`", markup=False)
        return
    # The client (what `revoke` takes) keeps its width; times wrap at their space, the server list anywhere.
    table = Listing("client", "role", "servers", "created", "expires", "state", keys=("client",))
    now = time.time()
    for row in rows:
        state = "revoked" if row.revoked else ("expired" if row.expires and row.expires <= now else "active")
        servers = ", ".join(row.servers) if row.servers is not None else "all"
        expiry = _when(row.expires) if row.expires else "never"
        table.add(row.client, row.role, servers, _when(row.created), expiry, state)
    console.print(table)


@app.command()
def revoke(client: Annotated[str, typer.Argument(help="The client whose token to revoke.")]) -> None:
    """Revoke a client's token at once; its next request is refused."""
    if not open_store().revoke_token(client, time.time()):
        raise ConfigError(
            None, [ConfigProblem("client", f"{client!r} has no active token", "see `bastion tokens list`")]
        )
    _record("token.revoked", client, {})
    typer.echo(f"revoked the token of {client!r}")


def _row(row: object) -> dict[str, object]:
    return {name: getattr(row, name) for name in ("client", "role", "servers", "created", "expires", "revoked")}


def _record(change: str, client: str, extra: dict[str, object]) -> None:
    """Issuing and revoking identities are audit entries (SOC 2 CC6.2)."""
    fields = {"change": change, "client": client, "by": who(), **extra}
    anyio.run(record_entry, BastionConfig(), os.environ.get("BASTION_AUDIT_STORE"), Record(Kind.CLIENT_CHANGE, fields))


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(moment))

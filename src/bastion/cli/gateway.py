"""Commands that run the gateway: `wrap` (one server, no config), `run` (stdio), `serve` (HTTP)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import anyio
import typer

from bastion.cli._common import ConfigOption, home, read_config, setup_logging
from bastion.config.model import BastionConfig, GatewayConfig, ServerConfig, ToolRules
from bastion.errors import ConfigError, ConfigProblem
from bastion.inventory.pins import LOCK_NAME
from bastion.policy.rollout import with_candidate
from bastion.runtime import run_stdio

__all__ = ["register", "wrap_config"]

LogLevel = Annotated[str, typer.Option("--log-level", envvar="BASTION_LOG_LEVEL", help="Log level (to stderr).")]
CandidateOption = Annotated[
    Path | None,
    typer.Option(
        "--candidate", help="A bastion.toml-shaped file whose policy is decided beside the live one and recorded."
    ),
]


def register(app: typer.Typer) -> None:
    app.command(context_settings={"allow_interspersed_args": False})(wrap)
    app.command()(run)
    app.command()(serve)
    app.command()(dashboard)


def wrap(
    command: Annotated[list[str], typer.Argument(help="The server's command and its arguments, after `--`.")],
    name: Annotated[str | None, typer.Option(help="Name of the server in records (default: from the command).")] = None,
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="Only these tools are listed and callable (repeat).")
    ] = None,
    deny: Annotated[list[str] | None, typer.Option("--deny", help="Hide and refuse this tool (repeat).")] = None,
    approve: Annotated[
        list[str] | None, typer.Option("--approve", help="Calls of this tool wait for a person (repeat).")
    ] = None,
    grant: Annotated[
        list[str] | None,
        typer.Option("--grant", help="Grant a capability beyond read: write, network, destructive or exec (repeat)."),
    ] = None,
    grant_tool: Annotated[
        list[str] | None, typer.Option("--grant-tool", help="Allow this tool whatever its risk class (repeat).")
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only/--no-read-only", help="Only read tools unless granted (default: on).")
    ] = True,
    fs_read: Annotated[
        list[str] | None, typer.Option("--fs-read", help="Grant read access to a path (repeat).")
    ] = None,
    fs_write: Annotated[
        list[str] | None, typer.Option("--fs-write", help="Grant write access to a path (repeat).")
    ] = None,
    network: Annotated[bool | None, typer.Option("--network/--no-network", help="Grant network access.")] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="Pass one environment variable through (repeat).")
    ] = None,
    protocol: Annotated[
        str, typer.Option(help="Protocol to speak to the server: auto (the client's era first), or a revision.")
    ] = "auto",
    log_level: LogLevel = "warning",
) -> None:
    """Wrap one stdio MCP server: Bastion speaks MCP on stdio and runs the server as its child.

    Put this in a client's config in place of the server's command, e.g.\n
    bastion wrap --name fs --fs-read /srv/data -- npx -y @modelcontextprotocol/server-filesystem@2026.8.31 /srv/data
    """
    setup_logging(log_level)
    config = wrap_config(
        command,
        name=name,
        rules=ToolRules(
            allow=tuple(allow or ()),
            deny=tuple(deny or ()),
            approve=tuple(approve or ()),
            grant=tuple(grant_tool or ()),
        ),
        read_only=read_only,
        grants=tuple(grant or ()),
        fs_read=tuple(fs_read or ()),
        fs_write=tuple(fs_write or ()),
        network=network,
        env_pass=tuple(env or ()),
        protocol=protocol,
    )
    anyio.run(run_stdio, config, dict(os.environ), home(), "wrap: " + " ".join(command))


def wrap_config(
    command: list[str],
    *,
    name: str | None,
    rules: ToolRules,
    read_only: bool = True,
    grants: tuple[str, ...] = (),
    fs_read: tuple[str, ...],
    fs_write: tuple[str, ...],
    network: bool | None,
    env_pass: tuple[str, ...],
    protocol: str = "auto",
) -> BastionConfig:
    """The flags of `wrap` as the same config model a file would give."""
    if not command:
        raise ConfigError(None, [ConfigProblem("command", "no server command given", "bastion wrap -- COMMAND ARGS…")])
    server_name = name or _name_from(command)
    try:
        server = ServerConfig(
            command=command[0],
            args=tuple(command[1:]),
            tools=rules,
            read_only=read_only,
            grants=grants,  # pyright: ignore[reportArgumentType]  (validated by the model)
            fs_read=fs_read,
            fs_write=fs_write,
            network=network,
            env_pass=env_pass,
            protocol=protocol,  # pyright: ignore[reportArgumentType]  (validated by the model)
        )
        return BastionConfig(gateway=GatewayConfig(), servers={server_name: server})
    except ValueError as exc:
        raise ConfigError(None, [ConfigProblem("flags", str(exc))]) from None


def _name_from(command: list[str]) -> str:
    """A readable server name from its command: the package or script name, tidied."""
    candidates = [arg for arg in command[1:] if not arg.startswith("-")] or [command[0]]
    base = Path(command[0]).name
    if base in ("npx", "uvx", "pipx", "bunx", "pnpx", "python", "python3", "node", "uv", "docker", "deno"):
        base = candidates[0]
    base = re.sub(r"@[\w.^~<>=*-]+$", "", base.split("/")[-1])  # drop a version pin
    base = re.sub(r"^(mcp-server-|server-)", "", re.sub(r"\.(py|js|mjs|ts)$", "", base))
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", base).strip("-_")[:64]
    return clean or "server"


def run(
    config: ConfigOption = Path("bastion.toml"), log_level: LogLevel = "warning", candidate: CandidateOption = None
) -> None:
    """Serve every configured server to one client over stdio (put this command in a client's config)."""
    setup_logging(log_level)
    loaded = with_candidate(read_config(config), config, candidate)
    anyio.run(run_stdio, loaded, dict(os.environ), home(), f"run: {config}", None, config.parent / LOCK_NAME)


def serve(
    config: ConfigOption = Path("bastion.toml"),
    listen: Annotated[str | None, typer.Option(help="HOST:PORT to listen on (default from [http] listen).")] = None,
    log_level: LogLevel = "info",
    candidate: CandidateOption = None,
) -> None:
    """Serve every configured server to many clients over Streamable HTTP at /mcp (bearer token per client)."""
    setup_logging(log_level)
    loaded = with_candidate(read_config(config), config, candidate)
    if listen is not None:
        loaded = loaded.model_copy(update={"http": loaded.http.model_copy(update={"listen": listen})})
    # Imported here so that `wrap` and `run` never load the web stack (see bastion.runtime_http).
    from bastion.runtime_http import run_http

    anyio.run(run_http, loaded, dict(os.environ), home(), f"serve: {config}", None, config.parent / LOCK_NAME)


def dashboard(
    listen: Annotated[str, typer.Option(help="HOST:PORT for the dashboard (loopback by default).")] = "127.0.0.1:8766",
    store: Annotated[
        str | None, typer.Option("--store", envvar="BASTION_AUDIT_STORE", help="postgresql://… if gateways share one.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="bastion.toml, for the inventory page (optional).")
    ] = None,
    log_level: LogLevel = "info",
) -> None:
    """Serve the dashboard on its own, next to stdio gateways (`run`, `wrap`) sharing this BASTION_HOME:
    sign in with a token made by `bastion tokens create --client NAME --role approver`."""
    setup_logging(log_level)
    loaded = read_config(config) if config is not None else None
    # The web stack loads only for this command.
    from bastion.runtime_http import serve_dashboard

    anyio.run(serve_dashboard, home(), store, listen, loaded, config)

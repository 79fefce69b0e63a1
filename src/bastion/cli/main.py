"""`bastion`: the command line. Errors become exit codes here and nowhere else."""

from __future__ import annotations

import sys

import typer

from bastion import DISTRIBUTION, __version__
from bastion.cli import alerts, approvals, audit, clients, doctor, gateway, inspect, pins, policy, report, secrets, tokens
from bastion.cli._common import err_console
from bastion.errors import BastionError, ClientConfigError, ConfigError

__all__ = ["app", "main"]

app = typer.Typer(
    name="bastion",
    help=(
        "Bastion, a security gateway for the Model Context Protocol.\n\n"
        "Sits between MCP clients and MCP servers: every tool call is identified, scoped, "
        "recorded and watched. Start with `bastion init` or `bastion import`, or wrap one server "
        "with `bastion wrap -- COMMAND ARGS…`. Try `bastion demo`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"{DISTRIBUTION} {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Bastion, a security gateway for the Model Context Protocol."""


gateway.register(app)
clients.register(app)
inspect.register(app)
pins.register(app)
doctor.register(app)
app.add_typer(tokens.app, name="tokens")
app.add_typer(audit.app, name="audit")
app.add_typer(approvals.app, name="approvals")
app.add_typer(alerts.app, name="alerts")
app.add_typer(policy.app, name="policy")
app.add_typer(secrets.app, name="secrets")
app.add_typer(secrets.identity_app, name="identity")
app.add_typer(report.app, name="report")

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def main() -> None:
    """Run the CLI. Usage errors are Typer's (a short message, exit 2); Bastion's errors become exit codes here."""
    try:
        # Standalone mode: Typer turns usage errors into its short message and exit 2, and exits with
        # the command's code; only exceptions it does not own reach the handlers below.
        app(prog_name="bastion")
    except ConfigError as exc:
        err_console.print(f"bastion: invalid configuration\n{exc}", markup=False)
        sys.exit(EXIT_CONFIG)
    except ClientConfigError as exc:
        err_console.print(f"bastion: {exc}", markup=False)
        sys.exit(EXIT_CONFIG)
    except BastionError as exc:
        err_console.print(f"bastion: {exc}", markup=False)
        sys.exit(EXIT_FAILURE)

"""`bastion`: the command line. Errors become exit codes here and nowhere else."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, NoReturn

import typer

from bastion import DISTRIBUTION, __version__
from bastion.cli import (
    alerts,
    approvals,
    audit,
    clients,
    config,
    doctor,
    gateway,
    inspect,
    pins,
    policy,
    report,
    secrets,
    tokens,
)
from bastion.cli._common import err_console
from bastion.cli._logging import LogFormat, choose_log_format, chosen_log_format
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
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            envvar="BASTION_LOG_FORMAT",
            help="Logs on stderr as text lines, or one JSON object per line (with server, tool, rule, client, "
            "request_id where known). Give it before the command.",
        ),
    ] = LogFormat.TEXT,
) -> None:
    """Bastion, a security gateway for the Model Context Protocol."""
    choose_log_format(log_format)


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
app.add_typer(config.app, name="config")

EXIT_CONFIG = 2
EXIT_FAILURE = 1


def main() -> None:
    """Run the CLI. Usage errors are Typer's (a short message, exit 2); Bastion's errors become exit codes here."""
    try:
        # Standalone mode: Typer turns usage errors into its short message and exit 2, and exits with
        # the command's code; only exceptions it does not own reach the handlers below.
        app(prog_name="bastion")
    except ConfigError as exc:
        _fail(f"invalid configuration\n{exc}", EXIT_CONFIG)
    except ClientConfigError as exc:
        _fail(str(exc), EXIT_CONFIG)
    except BastionError as exc:
        _fail(str(exc), EXIT_FAILURE)


def _fail(message: str, code: int) -> NoReturn:
    """The error on stderr (a JSON line when logs are JSON, so the stream stays parseable), and the exit code."""
    if chosen_log_format() is LogFormat.JSON:
        logging.getLogger("bastion").error(message)
    else:
        err_console.print(f"bastion: {message}", markup=False)
    sys.exit(code)

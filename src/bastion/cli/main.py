"""`bastion`: the command line. Errors become exit codes here and nowhere else.

A command's module is imported only when that command runs, or when help or shell completion
lists the commands: `bastion wrap` and `bastion run` sit in front of a server for as long as a
client runs, and should not hold the audit, report, doctor and compliance commands (with Rich
and Jinja) in memory for it. `_COMMANDS` names the module of each command, in the order help
lists them.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, NoReturn

import typer
from typer.core import TyperGroup
from typer.main import get_group

from bastion import DISTRIBUTION, __version__
from bastion.cli._logging import LogFormat, choose_log_format, chosen_log_format
from bastion.errors import BastionError, ClientConfigError, ConfigError

__all__ = ["app", "main"]

_COMMANDS: Mapping[str, tuple[str, str]] = {
    # command: (its module in bastion.cli, and `register` for commands it adds at the top, else its sub-app).
    # A new command is listed here, or help never shows it.
    "wrap": ("gateway", "register"),
    "run": ("gateway", "register"),
    "serve": ("gateway", "register"),
    "dashboard": ("gateway", "register"),
    "init": ("clients", "register"),
    "import": ("clients", "register"),
    "install": ("clients", "register"),
    "uninstall": ("clients", "register"),
    "inventory": ("inspect", "register"),
    "status": ("inspect", "register"),
    "demo": ("inspect", "register"),
    "pin": ("pins", "register"),
    "review": ("pins", "register"),
    "doctor": ("doctor", "register"),
    "tokens": ("tokens", "app"),
    "audit": ("audit", "app"),
    "approvals": ("approvals", "app"),
    "alerts": ("alerts", "app"),
    "policy": ("policy", "app"),
    "secrets": ("secrets", "app"),
    "identity": ("secrets", "identity_app"),
    "report": ("report", "app"),
    "config": ("config", "app"),
}


def _part(name: str) -> typer.Typer:
    """An app holding the commands of `name`'s module (all of those it registers, or its sub-app)."""
    module_name, attribute = _COMMANDS[name]
    module = importlib.import_module(f"bastion.cli.{module_name}")
    part = typer.Typer(rich_markup_mode=None)  # plain help, as the root's
    if attribute == "register":
        register: Callable[[typer.Typer], None] = module.register
        register(part)
    else:
        sub_app: typer.Typer = getattr(module, attribute)
        part.add_typer(sub_app, name=name)
    return part


class _LazyGroup(TyperGroup):
    """The root command: its subcommands are built from their modules on first use (Click's lazy
    group), in the order of `_COMMANDS`."""

    def list_commands(self, ctx: object) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: object, cmd_name: str):  # type inferred: Typer keeps its Click classes private
        # An unknown name loads every command, so that the usage error can suggest the closest one.
        for name in (cmd_name,) if cmd_name in _COMMANDS else _COMMANDS:
            if name not in self.commands:
                self.commands.update(get_group(_part(name)).commands)
        return self.commands.get(cmd_name)


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
    cls=_LazyGroup,
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
        from bastion.cli._console import err_console  # Rich, only on this path

        err_console.print(f"bastion: {message}", markup=False)
    sys.exit(code)

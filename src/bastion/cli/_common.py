"""What every command shares: logging to stderr, config and store opening, who is acting, and the
audit log's two doors for commands (record an entry, read a payload back). The consoles they
print with are in `bastion.cli._console`, so that the gateway commands, which print nothing,
never load Rich.

Commands import these from here, never from a sibling command, so that a command module holds
only its own commands.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from bastion.audit.entry import Record
from bastion.audit.payload import AUDIT_MASTER_KEY, PayloadCipher
from bastion.audit.service import append_once
from bastion.cli._logging import install_logging
from bastion.config.load import load_config
from bastion.config.model import BastionConfig
from bastion.files import load_master_key
from bastion.store.audit import AuditStore
from bastion.store.home import bastion_home, ensure_home
from bastion.store.sqlite import StateStore

__all__ = [
    "ConfigOption",
    "JsonOption",
    "StoreOption",
    "home",
    "open_store",
    "plaintext",
    "read_config",
    "record_entry",
    "setup_logging",
    "who",
]

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", envvar="BASTION_CONFIG", help="Path to bastion.toml.", show_default=True, dir_okay=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (one document, on standard output).")]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store", envvar="BASTION_AUDIT_STORE", help="sqlite:PATH or postgresql://… (default: BASTION_HOME)."
    ),
]


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


def who() -> str:
    """The person acting from this terminal, as every CLI entry's `by` names them: the plain login name.

    One form for every command, so that evidence counting who did what sees one person once. The
    channel is never part of the name: entries that say how a decision came record it in a field of
    their own (an approval's `channel`, a triage's `channel`). The terminal's login name comes
    first (it stays the person's own under sudo); without a terminal, the user the environment or
    the password database names.
    """
    try:
        return os.getlogin()
    except OSError:
        pass
    import getpass  # with termios: only without a login terminal (issue 13 §5)

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


async def record_entry(config: BastionConfig, store_url: str | None, record: Record) -> None:
    """Append one entry for a command (a change a person made), signed like the gateway's own."""
    await append_once(config, home(), os.environ, store_url, record)


def plaintext(store: AuditStore, log_id: str, index: int) -> str:
    """An entry's decrypted payload (arguments and result) as text; "" when there is none, it was
    redacted or shredded, or this host has no master key."""
    master = load_master_key(AUDIT_MASTER_KEY, home(), os.environ, create=False)
    found = store.payload(log_id, index)
    if master is None or found is None or found[1] is None:
        return ""
    wrapped = store.data_key(found[0])
    if wrapped is None:
        return ""
    cipher = PayloadCipher(master)
    return PayloadCipher.open(cipher.unwrap(found[0], wrapped), log_id, index, found[1]).decode("utf-8", "replace")

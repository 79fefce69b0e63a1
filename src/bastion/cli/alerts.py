"""`bastion alerts`: what the watcher raised, and triage (ack, snooze, resolve) with who and why (SOC 2 CC7.3)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict
from typing import Annotated

import anyio
import typer

from bastion.audit.entry import Kind, Record
from bastion.cli._common import JsonOption, StoreOption, home, record_entry, who
from bastion.cli._console import console
from bastion.cli._durations import parse_duration
from bastion.cli._listing import Listing
from bastion.config.model import AuditConfig, BastionConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.watch.store import Triage, WatchStore, open_watch

__all__ = ["app"]

app = typer.Typer(help="Alerts from the watcher: list, show, acknowledge, resolve.", no_args_is_help=True)
KeyArgument = Annotated[str, typer.Argument(help="The alert's key, from `bastion alerts list`.")]
NoteOption = Annotated[str, typer.Option("--note", help="What was found or done (recorded in the audit log).")]


def _store(url: str | None) -> WatchStore:
    return open_watch(home(), url)


@app.command("list")
def list_alerts(
    show_all: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open (and acknowledged, snoozed) alerts, newest first."""
    rows = _store(store).alerts(include_resolved=show_all)
    if as_json:
        typer.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    if not rows:
        console.print("no alerts")
        return
    # The key (what `ack`, `snooze` and `resolve` take) heads its summary and the small columns
    # stack their values, so that keys of some 45 characters stand whole in 80 columns.
    table = Listing("key\nsummary", "severity\nstate", "last seen", keys=("key\nsummary",), lines=True)
    for row in rows:
        seen = _when(row.last_seen) + (f"\n{row.count} times" if row.count > 1 else "")
        table.add(f"{row.key}\n{row.summary}", f"{row.severity}\n{row.state}", seen)
    console.print(table)


@app.command()
def show(key: KeyArgument, store: StoreOption = None, as_json: JsonOption = False) -> None:
    """One alert, with its details."""
    row = _store(store).alert(key)
    if row is None:
        raise ConfigError(None, [ConfigProblem(key, "no such alert", "see `bastion alerts list --all`")])
    if as_json:
        typer.echo(json.dumps(asdict(row), indent=2))
        return
    for label, value in (
        ("key", row.key),
        ("state", row.state),
        ("severity", row.severity),
        ("detector", row.detector),
        ("server", row.server or "-"),
        ("summary", row.summary),
        ("opened", _when(row.opened)),
        ("last seen", _when(row.last_seen)),
        ("count", str(row.count)),
    ):
        console.print(f"{label}: {value}", markup=False, soft_wrap=True)
    if row.data:
        console.print("details:")
        console.print(json.dumps(row.data, indent=2, default=str), markup=False, soft_wrap=True)


@app.command()
def ack(key: KeyArgument, note: NoteOption = "", store: StoreOption = None) -> None:
    """Acknowledge: someone is on it (no more reminders or escalation)."""
    _triage(key, "ack", note, store)


@app.command()
def resolve(key: KeyArgument, note: NoteOption = "", store: StoreOption = None) -> None:
    """Resolve with a note of what was found or done."""
    _triage(key, "resolve", note, store)


@app.command()
def snooze(
    key: KeyArgument,
    for_: Annotated[str, typer.Option("--for", help="How long, e.g. 30m, 4h.")],
    note: NoteOption = "",
    store: StoreOption = None,
) -> None:
    """Silence an alert's notifications for a while; it is still recorded."""
    _triage(key, f"snooze:{parse_duration(for_, '--for'):g}", note, store)


def _triage(key: str, action: str, note: str, store_url: str | None) -> None:
    store = _store(store_url)
    if store.alert(key) is None:
        raise ConfigError(None, [ConfigProblem(key, "no such alert", "see `bastion alerts list --all`")])
    by = who()
    store.request_triage(Triage("tri_" + secrets.token_hex(6), key, action, by, note, time.time()))
    fields = {"alert": key, "triage": action, "by": by, "channel": "cli", "note": note}
    config = BastionConfig(audit=AuditConfig(store=store_url))
    anyio.run(record_entry, config, store_url, Record(Kind.ALERT_TRIAGE, fields))
    console.print(f"{key}: {action} recorded; the gateway applies it within a second", markup=False, soft_wrap=True)


def _when(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment))

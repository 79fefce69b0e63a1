"""`bastion approvals`: see and decide calls waiting for a person, from any terminal or process."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from bastion.approvals.model import Approval, Scope, Status, Verdict
from bastion.approvals.store import ApprovalStore, open_approvals
from bastion.cli._common import JsonOption, StoreOption, home, who
from bastion.cli._console import console
from bastion.cli._durations import parse_duration
from bastion.cli._listing import Listing
from bastion.errors import ConfigError, ConfigProblem

__all__ = ["app", "decide_from"]

app = typer.Typer(help="Calls waiting for a person: list, show, approve, deny.", no_args_is_help=True)
IdArgument = Annotated[str, typer.Argument(help="The approval's id (apr_…), from `bastion approvals list`.")]


def _store(url: str | None) -> ApprovalStore:
    return open_approvals(home(), url)


@app.command("list")
def list_approvals(
    show_all: Annotated[bool, typer.Option("--all", help="Decided ones too, newest first.")] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The pending approvals (or all of them)."""
    rows = _store(store).list(None if show_all else Status.PENDING)
    if as_json:
        typer.echo(json.dumps([row.to_dict() for row in rows], indent=2))
        return
    if not rows:
        console.print("no approvals are pending" if not show_all else "no approvals yet")
        return
    # The id (what `show`, `approve` and `deny` take) keeps its width; the call heads why policy asked.
    table = Listing("id", "status", "client", "call\nwhy", "risk", keys=("id", "status"), lines=True)
    now = time.time()
    for row in rows:
        status = row.status.value
        if row.status is Status.PENDING:
            status += f"\n{max(0, row.expires - now):.0f} s left"
        table.add(row.id, status, row.client, f"{row.server}.{row.tool}\n{row.why}", row.risk)
    console.print(table)


@app.command()
def show(approval_id: IdArgument, store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Everything a person needs to decide: client, tool, risk, arguments (secrets masked), why, what came before."""
    approval = _get(_store(store), approval_id)
    if as_json:
        typer.echo(json.dumps(approval.to_dict(), indent=2))
        return
    console.print(f"[bold]{approval.id}[/] — {approval.status.value}")
    for label, value in (
        ("client", f"{approval.client} (session {approval.session})"),
        ("call", f"{approval.server}.{approval.tool}"),
        ("risk class", approval.risk),
        ("why policy asked", approval.why),
        ("just before", ", ".join(approval.recent) or "nothing in this session"),
        ("gateway", approval.gateway),
    ):
        console.print(f"{label}: {value}", markup=False, highlight=False)
    console.print("arguments:")
    console.print(approval.arguments, markup=False, highlight=False)
    if approval.verdict is not None:
        v = approval.verdict
        reason = f": {v.reason}" if v.reason else ""
        console.print(f"decided by {v.by} via {v.channel} ({v.scope.value}){reason}", markup=False, highlight=False)


@app.command()
def approve(
    approval_id: IdArgument,
    for_: Annotated[
        str | None, typer.Option("--for", help="Also allow this tool for this client for a while, e.g. 10m.")
    ] = None,
    session: Annotated[
        bool, typer.Option("--session", help="Also allow it for the rest of the client's session.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")] = "",
    store: StoreOption = None,
) -> None:
    """Let the call through (and, with --for or --session, later calls of the same tool by the same client)."""
    decide_from(_store(store), approval_id, True, "cli", who(), reason, for_, session)


@app.command()
def deny(
    approval_id: IdArgument,
    reason: Annotated[str, typer.Option(help="Why (the client sees it, and the audit log keeps it).")] = "",
    store: StoreOption = None,
) -> None:
    """Refuse the call; the client gets a JSON-RPC error naming who denied it."""
    decide_from(_store(store), approval_id, False, "cli", who(), reason, None, False)


def decide_from(
    store: ApprovalStore,
    approval_id: str,
    allow: bool,
    channel: str,
    by: str,
    reason: str,
    window: str | None,
    session: bool,
) -> Approval:
    """One decision from any channel: the first one wins; a late one is told who came first."""
    if window is not None and session:
        raise ConfigError(None, [ConfigProblem("--for/--session", "give one of them")])
    now = time.time()
    scope, until = Scope.CALL, None
    if window is not None:
        scope, until = Scope.WINDOW, now + parse_duration(window, "--for")
    elif session:
        scope = Scope.SESSION
    current = _get(store, approval_id)
    decided = store.decide(approval_id, Verdict(allow, by, channel, now, scope, until, reason))
    if decided is None:
        latest = store.get(approval_id) or current
        earlier = f" by {latest.verdict.by} via {latest.verdict.channel}" if latest.verdict else ""
        raise ConfigError(
            None, [ConfigProblem(approval_id, f"was already {latest.status.value}{earlier}", "nothing to do")]
        )
    console.print(f"{approval_id}: {decided.status.value} ({scope.value})")
    return decided


def _get(store: ApprovalStore, approval_id: str) -> Approval:
    approval = store.get(approval_id)
    if approval is None:
        raise ConfigError(None, [ConfigProblem(approval_id, "no such approval", "see `bastion approvals list --all`")])
    return approval

"""`bastion inventory` and `bastion status`: what is configured, what it offers, what runs."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import anyio
import typer
from rich.text import Text

from bastion.cli._common import ConfigOption, JsonOption, open_store, read_config, setup_logging
from bastion.cli._console import console
from bastion.cli._listing import Listing
from bastion.cli._progress import progress
from bastion.errors import SandboxError
from bastion.inventory.pins import LOCK_NAME, load_lock
from bastion.inventory.report import inventory_data, to_json, to_markdown
from bastion.processes import pid_alive
from bastion.runtime import collect_inventory
from bastion.sandbox.launcher import find_bwrap
from bastion.store.home import bastion_home, ensure_home
from bastion.watch.store import AlertRow, CheckRow, open_watch

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(inventory)
    app.command()(status)
    app.command()(demo)


def inventory(
    config: ConfigOption = Path("bastion.toml"),
    as_json: JsonOption = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown (for a review or a ticket).")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="Log level (to stderr).")] = "error",
) -> None:
    """Connect to every configured server and list its tools with their risk classes, resources and prompts."""
    setup_logging(log_level)
    loaded = read_config(config)
    with progress(f"connecting to {len(loaded.enabled_servers())} servers"):
        lock_path = config.parent / LOCK_NAME
        lock = load_lock(lock_path) if lock_path.exists() else None
        servers = anyio.run(collect_inventory, loaded, dict(os.environ), lock)
    if as_json:
        typer.echo(to_json(servers))
        return
    if markdown:
        typer.echo(to_markdown(servers))
        return
    for server in inventory_data(servers)["servers"]:
        target = " ".join(server["command"]) if server["command"] else server["url"]
        info = server["serverInfo"] or {}
        console.rule(f"[bold]{server['name']}[/] — {server['state']}")
        # Lines a person may copy from (commands, paths, fixes) are soft-wrapped: the terminal folds them.
        console.print(f"{server['transport']}: {target}", markup=False, soft_wrap=True)
        console.print(
            f"protocol {server['protocolVersion'] or '?'} ({server['era'] or '-'}), "
            f"server {info.get('name', '?')} {info.get('version', '')}",
            markup=False,
            soft_wrap=True,
        )
        console.print(f"sandbox: {server['sandbox']}", markup=False, soft_wrap=True)
        for finding in server["findings"]:
            console.print(Text.assemble(("finding:", "yellow"), " ", finding), soft_wrap=True)
        if server["state"] != "up":
            console.print(Text.assemble(("not reachable:", "red"), " ", server["detail"]), soft_wrap=True)
            continue
        # The tool's name (what `policy explain --tool` and `policy kill` take) keeps its width.
        table = Listing("tool", "risk", "why", "listed", keys=("tool",))
        for tool in server["tools"]:
            table.add(
                tool["name"],
                tool["risk"],
                "; ".join(tool["riskReasons"][:2]),
                f"no ({tool['rule']})" if tool["hidden"] else "yes",
            )
        console.print(table)
        for key in ("resources", "resourceTemplates", "prompts"):
            if server[key]:
                names = [i.get("uri") or i.get("uriTemplate") or i.get("name") for i in server[key]]
                console.print(f"{key}: " + ", ".join(str(n) for n in names), markup=False, soft_wrap=True)


def _watch_rows() -> tuple[list[CheckRow], list[AlertRow]]:
    store = open_watch(bastion_home(os.environ), os.environ.get("BASTION_AUDIT_STORE"))
    try:
        return store.checks(), store.alerts()
    finally:
        store.close()


def _watch_status() -> None:
    """Checks and open alerts at a glance (from the shared watch store)."""
    checks, alerts = _watch_rows()
    if checks:
        console.print("checks: " + ", ".join(f"{c.name} {c.status}" for c in checks), markup=False, soft_wrap=True)
    if alerts:
        console.print(f"[bold red]{len(alerts)} open alert(s):[/]")
        for alert in alerts[:10]:
            line = f"  [{alert.severity}] {alert.key} ({alert.state}): {alert.summary}"
            console.print(line, markup=False, soft_wrap=True)
        if len(alerts) > 10:
            console.print(f"  and {len(alerts) - 10} more: see `bastion alerts list`", markup=False)
    else:
        console.print("no open alerts")


def _sandbox_status() -> str:
    """Which bubblewrap sandboxes servers here (the distribution's is preferred), or why none can."""
    try:
        found = find_bwrap()
    except SandboxError as exc:
        return f"unavailable: {exc.detail}"
    return f"bwrap ({found.source}: {found.path})"


def status(as_json: JsonOption = False) -> None:
    """Show running gateways and the state of their servers (up, restarting, restarts)."""
    store = open_store()
    gateways = [g for g in store.gateways() if pid_alive(g.pid) or store.forget_gateway(g.pid)]
    servers = [s for s in store.servers() if any(g.pid == s.pid for g in gateways)]
    sandbox = _sandbox_status()
    if as_json:
        home = str(bastion_home(os.environ))
        checks, alerts = _watch_rows()
        report = {
            "home": home,
            "sandbox": sandbox,
            "gateways": [asdict(g) for g in gateways],
            "servers": [asdict(s) for s in servers],
            "checks": [asdict(c) for c in checks],
            "alerts": [asdict(a) for a in alerts],
        }
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(f"state: {bastion_home(os.environ)}", markup=False, soft_wrap=True)
    console.print(f"sandbox: {sandbox}", markup=False, soft_wrap=True)
    _watch_status()
    if not gateways:
        console.print("no gateway is running")
        return
    # The pid and the server's name keep their width; the state heads its detail.
    table = Listing("pid", "gateway", "server", "state\ndetail", "since", keys=("pid", "server", "since"))
    for gateway in gateways:
        rows = [s for s in servers if s.pid == gateway.pid] or [None]
        for row in rows:
            since = time.strftime("%H:%M:%S", time.localtime(row.updated if row else gateway.started))
            if row is None:
                table.add(str(gateway.pid), f"{gateway.instance} ({gateway.mode})", "-", "-", since)
                continue
            restarts = f", {row.restarts} restart{'' if row.restarts == 1 else 's'}" if row.restarts else ""
            state = f"{row.state}{restarts}\n{row.detail}".strip()
            table.add(str(gateway.pid), f"{gateway.instance} ({gateway.mode})", row.server, state, since)
    console.print(table)


def demo(
    workdir: Annotated[
        Path | None, typer.Option(help="Directory for the demo's files (default: a new temp dir).")
    ] = None,
) -> None:
    """Run a demo: a notes server behind Bastion, driven by a scripted MCP client, printing what happened."""
    # The demo drives the SDK's client; loaded only for this command, not for every gateway process.
    from bastion.demo.script import run_demo

    base = workdir or Path(tempfile.mkdtemp(prefix="bastion-demo-"))
    home = base / "home"
    ensure_home(home)
    anyio.run(run_demo, base, home, lambda line: console.print(line, markup=False, soft_wrap=True))
    console.print(f"Demo files: {base}", markup=False)

"""`bastion pin` and `bastion review`: trust on first use as an explicit step, and every change
reviewed before it is used."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from bastion.audit.entry import Kind, Record
from bastion.cli._common import ConfigOption, read_config, record_entry, setup_logging, who
from bastion.cli._console import console, err_console
from bastion.cli._progress import progress
from bastion.config.load import parse_config
from bastion.config.model import BastionConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.files import current_mode, replace_atomically
from bastion.inventory.admit import launch_command
from bastion.inventory.collect import ServerInventory
from bastion.inventory.packages import (
    PackageInfo,
    PackageLookupError,
    PackageRef,
    default_fetcher,
    default_runner,
    npm_info,
    package_ref,
    pypi_info,
    rewrite_exact,
    typosquat,
    unpinned_finding,
)
from bastion.inventory.pins import (
    LOCK_NAME,
    TOOL_FIELDS,
    Drift,
    Lock,
    PackagePin,
    ServerPin,
    compare,
    diff_lines,
    load_lock,
    pin_from_listing,
    save_lock,
)
from bastion.runtime import collect_inventory

__all__ = ["register"]

ServersArgument = Annotated[list[str] | None, typer.Argument(help="Server names (default: every enabled server).")]


def register(app: typer.Typer) -> None:
    app.command()(pin)
    app.command()(review)


def pin(
    servers: ServersArgument = None,
    resolve: Annotated[
        bool,
        typer.Option("--resolve", help="Rewrite `npx pkg` / `uvx pkg` in bastion.toml to the exact latest version."),
    ] = False,
    config: ConfigOption = Path("bastion.toml"),
    log_level: Annotated[str, typer.Option("--log-level", help="Log level (to stderr).")] = "error",
) -> None:
    """Record what each server offers now in bastion.lock (commit it): the exact package, and a hash of
    every tool, prompt, template and the instructions. From then on a change is blocked until reviewed."""
    setup_logging(log_level)
    loaded = read_config(config)
    names = _selected(loaded, servers, config)
    if resolve:
        loaded = _resolve_versions(config, loaded, names)
    lock_path = config.parent / LOCK_NAME
    lock = load_lock(lock_path)
    found = _collect(loaded, names)
    for name in names:
        server = found[name]
        if server.state != "up":
            raise ConfigError(config, [ConfigProblem(f"servers.{name}", f"cannot be pinned: {server.detail}")])
        argv = launch_command(loaded.servers[name])
        package = _package(argv)
        lock = lock.with_server(name, _pin(server, argv, package))
        save_lock(lock_path, lock)
        _record(loaded, name, "pin", {"tools": len(server.tools)})
        what = f"{package.name}@{package.version}" if package else "no package manager"
        console.print(f"pinned {name}: {len(server.tools)} tools, {what}", markup=False)
        ref = package_ref(argv)
        finding = unpinned_finding(ref) if ref is not None else None
        if finding:
            err_console.print(f"finding: {finding}", markup=False)
    console.print(f"wrote {lock_path}; commit it next to {config.name}", markup=False)


def review(
    servers: ServersArgument = None,
    approve: Annotated[bool, typer.Option("--approve", help="Accept the changes shown: update bastion.lock.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Refuse them: the lock stays, they stay blocked.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (recorded in the audit log).")] = None,
    config: ConfigOption = Path("bastion.toml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the drift as JSON.")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="Log level (to stderr).")] = "error",
) -> None:
    """Show what changed since each server was pinned, as readable diffs, with what a careful engineer
    checks before adopting a package; then approve (update the lock) or reject. Exit 1 while changes wait."""
    setup_logging(log_level)
    if approve and reject:
        raise ConfigError(None, [ConfigProblem("--approve/--reject", "give one of them", "")])
    loaded = read_config(config)
    names = _selected(loaded, servers, config)
    lock_path = config.parent / LOCK_NAME
    lock = load_lock(lock_path)
    found = _collect(loaded, names)
    waiting = False
    report: list[dict[str, Any]] = []
    for name in names:
        server = found[name]
        if server.state != "up":
            err_console.print(f"{name}: not reviewed, it does not start: {server.detail}", markup=False)
            waiting = True
            continue
        argv = launch_command(loaded.servers[name])
        drift = _drift(lock, name, server, argv)
        if drift.clean:
            report.append({"server": name, "changes": []})
            if not as_json:
                console.print(f"{name}: matches bastion.lock")
            continue
        report.append({"server": name, "changes": drift.describe()})
        if not as_json:
            _show(name, drift, lock.servers.get(name), server, argv)
        decided = approve or reject or (not as_json and sys.stdin.isatty() and typer.confirm(f"approve {name}?"))
        if decided and not reject:
            lock = lock.with_server(name, _pin(server, argv, _package(argv)))
            save_lock(lock_path, lock)
            _record(loaded, name, "review.approved", {"changes": drift.describe(), "reason": reason or ""})
            console.print(f"{name}: approved; bastion.lock updated")
        else:
            if reject:
                _record(loaded, name, "review.rejected", {"changes": drift.describe(), "reason": reason or ""})
            waiting = True
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    if waiting:
        raise typer.Exit(1)


def _selected(config: BastionConfig, servers: list[str] | None, path: Path) -> list[str]:
    names = servers or list(config.enabled_servers())
    unknown = [name for name in names if name not in config.servers]
    if unknown:
        fix = f"use one of: {', '.join(config.servers) or '(none)'}"
        raise ConfigError(path, [ConfigProblem("servers", f"not configured: {', '.join(unknown)}", fix)])
    return names


def _collect(config: BastionConfig, names: Sequence[str]) -> dict[str, ServerInventory]:
    subset = config.model_copy(update={"servers": {name: config.servers[name] for name in names}})
    with progress(f"starting {len(names)} servers (sandboxed)"):
        found = anyio.run(collect_inventory, subset, dict(os.environ))
    return {server.name: server for server in found}


def _pin(server: ServerInventory, argv: tuple[str, ...], package: PackagePin | None) -> ServerPin:
    return pin_from_listing(
        argv,
        package,
        str(server.server_info.get("version", "")),
        server.instructions,
        [entry.tool for entry in server.tools],
        list(server.prompts),
        list(server.resource_templates),
        datetime.now(UTC).isoformat(timespec="seconds"),
        who(),
    )


def _drift(lock: Lock, name: str, server: ServerInventory, argv: tuple[str, ...]) -> Drift:
    return compare(
        name,
        lock.servers.get(name),
        argv,
        str(server.server_info.get("version", "")),
        server.instructions,
        [entry.tool for entry in server.tools],
        list(server.prompts),
        list(server.resource_templates),
    )


def _package(argv: Sequence[str]) -> PackagePin | None:
    """The exact package the launcher runs, with its integrity hash when the registry or cache has it."""
    ref = package_ref(argv)
    if ref is None or not ref.exact:
        return None
    info = _lookup(ref)
    return PackagePin(ref.launcher, ref.name, ref.version or "", info.integrity if info else None)


def _lookup(ref: PackageRef, version: str | None = None) -> PackageInfo | None:
    try:
        if ref.launcher == "npm":
            return npm_info(ref.name, version or ref.version, default_runner)
        return pypi_info(ref.name, version or ref.version, default_fetcher)
    except PackageLookupError as exc:
        err_console.print(f"warning: {ref.name}: no registry or cache answer ({exc.detail})", markup=False)
        return None


def _show(name: str, drift: Drift, pinned: ServerPin | None, server: ServerInventory, argv: tuple[str, ...]) -> None:
    console.rule(f"[bold]{name}[/]")
    for line in drift.describe():
        console.print(line, markup=False)
    tools = {str(entry.tool.get("name")): entry for entry in server.tools}
    for tool in (*drift.changed_tools, *drift.new_tools):
        old = pinned.tools[tool].definition if pinned and tool in pinned.tools else None
        new = {k: tools[tool].tool[k] for k in TOOL_FIELDS if k in tools[tool].tool}
        risk = tools[tool].classification.risk.value
        console.print(f"\ntool {tool!r} (risk class now: {risk}):", markup=False)
        _print_diff(diff_lines(old, new))
    if drift.instructions_changed:
        console.print("\ninstructions:")
        _print_diff(
            diff_lines(
                {"instructions": pinned.instructions_text if pinned else None}, {"instructions": server.instructions}
            )
        )
    for kind, names in (("prompt", drift.changed_prompts), ("template", drift.changed_templates)):
        for item in names:
            console.print(f"\n{kind} {item!r} changed", markup=False)
    if drift.unpinned or drift.version_changed or drift.command_changed:
        _adoption(server, argv)


def _print_diff(lines: list[str]) -> None:
    for line in lines:
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        console.print(line, style=style, markup=False, highlight=False, soft_wrap=True)


def _adoption(server: ServerInventory, argv: tuple[str, ...]) -> None:
    """What to look at before adopting a new or upgraded package."""
    console.print("\nbefore adopting:")
    ref = package_ref(argv)
    if ref is None:
        console.print("  not launched by a package manager: review the command and its files yourself", markup=False)
    else:
        squat = typosquat(ref.name, ref.launcher)
        if squat:
            console.print(f"  [bold red]typosquat?[/] {ref.name!r} is one edit away from {squat!r}")
        finding = unpinned_finding(ref)
        if finding:
            console.print(f"  {finding}", markup=False)
        info = _lookup(ref)
        if info is not None:
            console.print(
                f"  {info.name} {info.version} ({info.source}): published {info.published or '?'} by "
                f"{', '.join(info.publishers) or '?'}; {info.dependency_count if info.dependency_count is not None else '?'}"
                " dependencies",
                markup=False,
            )
            for hook, script in info.install_scripts.items():
                console.print(f"  [yellow]install script[/] {hook}: {script}", highlight=False)
            if not info.install_scripts:
                console.print("  no install scripts")
    console.print(f"  tools it will expose ({len(server.tools)}):")
    for entry in server.tools:
        console.print(f"    {entry.tool.get('name')!s:32} {entry.classification.risk.value}", markup=False)


def _resolve_versions(path: Path, config: BastionConfig, names: Sequence[str]) -> BastionConfig:
    """Rewrite unpinned `npx`/`uvx` package specs in bastion.toml to the exact latest version."""
    text = path.read_text(encoding="utf-8")
    with progress("resolving package versions", "servers") as update:
        for done, name in enumerate(names):
            update(done, len(names))
            server = config.servers[name]
            argv = launch_command(server)
            ref = package_ref(argv)
            if ref is None or ref.exact:
                continue
            info = _lookup(ref, "latest" if ref.launcher == "npm" else None)
            if info is None:
                raise ConfigError(
                    path, [ConfigProblem(f"servers.{name}", f"cannot resolve {ref.name!r}", "try again online")]
                )
            old, new = argv[ref.argv_index], rewrite_exact(argv, ref, info.version)[ref.argv_index]
            quoted = json.dumps(old)
            if text.count(quoted) != 1:
                raise ConfigError(
                    path,
                    [
                        ConfigProblem(
                            f"servers.{name}.args", f"{old!r} appears more than once", f"write {new!r} yourself"
                        )
                    ],
                )
            text = text.replace(quoted, json.dumps(new))
            console.print(f"{name}: {old} -> {new}", markup=False)
    parse_config(text, path)
    replace_atomically(path, text.encode("utf-8"), mode=current_mode(path, 0o644))
    return read_config(path)


def _record(config: BastionConfig, server: str, change: str, extra: dict[str, Any]) -> None:
    fields = {"server": {"name": server}, "change": change, "by": who(), **extra}
    anyio.run(record_entry, config, os.environ.get("BASTION_AUDIT_STORE"), Record(Kind.PIN_CHANGE, fields))

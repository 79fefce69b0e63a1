"""`bastion policy`: check, explain, test and replay the policy; shadow and promote a candidate; switch
tools off and on."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
import typer

from bastion.audit.columns import indexed_entry
from bastion.audit.entry import Kind, Record, format_time
from bastion.audit.service import config_digest
from bastion.cli._common import (
    ConfigOption,
    JsonOption,
    StoreOption,
    home,
    open_store,
    plaintext,
    read_config,
    record_entry,
    who,
)
from bastion.cli._console import console, err_console
from bastion.cli._durations import moment
from bastion.clock import SystemClock
from bastion.config.model import BastionConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.files import fsync_directory
from bastion.policy.compile import compile_policy
from bastion.policy.decide import Policy
from bastion.policy.lint import Finding, lint
from bastion.policy.resolver import make_resolver
from bastion.policy.rollout import candidate_file, load_candidate, monitored, with_candidate, write_promoted
from bastion.policy.shadow import ShadowRow, shadow_report
from bastion.policy.stage import evaluate
from bastion.policy.urls import Resolver
from bastion.store.audit import AuditStore, SearchFilter
from bastion.store.audit_open import open_store as open_audit_store
from bastion.types import Decision

__all__ = ["app", "explain_call"]

app = typer.Typer(
    help="Check, explain, test, replay, shadow and promote the least-privilege policy; kill switches.",
    no_args_is_help=True,
)

ClientOption = Annotated[
    str, typer.Option("--client", help="Client identity (a token's client name; `local` on stdio).")
]


def explain_call(
    policy: Policy,
    server: str,
    tool: str,
    arguments: dict[str, Any],
    client: str = "local",
    definition: dict[str, Any] | None = None,
    *,
    resolve: Resolver | None = None,
) -> Decision:
    """The decision for one call, by the gateway's own path (`evaluate`), with DNS only if given a resolver."""
    listed = definition or offline_definition(tool, arguments)
    return evaluate(policy, client, server, tool, listed, arguments, resolve=resolve)


def offline_definition(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool definition with only a name and the arguments used: classified from the name (fail closed)."""
    return {"name": tool, "inputSchema": {"type": "object", "properties": {name: {} for name in arguments}}}


@app.command()
def check(
    config: ConfigOption = Path("bastion.toml"), as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Validate the config and lint the policy: unreachable rules, grants that undo read-only, missing roots."""
    loaded = read_config(config)
    findings = lint(loaded)
    if as_json:
        typer.echo(json.dumps([finding.to_dict() for finding in findings], indent=2))
    elif not findings:
        console.print(f"{config}: policy is valid; no findings")
    else:
        for finding in findings:
            _print_finding(finding)
    if any(finding.severity == "error" for finding in findings):
        raise typer.Exit(2)


def _as_json(decision: Decision) -> dict[str, Any]:
    """The shape `explain --json` promises: decision, rule, reason (and the risk class, and whether it is hidden)."""
    return {
        "decision": decision.action.value,
        "rule": decision.rule,
        "reason": decision.reason,
        "risk": decision.risk,
        "hidden": decision.hidden,
    }


def _print_finding(finding: Finding) -> None:
    colour = {"error": "red", "warning": "yellow"}.get(finding.severity, "cyan")
    console.print(f"[{colour}]{finding.severity}[/] {finding.where}: {finding.message}")
    if finding.fix:
        console.print(f"  fix: {finding.fix}", markup=False)


@app.command()
def explain(
    server: Annotated[str, typer.Option("--server", help="Server name as configured.")],
    tool: Annotated[str, typer.Option("--tool", help="The server's own tool name.")],
    args: Annotated[str, typer.Option("--args", help="The call's arguments as a JSON object.")] = "{}",
    client: ClientOption = "local",
    definition: Annotated[
        str | None,
        typer.Option("--definition", help="The tool's definition as the server lists it: inline JSON, or a JSON file."),
    ] = None,
    dns: Annotated[bool, typer.Option("--dns/--no-dns", help="Resolve URL hosts as the gateway would.")] = False,
    config: ConfigOption = Path("bastion.toml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What policy decides for one call, with the rule that matched and the reason."""
    loaded = read_config(config)
    _require_server(loaded, config, server, "--server")
    arguments = _json_object(args, "--args")
    tool_definition = _definition(definition) if definition is not None else None
    resolve = make_resolver(loaded.dns) if dns else None
    decision = explain_call(compile_policy(loaded), server, tool, arguments, client, tool_definition, resolve=resolve)
    if as_json:
        typer.echo(json.dumps(_as_json(decision)))
        return
    colour = {"allow": "green", "deny": "red", "approve": "yellow"}[decision.action.value]
    console.print(f"[bold {colour}]{decision.action.value}[/] (rule {decision.rule})")
    console.print(decision.reason, markup=False)
    if decision.risk:
        console.print(f"risk class: {decision.risk}" + ("" if definition else " (from the name; pass --definition)"))
    if decision.hidden:
        console.print("the client is not shown this tool; a call gets 'Unknown tool'")


@app.command("test")
def run_cases(
    cases: Annotated[Path, typer.Argument(help="A TOML file of [[case]] tables with an expected decision each.")],
    config: ConfigOption = Path("bastion.toml"),
) -> None:
    """Run a file of cases against the policy, for policy-as-code in CI (exit 1 if any fails).

    Each case: server, tool, args (a table), optional client and definition, and expect
    (allow, deny or approve), optionally rule (the rule id that must decide).
    """
    loaded = read_config(config)
    policy = compile_policy(loaded)
    failed = 0
    table = _cases(cases, loaded, config)
    for number, case in enumerate(table, start=1):
        label = case.get("name") or f"case {number}"
        decision = explain_call(
            policy,
            str(case["server"]),
            str(case["tool"]),
            dict(case.get("args") or {}),
            str(case.get("client") or "local"),
            case.get("definition"),
        )
        wrong = decision.action.value != case["expect"] or ("rule" in case and decision.rule != case["rule"])
        if wrong:
            failed += 1
            expected = case["expect"] + (f" by {case['rule']}" if "rule" in case else "")
            console.print(f"[red]FAIL[/] {label}: expected {expected}, got {decision.action.value} by {decision.rule}")
            console.print(f"  {decision.reason}", markup=False)
        else:
            console.print(f"[green]ok[/]   {label}: {decision.action.value} ({decision.rule})")
    console.print(f"{len(table) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


def _cases(path: Path, config: BastionConfig, config_path: Path) -> list[dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, [ConfigProblem("file", str(exc), "write [[case]] tables in TOML")]) from None
    cases = data.get("case")
    problems: list[ConfigProblem] = []
    if not isinstance(cases, list) or not cases:
        problems.append(ConfigProblem("case", "no [[case]] tables", "add [[case]] with server, tool, args, expect"))
        raise ConfigError(path, problems)
    for number, case in enumerate(cases, start=1):  # pyright: ignore[reportUnknownVariableType,reportUnknownArgumentType]
        if not isinstance(case, dict):
            problems.append(ConfigProblem(f"case[{number}]", "is not a table"))
            continue
        for key in ("server", "tool", "expect"):
            if key not in case:
                problems.append(ConfigProblem(f"case[{number}].{key}", "is missing", f"add {key} = …"))
        if case.get("expect") not in (None, "allow", "deny", "approve"):  # pyright: ignore[reportUnknownMemberType]
            problems.append(ConfigProblem(f"case[{number}].expect", "must be allow, deny or approve"))
        if not isinstance(case.get("args", {}), dict):  # pyright: ignore[reportUnknownMemberType]
            problems.append(ConfigProblem(f"case[{number}].args", "must be a table of arguments"))
        server = case.get("server")  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if server is not None and str(server) not in config.servers:  # pyright: ignore[reportUnknownArgumentType]
            # A typo would otherwise be decided as an unknown server (deny) and pass a case expecting deny.
            problems.append(_unconfigured(f"case[{number}].server", str(server), config, config_path))  # pyright: ignore[reportUnknownArgumentType]
    if problems:
        raise ConfigError(path, problems)
    return cases  # pyright: ignore[reportUnknownVariableType]


@app.command()
def replay(
    since: Annotated[str, typer.Option("--since", help="How far back: a duration (15m, 2d) or an ISO time.")],
    config: ConfigOption = Path("bastion.toml"),
    new: Annotated[Path | None, typer.Option("--new", help="The policy to try (default: --config itself).")] = None,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """What a policy would have decided on the calls recorded in the audit log, as a diff against what happened.

    Arguments come from the encrypted payloads (this needs the audit master key); a call whose
    payload was redacted or shredded is replayed without its arguments and marked so.
    """
    loaded = read_config(new or config)
    policy = compile_policy(loaded)
    start = moment(since, "--since") or 0.0
    opened = open_audit_store(home(), store)
    total = changed = 0
    for call in _recorded_calls(opened, start):
        total += 1
        decision = explain_call(policy, call["server"], call["tool"], call["arguments"], call["client"])
        if decision.action.value == call["was"]:
            continue
        changed += 1
        row = {**call, "now": decision.action.value, "rule": decision.rule, "reason": decision.reason}
        row.pop("arguments")
        if as_json:
            typer.echo(json.dumps(row))
        else:
            console.print(
                f"{call['time']} {call['client']} {call['server']}.{call['tool']}: "
                f"[bold]{call['was']} → {decision.action.value}[/] ({decision.rule}) {decision.reason}",
                markup=True,
                highlight=False,
            )
    summary = f"{total} recorded calls replayed; {changed} would be decided differently"
    (err_console if as_json else console).print(summary)


def _recorded_calls(store: AuditStore, since: float) -> Iterator[dict[str, Any]]:
    for kind in (Kind.CALL_INTENT, Kind.CALL_DENIED):
        rows = store.search(SearchFilter(None, None, None, None, kind.value, since, None, 10_000_000))
        for log_id, row in rows:
            entry: Any = indexed_entry(log_id, row)  # fails unless the row's server, tool, client, time are the entry's
            fields = entry.get("fields", entry)
            if fields.get("method", "tools/call") != "tools/call" or not row.server or not row.tool:
                continue
            was = str((fields.get("decision") or {}).get("action", "allow" if kind is Kind.CALL_INTENT else "deny"))
            text = plaintext(store, log_id, row.idx)
            arguments: object = {}
            if text:
                values = orjson.loads(text).get("values", {})
                if "arguments" in values:
                    arguments = orjson.loads(values["arguments"]) or {}
            yield {
                "time": format_time(row.time),
                "index": row.idx,
                "client": row.client or "local",
                "server": row.server,
                "tool": row.tool,
                "was": was,
                "arguments": arguments if isinstance(arguments, dict) else {},
                "payload": bool(text),
            }


@app.command()
def shadow(
    since: Annotated[str, typer.Option("--since", help="How far back: a duration (15m, 2d) or an ISO time.")] = "7d",
    until: Annotated[str | None, typer.Option("--until", help="Up to when (default: now).")] = None,
    server: Annotated[str | None, typer.Option("--server", help="Only this server's calls.")] = None,
    arguments: Annotated[
        bool, typer.Option("--arguments/--no-arguments", help="Show each call's arguments (needs the master key).")
    ] = True,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """What the candidate policy would have refused or allowed differently, call by call, over a period.

    Reads the decisions the gateway recorded for the live policy and the candidate (`--candidate`
    or `[policy] candidate`) on live traffic; nothing is decided again. See also `replay`.
    """
    start = moment(since, "--since") or 0.0
    opened = open_audit_store(home(), store)
    report = shadow_report(opened, indexed_entry, start, moment(until, "--until"), server)
    for row in report.rows:
        shown = _call_arguments(opened, row) if arguments else None
        if as_json:
            typer.echo(json.dumps({**row.to_dict(), "time": format_time(row.time), "arguments": shown}))
            continue
        monitor = "" if row.enforced else " [yellow](monitor: not enforced)[/]"
        console.print(
            f"{format_time(row.time)} {row.log}/{row.index} {row.client} {row.server}.{row.tool}: "
            f"[bold]{row.live} → {row.candidate}[/] (live {row.live_rule}, candidate {row.candidate_rule}){monitor}",
            highlight=False,
        )
        console.print(f"  {row.candidate_reason}", markup=False, highlight=False)
        if shown is not None:
            console.print(f"  arguments: {json.dumps(shown)}", markup=False, highlight=False)
    if not report.compared:
        summary = (
            "no call in the period carries a candidate decision: start the gateway with --candidate FILE "
            "or [policy] candidate"
        )
    else:
        held = len(report.rows) - report.would_refuse - report.would_allow
        summary = (
            f"{report.compared} calls decided under both policies; {len(report.rows)} differently: "
            f"the candidate would refuse {report.would_refuse}, allow {report.would_allow}"
            + (f", hold {held} for a person" if held else "")
        )
    (err_console if as_json else console).print(summary, markup=False)


def _call_arguments(store: AuditStore, row: ShadowRow) -> dict[str, Any] | None:
    """The call's arguments from its encrypted payload; None without the key or once redacted."""
    text = plaintext(store, row.log, row.index)
    if not text:
        return None
    values = orjson.loads(text).get("values", {})
    found = orjson.loads(values["arguments"]) if "arguments" in values else None
    return found if isinstance(found, dict) else None  # pyright: ignore[reportUnknownVariableType]


@app.command()
def promote(
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log, with who).")],
    config: ConfigOption = Path("bastion.toml"),
    candidate: Annotated[
        Path | None, typer.Option("--candidate", help="The file to make live (default: [policy] candidate).")
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who approved it (default: the login name; both are recorded).")
    ] = None,
) -> None:
    """Make the candidate policy live: its file replaces the config (the old one kept as NAME.previous),
    recorded as a policy.change entry naming who and why (SOC 2 CC8.1). Gateways take it at their next start."""
    live = read_config(config)
    path = candidate_file(with_candidate(live, config, candidate))
    if path is None:
        fix = "pass --candidate FILE, or set [policy] candidate in the config"
        raise ConfigError(config, [ConfigProblem("policy.candidate", "there is no candidate to promote", fix)])
    promoted = load_candidate(path)  # validated and linted like the gateway does
    if path.resolve() == config.resolve():
        raise ConfigError(config, [ConfigProblem("--candidate", "is the config itself", "name the candidate file")])
    previous = write_promoted(config, path.read_text(encoding="utf-8"))
    fields = {
        "change": "promote",
        "by": by or who(),
        **({"os_user": who()} if by else {}),
        "reason": reason,
        "config": str(config.absolute()),
        "candidate": str(path),
        "from_sha256": config_digest(live),
        "to_sha256": config_digest(promoted),
        "monitor": sorted(monitored(promoted)),
    }
    try:
        anyio.run(record_entry, live, os.environ.get("BASTION_AUDIT_STORE"), Record(Kind.POLICY_CHANGE, fields))
    except BaseException:
        os.replace(previous, config)  # no promotion without its record
        fsync_directory(config.parent)
        raise
    console.print(f"{path} is now {config} (the previous config is kept as {previous.name}); recorded as promoted")
    console.print("running gateways take it at their next start", markup=False)
    if promoted.policy.candidate:
        console.print(f"note: the promoted config still names a candidate ({promoted.policy.candidate})", markup=False)
    if monitored(promoted):
        names = ", ".join(sorted(monitored(promoted)))
        console.print(f'still in monitor mode: {names}; set mode = "enforce" to block', markup=False)


ServerArgument = Annotated[str, typer.Argument(help="Server name as configured.")]
ToolArgument = Annotated[str, typer.Argument(help="The server's own tool name.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]


@app.command()
def kill(
    server: ServerArgument, tool: ToolArgument, reason: ReasonOption, config: ConfigOption = Path("bastion.toml")
) -> None:
    """Switch a tool off now, on every gateway sharing this BASTION_HOME (within a second)."""
    _switch(server, tool, reason, config, off=True)


@app.command()
def unkill(
    server: ServerArgument, tool: ToolArgument, reason: ReasonOption, config: ConfigOption = Path("bastion.toml")
) -> None:
    """Switch a tool back on (policy still decides its calls)."""
    _switch(server, tool, reason, config, off=False)


def _switch(server: str, tool: str, reason: str, config: Path, *, off: bool) -> None:
    loaded = _config_naming(config, server)
    state = open_store()
    try:
        changed = state.kill(server, tool, reason, who(), SystemClock().now()) if off else state.unkill(server, tool)
    finally:
        state.close()
    _record_change(loaded, "kill" if off else "unkill", server, tool, reason)
    now = "switched off" if off else "switched on again"
    console.print(f"{server}.{tool} is {now}" if changed else f"{server}.{tool} was already {'off' if off else 'on'}")


@app.command()
def kills(as_json: JsonOption = False) -> None:
    """The tools switched off with `bastion policy kill`."""
    state = open_store()
    try:
        rows = state.kills()
    finally:
        state.close()
    if as_json:
        typer.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    for row in rows:
        console.print(f"{row.server}.{row.tool}: {row.reason} (by {row.by})", markup=False)
    if not rows:
        console.print("no tools are switched off")


def _config_naming(path: Path, server: str) -> BastionConfig:
    loaded = read_config(path)
    _require_server(loaded, path, server, "SERVER")
    return loaded


def _require_server(config: BastionConfig, path: Path, server: str, where: str) -> None:
    """A server named on the command line must be configured: policy would otherwise decide for a
    server that does not exist (deny, as for any unknown server) and look like an answer."""
    if server not in config.servers:
        raise ConfigError(None, [_unconfigured(where, server, config, path)])


def _unconfigured(where: str, server: str, config: BastionConfig, path: Path) -> ConfigProblem:
    names = ", ".join(config.servers) or "(none)"
    return ConfigProblem(where, f"{server!r} is not configured in {path}", f"use one of: {names}")


def _record_change(config: BastionConfig, action: str, server: str, tool: str, reason: str) -> None:
    fields = {"change": action, "server": {"name": server}, "tool": tool, "reason": reason, "by": who()}
    anyio.run(record_entry, config, os.environ.get("BASTION_AUDIT_STORE"), Record(Kind.POLICY_CHANGE, fields))


def _definition(value: str) -> dict[str, Any]:
    """`--definition`: inline JSON (it starts with `{`), else the path of a JSON file."""
    if value.lstrip().startswith("{"):
        return _json_object(value, "--definition")
    path = Path(value)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = ConfigProblem(
            "--definition",
            f"is neither inline JSON nor a readable file ({getattr(exc, 'strerror', None) or exc})",
            'give the tool\'s definition as JSON, e.g. \'{"name": "read_file", "inputSchema": {...}}\', or a file holding it',
        )
        raise ConfigError(None, [problem]) from None
    return _json_object(text, str(path))


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            None, [ConfigProblem(where, f"is not JSON: {exc}", 'give a JSON object, e.g. \'{"path": "/srv/a.txt"}\'')]
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(None, [ConfigProblem(where, "is not a JSON object", "give a JSON object")])
    return value  # pyright: ignore[reportUnknownVariableType]

"""`bastion audit`: read, search, verify, prove and export the tamper-evident log."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import anyio
import orjson
import typer

from bastion.audit.checkpoint import CheckpointError, Verifier
from bastion.audit.entry import Kind, Record, format_time
from bastion.audit.export import to_jsonl, to_ocsf
from bastion.audit.keys import Keyring
from bastion.audit.payload import AUDIT_MASTER_KEY
from bastion.audit.proofs import BundleError, check_bundle, make_bundle, make_consistency_bundle
from bastion.audit.service import read_witnesses, recover
from bastion.audit.storewide import verify_store
from bastion.cli._common import JsonOption, StoreOption, home, plaintext, read_config, record_entry, who
from bastion.cli._console import console, err_console
from bastion.cli._durations import moment
from bastion.cli._listing import Listing
from bastion.cli._progress import progress
from bastion.clock import SystemClock
from bastion.config.load import load_config
from bastion.config.model import AuditConfig, BastionConfig
from bastion.errors import ConfigError, ConfigProblem, StoreError
from bastion.files import load_master_key
from bastion.store.audit import AuditStore, EntryRow, SearchFilter
from bastion.store.audit_open import open_store

__all__ = ["app"]

app = typer.Typer(
    help="The tamper-evident audit log: tail, search, verify, prove, export, redact.", no_args_is_help=True
)

JsonLinesOption = Annotated[
    bool, typer.Option("--json", help="Print JSON lines: one entry per line, as `audit export` writes them.")
]


def _store(url: str | None) -> AuditStore:
    return open_store(home(), url)


def _verifiers(keys: list[str] | None) -> list[Verifier]:
    if keys:
        found: list[Verifier] = []
        for key in keys:
            text = Path(key).read_text(encoding="utf-8") if Path(key).exists() else key
            try:
                found += [Verifier.decode(line) for line in text.splitlines() if line.strip()]
            except CheckpointError as exc:
                raise ConfigError(
                    None, [ConfigProblem("--key", str(exc), "pass a NAME+KEYID+KEY verifier key or a file of them")]
                ) from None
        return found
    found = Keyring(home(), "").verifiers()
    if not found:
        raise ConfigError(
            None, [ConfigProblem("--key", "no trusted public key", "pass --key with the log's verifier key")]
        )
    return found


def _describe(log_id: str, row: EntryRow) -> dict[str, Any]:
    entry = orjson.loads(row.entry)
    return {"log": log_id, "index": row.idx, "time": format_time(entry["t"] / 1000), **entry}


def _table(rows: list[dict[str, Any]]) -> Listing:
    """The time over the entry's address (what `audit prove INDEX --log LOG` takes), the kind over
    the decision or status, the call over the client: three columns that stand whole in 80."""
    table = Listing(
        "time\nlog/index", "kind\noutcome", "server.tool\nclient", keys=("time\nlog/index", "kind\noutcome"), lines=True
    )
    for row in rows:
        named: dict[str, Any] = row.get("server") or {}
        decided: dict[str, Any] = row.get("decision") or {}
        server, tool = str(named.get("name", "")), str(row.get("tool", ""))
        outcome = [str(decided.get("action", "")), str(row.get("status", ""))]
        call = f"{server}.{tool}" if server and tool else server or tool
        table.add(
            f"{row.get('time', '')}\n{row['log']}/{row['index']}",
            "\n".join([str(row.get("kind", "")), *(part for part in outcome if part)]),
            "\n".join(part for part in (call, str(row.get("client", ""))) if part),
        )
    return table


@app.command()
def tail(
    count: Annotated[int, typer.Option("-n", help="How many recent entries.")] = 20,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new entries.")] = False,
    store: StoreOption = None,
    as_json: JsonLinesOption = False,
) -> None:
    """Show the most recent entries of every log."""
    opened = _store(store)
    rows = list(reversed(opened.search(SearchFilter(limit=count))))
    seen = {(log_id, row.idx) for log_id, row in rows}
    _print([_describe(log_id, row) for log_id, row in rows], as_json)
    while follow:
        time.sleep(0.5)
        recent = reversed(opened.search(SearchFilter(limit=200)))
        fresh = [(log_id, row) for log_id, row in recent if (log_id, row.idx) not in seen]
        seen |= {(log_id, row.idx) for log_id, row in fresh}
        if fresh:
            _print([_describe(log_id, row) for log_id, row in fresh], as_json)


def _print(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
    elif rows:
        console.print(_table(rows))


@app.command()
def search(
    server: Annotated[str | None, typer.Option(help="Server name.")] = None,
    tool: Annotated[str | None, typer.Option(help="Tool name.")] = None,
    client: Annotated[str | None, typer.Option(help="Client identity.")] = None,
    decision: Annotated[str | None, typer.Option(help="allow, deny or approve.")] = None,
    kind: Annotated[str | None, typer.Option(help=f"Entry kind: {', '.join(k.value for k in Kind)}.")] = None,
    since: Annotated[str | None, typer.Option(help="From: a duration back (15m, 2d) or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option(help="Until: a duration back or an ISO time.")] = None,
    text: Annotated[
        str | None, typer.Option(help="Free text in the decrypted arguments and results (needs the key).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries.")] = 100,
    store: StoreOption = None,
    as_json: JsonLinesOption = False,
) -> None:
    """Find entries by server, tool, client, decision, kind, time, or text in their payloads."""
    opened = _store(store)
    filters = SearchFilter(
        server,
        tool,
        client,
        decision,
        kind,
        moment(since, "--since"),
        moment(until, "--until"),
        limit if text is None else 100000,
    )
    rows = opened.search(filters)
    if text is not None:
        rows = [r for r in rows if text in plaintext(opened, r[0], r[1].idx)][:limit]
    _print([_describe(log_id, row) for log_id, row in rows], as_json)


@app.command()
def verify(
    store: StoreOption = None,
    checkpoint: Annotated[
        list[Path] | None, typer.Option("--checkpoint", help="A signed checkpoint published earlier (repeat).")
    ] = None,
    key: Annotated[
        list[str] | None,
        typer.Option("--key", help="Trusted verifier key, or a file of them (default: BASTION_HOME's)."),
    ] = None,
    witness: Annotated[
        bool,
        typer.Option(help="Also check BASTION_HOME's witness checkpoints (off for a store copied from elsewhere)."),
    ] = True,
    payloads: Annotated[
        bool,
        typer.Option(
            "--payloads", help="Also decrypt every payload and check it against its entry's commitments (master key)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Replay every entry, recompute the tree, check every checkpoint and stored column. Exit 0 only if all holds."""
    opened = _store(store)
    verifiers = _verifiers(key)
    master = load_master_key(AUDIT_MASTER_KEY, home(), os.environ, create=False) if payloads else None
    if payloads and master is None:
        fix = "set BASTION_AUDIT_KEY, or keep the key file in BASTION_HOME/keys/audit-master.key"
        raise ConfigError(None, [ConfigProblem("--payloads", "no audit master key here", fix)])
    external = [path.read_text(encoding="utf-8") for path in checkpoint or []]
    if witness:
        external += list(read_witnesses(home(), opened).values())
    with progress("verifying", "entries") as update:
        reports = verify_store(
            opened, verifiers, external=external, master=master, home=home(), url=store, progress=update
        )
    problems = [p for r in reports for p in r.problems]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": not problems,
                    "logs": [
                        {
                            "log": r.log_id,
                            "origin": r.origin,
                            "size": r.size,
                            "covered": r.covered,
                            "checkpoints": r.checkpoints,
                            "problems": [p.describe() for p in r.problems],
                        }
                        for r in reports
                    ],
                },
                indent=2,
            )
        )
    else:
        for report in reports:
            state = "ok" if report.ok else "FAILED"
            console.print(
                f"{report.origin}: {report.size} entries, {report.checkpoints} signed checkpoints, {state}",
                markup=False,
            )
        if problems:
            err_console.print(f"first problem: {problems[0].describe()}", markup=False)
        else:
            console.print(f"verified {sum(r.size for r in reports)} entries in {len(reports)} logs")
    if problems:
        raise typer.Exit(1)


@app.command()
def prove(
    index: Annotated[int | None, typer.Argument(help="The entry's index in its log (for an inclusion proof).")] = None,
    log: Annotated[str | None, typer.Option(help="The log id (default: the newest log).")] = None,
    since: Annotated[
        Path | None, typer.Option(help="An older signed checkpoint you kept: prove the log only grew since.")
    ] = None,
    store: StoreOption = None,
) -> None:
    """Print a proof bundle: an entry's inclusion, or (--since) consistency with an older checkpoint."""
    opened = _store(store)
    log_id = log or _newest_log(opened)
    latest = opened.latest_checkpoint(log_id)
    if latest is None:
        raise StoreError(f"log {log_id} has no signed checkpoint yet")
    try:
        if since is not None:
            old_note = since.read_text(encoding="utf-8")
            bundle = make_consistency_bundle(opened, log_id, old_note, latest, _verifiers(None))
        elif index is not None:
            bundle = make_bundle(opened, log_id, index, latest)
        else:
            raise ConfigError(
                None, [ConfigProblem("INDEX", "nothing to prove", "give an entry index, or --since FILE")]
            )
    except BundleError as exc:
        raise StoreError(str(exc)) from None
    typer.echo(json.dumps(bundle, indent=2))


@app.command("check-proof")
def check_proof(
    bundle: Annotated[Path, typer.Argument(help="A bundle from `bastion audit prove`.")],
    key: Annotated[list[str] | None, typer.Option("--key", help="Trusted verifier key, or a file of them.")] = None,
) -> None:
    """Check an inclusion proof bundle offline: the checkpoint's signature and the path to its root."""
    try:
        entry = check_bundle(json.loads(bundle.read_text(encoding="utf-8")), _verifiers(key))
    except (BundleError, json.JSONDecodeError) as exc:
        err_console.print(f"proof does not verify: {exc}", markup=False)
        raise typer.Exit(1) from None
    console.print(f"proof verifies: {entry.decode('utf-8')}", markup=False)  # the entry, or what grew


def _newest_log(store: AuditStore) -> str:
    logs = store.logs()
    if not logs:
        raise StoreError("the audit store has no logs yet")
    return logs[-1].log_id


@app.command("checkpoint")
def show_checkpoint(
    log: Annotated[str | None, typer.Option(help="The log id (default: every log).")] = None, store: StoreOption = None
) -> None:
    """Print the latest signed checkpoint of each log, for publishing or witnessing elsewhere."""
    opened = _store(store)
    for log_id in [log] if log else [row.log_id for row in opened.logs()]:
        latest = opened.latest_checkpoint(log_id)
        if latest is not None:
            typer.echo(latest.note)


@app.command()
def seal(store: StoreOption = None) -> None:
    """Sign the entries that a crashed gateway left without a checkpoint (a gateway's next start does it too)."""
    opened = _store(store)
    keyring = Keyring(home(), "")
    signer = keyring.signer(create=False)
    sealed = recover(opened, home(), signer, keyring.verifiers() or [signer.verifier], SystemClock())
    for log_id, count in sealed:
        typer.echo(f"sealed {count} entries of log {log_id}")
    if not sealed:
        typer.echo("nothing to seal")


@app.command()
def key() -> None:
    """Print the trusted verifier keys (public) of this BASTION_HOME, to give to an auditor."""
    for verifier in Keyring(home(), "").verifiers():
        typer.echo(verifier.encode())


@app.command("rotate-key")
def rotate_key(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="bastion.toml, for the instance name.")] = None,
) -> None:
    """Start signing with a new key; old checkpoints stay verifiable. The rotation is an entry."""
    loaded = BastionConfig() if config is None else read_config(config)
    signer = Keyring(home(), f"bastion-{loaded.gateway.instance}").rotate()
    anyio.run(record_entry, loaded, None, Record(Kind.KEY_ROTATED, {"verifier": signer.verifier.encode()}))
    typer.echo(signer.verifier.encode())


@app.command()
def redact(
    index: Annotated[int, typer.Argument(help="The entry whose payload to remove.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the log).")],
    log: Annotated[str | None, typer.Option(help="The log id (default: the newest log).")] = None,
    store: StoreOption = None,
) -> None:
    """Remove an entry's payload (arguments and result); the entry and every proof stay valid."""
    opened = _store(store)
    log_id = log or _newest_log(opened)
    if not opened.redact(log_id, index):
        raise StoreError(f"log {log_id} has no payload at {index} (or it was already redacted)")
    record = Record(Kind.PAYLOAD_REDACTED, {"target": {"log": log_id, "index": index}, "reason": reason, "by": who()})
    anyio.run(record_entry, BastionConfig(audit=AuditConfig(store=store)), store, record)
    typer.echo(f"redacted the payload of {log_id}/{index}")


@app.command()
def shred(
    before: Annotated[str, typer.Option(help="Destroy the data keys of every day before this date (YYYY-MM-DD).")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the log).")],
    store: StoreOption = None,
) -> None:
    """Crypto-shred old payloads: destroy the data keys of whole days; entries and proofs stay valid."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", before):
        raise ConfigError(None, [ConfigProblem("--before", f"{before!r} is not a date", "write e.g. 2026-01-01")])
    opened = _store(store)
    days = opened.shred_before(before, time.time())
    record = Record(Kind.PAYLOADS_SHREDDED, {"days": days, "before": before, "reason": reason, "by": who()})
    anyio.run(record_entry, BastionConfig(audit=AuditConfig(store=store)), store, record)
    typer.echo(f"destroyed the data keys of {len(days)} day(s): {', '.join(days) or 'none'}")


RETENTION_DAYS = {"soc2": 365, "hipaa": 2190}
"""Days payloads are kept under each profile: SOC 2 one year, HIPAA six (45 CFR 164.316(b)(2)(i))."""


@app.command()
def prune(
    config: Annotated[Path, typer.Option("--config", "-c", help="bastion.toml with [audit] retention.")] = Path(
        "bastion.toml"
    ),
    store: StoreOption = None,
) -> None:
    """Apply `[audit] retention`: crypto-shred the payloads of days older than the profile keeps.

    Entries, their commitments and every proof stay; only the encrypted arguments and results of
    those days become unreadable, and the pruning is itself an entry (never a silent delete).
    """
    loaded = load_config(config)
    retention = loaded.audit.retention
    if retention == "none":
        raise ConfigError(
            config,
            [
                ConfigProblem(
                    "audit.retention", "no retention profile is set", 'set retention = "hipaa", "soc2" or days'
                )
            ],
        )
    days = retention if isinstance(retention, int) else RETENTION_DAYS[retention]
    before = time.strftime("%Y-%m-%d", time.gmtime(time.time() - days * 86400))
    store_url = store or loaded.audit.store
    shredded = _store(store_url).shred_before(before, time.time())
    fields = {"days": shredded, "before": before, "reason": f"retention {retention} ({days} days)", "by": who()}
    anyio.run(record_entry, loaded, store_url, Record(Kind.PAYLOADS_SHREDDED, fields))
    typer.echo(f"retention {retention}: destroyed the data keys of {len(shredded)} day(s) before {before}")


@app.command()
def export(
    format: Annotated[str, typer.Option("--format", help="jsonl or ocsf.")] = "jsonl",
    since: Annotated[str | None, typer.Option(help="From: a duration back or an ISO time.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
    store: StoreOption = None,
) -> None:
    """Export entries as JSONL, or as OCSF: tool calls as API Activity (6003), alerts as Detection Finding (2004)."""
    if format not in ("jsonl", "ocsf"):
        raise ConfigError(None, [ConfigProblem("--format", f"{format!r} is not a format", "use jsonl or ocsf")])
    opened = _store(store)
    start = moment(since, "--since") or 0.0
    sink = out.open("wb") if out else sys.stdout.buffer
    try:
        for log_id, row in _all_entries(opened, start):
            if format == "jsonl":
                sink.write(to_jsonl(log_id, row) + b"\n")
            elif (event := to_ocsf(log_id, row)) is not None:
                sink.write(orjson.dumps(event) + b"\n")
    finally:
        if out:
            sink.close()


def _all_entries(store: AuditStore, since: float) -> Iterator[tuple[str, EntryRow]]:
    for log in store.logs():
        for row in store.entries(log.log_id):
            if row.time >= since:
                yield log.log_id, row

"""`bastion report`: the evidence pack for an audit period, and its offline re-check.

bastion report --period 2026-10-01..2026-12-31 --framework all --out q4-evidence
bastion report verify q4-evidence --key 'bastion-bastion+1a2b3c4d+AQ…'
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from bastion.audit.checkpoint import CheckpointError, Verifier
from bastion.audit.keys import Keyring
from bastion.cli._common import JsonOption, home
from bastion.cli._console import console, err_console
from bastion.cli._listing import Listing
from bastion.cli._progress import progress
from bastion.compliance.check import check_pack
from bastion.compliance.controls import Assessment, Status
from bastion.compliance.pack import Request, build_pack
from bastion.compliance.render import CHROMIUM_ENV, find_chromium
from bastion.compliance.timeline import Period, PeriodError
from bastion.config.load import load_config
from bastion.config.model import BastionConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.store.audit_open import open_store

__all__ = ["app"]

app = typer.Typer(
    help=(
        "Evidence packs for an audit period: SOC 2 (CC6-CC8) and HIPAA (164.312 …) controls, evidenced from "
        "the audit log, signed, and re-checkable offline with `bastion report verify`."
    ),
    invoke_without_command=True,
    no_args_is_help=True,
)

KeyOption = Annotated[
    list[str] | None,
    typer.Option("--key", help="Trusted verifier key (NAME+KEYID+KEY), or a file of them (default: BASTION_HOME's)."),
]
_STATUS_STYLE = {Status.EVIDENCED: "green", Status.NO_EVENTS: "dim", Status.GAP: "red"}


def _trusted(keys: list[str] | None) -> list[Verifier]:
    if not keys:
        found = Keyring(home(), "").verifiers()
        if not found:
            raise ConfigError(
                None, [ConfigProblem("--key", "no trusted public key", "pass --key with the gateway's verifier key")]
            )
        return found
    trusted: list[Verifier] = []
    for key in keys:
        text = Path(key).read_text(encoding="utf-8") if Path(key).is_file() else key
        try:
            trusted += [Verifier.decode(line) for line in text.splitlines() if line.strip()]
        except CheckpointError as exc:
            raise ConfigError(
                None, [ConfigProblem("--key", str(exc), "pass a NAME+KEYID+KEY verifier key or a file of them")]
            ) from None
    return trusted


def _config(path: Path | None) -> tuple[BastionConfig | None, str | None]:
    if path is None:
        default = Path("bastion.toml")
        if not default.is_file():
            return None, None
        path = default
    return load_config(path), str(path)


@app.callback()
def report(
    context: typer.Context,
    period: Annotated[str | None, typer.Option(help="FROM..TO: dates (both days included) or ISO 8601 times.")] = None,
    framework: Annotated[str, typer.Option(help="soc2, hipaa or all.")] = "all",
    out: Annotated[Path | None, typer.Option(help="The folder to write (new, or empty).")] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="BASTION_CONFIG", help="bastion.toml (default: ./bastion.toml if any)."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(envvar="BASTION_AUDIT_STORE", help="sqlite:PATH or postgresql://… (default: config's)."),
    ] = None,
    key: KeyOption = None,
    samples: Annotated[int, typer.Option(min=0, max=10000, help="Entries to sample with inclusion proofs.")] = 25,
    seed: Annotated[
        str | None, typer.Option(help="Choose the samples with this seed (default: from the closing checkpoints).")
    ] = None,
    pdf: Annotated[bool, typer.Option(help="Print report.pdf with headless Chromium.")] = True,
    witness: Annotated[bool, typer.Option(help="Also check BASTION_HOME's witness checkpoints.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Write the evidence pack for a period: index.html, report.pdf, controls.json and the evidence."""
    if context.invoked_subcommand is not None:
        return
    if period is None or out is None:
        missing = "--period" if period is None else "--out"
        raise ConfigError(
            None, [ConfigProblem(missing, "is required", "e.g. --period 2026-10-01..2026-12-31 --out q4")]
        )
    if framework not in ("soc2", "hipaa", "all"):
        raise ConfigError(None, [ConfigProblem("--framework", f"{framework!r} is not a framework", "soc2, hipaa, all")])
    try:
        parsed = Period.parse(period)
    except PeriodError as exc:
        raise ConfigError(None, [ConfigProblem("--period", exc.problem, "write e.g. 2026-10-01..2026-12-31")]) from None
    loaded, source = _config(config)
    url = store or (loaded.audit.store if loaded else None)
    chromium = find_chromium() if pdf else None
    request = Request(
        period=parsed,
        home=home(),
        signer=Keyring(home(), "").signer(create=False),
        verifiers=_trusted(key),
        now=time.time(),
        framework=framework,
        store_url=url,
        config=loaded,
        config_source=source,
        samples=samples,
        seed=seed,
        chromium=chromium,
        witnesses=witness,
    )
    opened = open_store(home(), url)
    try:
        with progress("building the evidence pack"):
            outcome = build_pack(opened, request, out)
    except FileExistsError:
        raise ConfigError(
            None, [ConfigProblem("--out", f"{out} exists and is not empty", "choose a new folder")]
        ) from None
    finally:
        opened.close()
    if as_json:
        summary = {
            "directory": str(outcome.directory),
            "verified": outcome.verified,
            "problems": list(outcome.problems),
            "population": outcome.population,
            "samples": outcome.samples,
            "controls": [
                {"control": a.control.id, "status": a.status.value, "detail": a.detail} for a in outcome.assessments
            ],
        }
        typer.echo(json.dumps(summary, indent=2))
    else:
        console.print(_controls(outcome.assessments))
        console.print(
            f"wrote {outcome.directory}: {outcome.population} call entries, {outcome.samples} samples",
            markup=False,
            soft_wrap=True,
        )
    if pdf and outcome.pdf_warning:
        err_console.print(f"warning: {outcome.pdf_warning} Install Chromium or set {CHROMIUM_ENV}.", markup=False)
    if not outcome.verified:
        err_console.print(f"the audit log did not verify; the pack records it: {outcome.problems[0]}", markup=False)
        raise typer.Exit(1)


def _controls(assessments: tuple[Assessment, ...]) -> Listing:
    table = Listing("control", "status", keys=("control",))
    for assessment in assessments:
        table.add(assessment.control.id, assessment.summary, style=_STATUS_STYLE[assessment.status])
    return table


@app.command()
def verify(
    directory: Annotated[Path, typer.Argument(help="The pack's folder.", exists=True, file_okay=False)],
    key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-check a pack offline: signed manifest, signed result, checkpoints, population, samples."""
    checked = check_pack(directory, _trusted(key))
    if as_json:
        typer.echo(json.dumps({"ok": checked.ok, "passed": checked.passed, "failed": checked.failed}, indent=2))
    else:
        for line in checked.passed:
            console.print(f"ok: {line}", markup=False)
        for line in checked.failed:
            err_console.print(f"FAILED: {line}", markup=False)
        console.print("the pack verifies" if checked.ok else "the pack does NOT verify", markup=False)
    if not checked.ok:
        raise typer.Exit(1)

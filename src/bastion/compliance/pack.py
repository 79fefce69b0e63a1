"""Writing an evidence pack: one folder an auditor can read, print and re-verify offline.

The pack is written into a temporary folder beside `out` and renamed into place at the end, so
a half-written pack never looks finished. Order matters: the entries of the period are read
once (population, evidence files, samples offered), the store is verified, proofs are made,
the controls are assessed, the page is rendered and printed, and last the manifest of every
file is written and signed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from bastion.audit.checkpoint import Signer, Verifier
from bastion.audit.columns import Problem
from bastion.audit.export import to_jsonl
from bastion.audit.service import read_witnesses
from bastion.audit.storewide import verify_store
from bastion.audit.verify import LogReport
from bastion.compliance import catalog as c
from bastion.compliance.attest import (
    MANIFEST_TAG,
    RESULT_TAG,
    Bounds,
    Sampler,
    bounding,
    checkpoint_files,
    derive_seed,
    sample_files,
    sign_digest,
)
from bastion.compliance.controls import Assessment, Facts, artefacts_of, assess, describe
from bastion.compliance.evidence import LogSpan, locate, oldest_entry_day, oldest_payload_day, period_rows, runs
from bastion.compliance.render import FILES, RenderError, print_pdf, render_html
from bastion.compliance.timeline import Period, gaps, iso
from bastion.compliance.views import Views, documents
from bastion.config.model import BastionConfig
from bastion.files import fsync_directory
from bastion.processes import pid_alive
from bastion.store.audit import AuditStore

__all__ = ["Outcome", "Request", "build_pack"]


@dataclass(frozen=True, slots=True)
class Request:
    period: Period
    home: Path
    signer: Signer
    verifiers: list[Verifier]
    now: float
    framework: Literal["soc2", "hipaa", "all"] = "all"
    store_url: str | None = None
    config: BastionConfig | None = None
    config_source: str | None = None
    samples: int = 25
    seed: str | None = None
    chromium: str | None = None
    witnesses: bool = True


@dataclass(frozen=True, slots=True)
class Outcome:
    directory: Path
    assessments: tuple[Assessment, ...]
    verified: bool
    problems: tuple[str, ...]
    population: int
    samples: int
    pdf_warning: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple[str, ...])


class _Folder:
    """The pack being written: c.ENTRY_FILES files appended to line by line, the rest written whole."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lines: Counter[str] = Counter()
        self._open: dict[str, IO[bytes]] = {}

    def line(self, path: str, data: bytes) -> None:
        sink = self._open.get(path)
        if sink is None:
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            sink = self._open[path] = (self.root / path).open("wb")
        sink.write(data + b"\n")
        self.lines[path] += 1

    def write(self, path: str, data: bytes | str | dict[str, Any] | list[Any]) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, dict | list):
            data = orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"
        with target.open("wb") as sink:
            sink.write(data.encode("utf-8") if isinstance(data, str) else data)
            sink.flush()
            os.fsync(sink.fileno())

    def close(self) -> None:
        for sink in self._open.values():
            sink.flush()
            os.fsync(sink.fileno())
            sink.close()
        self._open.clear()

    def sha256(self, path: str) -> str:
        return hashlib.sha256((self.root / path).read_bytes()).hexdigest()


def build_pack(store: AuditStore, request: Request, out: Path) -> Outcome:
    """Write the pack for `request.period` to `out` (which must not exist, or be empty)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(out)
    staging = out.parent / f".{out.name}.{secrets.token_hex(4)}.partial"
    staging.mkdir(parents=True)
    try:
        outcome = _write(store, request, _Folder(staging), out)
        if out.exists():
            out.rmdir()
        staging.rename(out)
        fsync_directory(out.parent)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return outcome


@dataclass
class _Scan:
    """What one pass over the period's entries collected."""

    views: Views
    sampler: Sampler
    kinds: Counter[str]
    per_log: Counter[str]
    disagreeing: list[Problem]
    """Rows whose index columns or leaf hash disagree with their entry (the pack then fails)."""


def _scan(
    store: AuditStore, folder: _Folder, spans: list[LogSpan], bounds: list[Bounds], seed: str, count: int
) -> _Scan:
    """Read every entry of the period once: into its evidence files, the views and the sampler."""
    provable = {b.span.log_id: b.closing.size for b in bounds if b.closing is not None}
    scan = _Scan(Views(), Sampler(seed, count), Counter(), Counter(), [])
    for path in c.ENTRY_FILES:
        folder.write(path, b"")
    try:
        for log_id, row, entry, problem in period_rows(store, spans):  # counted as the entry says, not the index
            if problem is not None:
                scan.disagreeing.append(problem)
            paths = artefacts_of(entry)
            line = to_jsonl(log_id, row)
            for path in paths:
                folder.line(path, line)
            scan.views.add(entry)
            if c.CALLS in paths:
                scan.kinds[str(entry.get("kind"))] += 1
                scan.per_log[log_id] += 1
                if row.idx < provable.get(log_id, 0):
                    scan.sampler.offer(log_id, row.idx, row.leaf)
    finally:
        folder.close()
    return scan


def _write(store: AuditStore, request: Request, folder: _Folder, out: Path) -> Outcome:
    period, config, now = request.period, request.config, request.now
    spans = locate(store, period)
    bounds = bounding(store, spans)
    seed = request.seed or derive_seed(period, bounds)
    scan = _scan(store, folder, spans, bounds, seed, request.samples)
    witnesses = list(read_witnesses(request.home, store).values()) if request.witnesses else []
    reports = verify_store(
        store, request.verifiers, external=witnesses, home=request.home, url=request.store_url, alive=pid_alive
    )
    found = {p.describe() for r in reports for p in r.problems}
    notes: list[str] = list(dict.fromkeys(p.describe() for p in scan.disagreeing if p.describe() not in found))
    period_logs, files = checkpoint_files(store, bounds, request.verifiers, scan.per_log, notes)
    chosen, sample_bundles = sample_files(store, scan.sampler, bounds, notes)
    for path, content in {**files, **sample_bundles}.items():
        folder.write(path, content)
    gateway_runs = runs(spans, period, now, pid_alive)
    found_gaps = gaps([(run.start, run.end) for run in gateway_runs], period, now)
    oldest = (oldest_entry_day(spans), oldest_payload_day(store, spans))
    gateways = [run.describe() for run in gateway_runs]
    counts: dict[str, int] = {**_lines(folder), c.SAMPLES: len(chosen), c.VERIFICATION: len(reports)}
    counts[c.CHECKPOINTS] = sum(bool(log["opening"]) + bool(log["closing"]) for log in period_logs)
    for path, (value, count) in documents(
        scan.views, config, request.config_source, gateways, found_gaps, period, now, oldest
    ).items():
        folder.write(path, value)
        counts[path] = count
    problems = tuple(p.describe() for r in reports for p in r.problems) + tuple(notes)
    views = scan.views
    facts = Facts(
        counts=counts,
        tally=dict(views.tally),
        verified=not problems,
        problem=problems[0] if problems else "",
        unsigned=sum(b.span.hi - b.span.lo - b.proven for b in bounds),
        logs=len(bounds),
        gateways=len(gateway_runs),
        gaps=tuple(found_gaps),
        evidence_until=min(period.end, now),
        watch_enabled=config.watch.enabled if config else None,
        alerts=sum(a["raised_in_period"] for a in views.alerts()),
        untriaged=views.untriaged(),
        unreviewed_drift=views.unreviewed_drift(),
        unattributed=views.unattributed,
        clients=views.clients,
        anonymous_calls=views.anonymous_calls,
        servers_without_id=views.servers_without_id,
        config_source=request.config_source,
        config_digests=len(views.digests()),
        retention=config.audit.retention if config else "none",
        oldest_entry_day=oldest[0],
        oldest_payload_day=oldest[1],
    )
    assessments = tuple(assess(control, facts) for control in c.controls_for(request.framework))
    frameworks = ["soc2", "hipaa"] if request.framework == "all" else [request.framework]
    folder.write("controls.json", describe(period, frameworks, assessments))
    population = folder.lines[c.CALLS]
    result = {
        "format": "bastion-report-verification/1",
        "generated": iso(now),
        "period": {
            "label": period.label,
            "start_ms": period.start_ms,
            "end_ms": period.end_ms,
            "start": iso(period.start),
            "end": iso(period.end),
        },
        "store": store.identity,
        "ok": not problems,
        "problems": list(problems),
        "logs": [_report(r) for r in reports],
        "period_logs": period_logs,
        "population": {
            "file": c.CALLS,
            "entries": population,
            "sha256": folder.sha256(c.CALLS),
            "kinds": dict(sorted(scan.kinds.items())),
        },
        "samples": {"file": c.SAMPLES, "seed": seed, "count": len(chosen)},
        "signer": request.signer.verifier.encode(),
    }
    encoded = orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n"
    folder.write(c.VERIFICATION, encoded)
    folder.write("verification.sig", sign_digest(RESULT_TAG, encoded, request.signer))
    folder.write("keys.txt", "".join(v.encode() + "\n" for v in request.verifiers))
    integrity = {
        **result,
        "verified": not problems,
        "problem": problems[0] if problems else "",
        "entries": sum(r.size for r in reports),
        "checkpoints": sum(r.checkpoints for r in reports),
        "population": population,
        "kinds": dict(sorted(scan.kinds.items())),
        "unsigned": facts.unsigned,
        "samples": len(chosen),
        "seed": seed,
    }
    warning = _page(folder, request, frameworks, assessments, integrity)
    _manifest(folder, request.signer)
    return Outcome(out, assessments, not problems, problems, population, len(chosen), warning, tuple(notes))


def _lines(folder: _Folder) -> dict[str, int]:
    return {path: folder.lines[path] for path in c.ENTRY_FILES}


def _report(report: LogReport) -> dict[str, Any]:
    return {
        "log": report.log_id,
        "origin": report.origin,
        "size": report.size,
        "covered": report.covered,
        "checkpoints": report.checkpoints,
        "ok": report.ok,
        "problems": [p.describe() for p in report.problems],
    }


def _page(
    folder: _Folder,
    request: Request,
    frameworks: list[str],
    assessments: tuple[Assessment, ...],
    integrity: dict[str, Any],
) -> str | None:
    """index.html, and report.pdf printed from it; the warning to show when there is no PDF."""

    def html(note: str | None, warning: str | None) -> None:
        folder.write(
            "index.html",
            render_html(
                period=request.period,
                generated=request.now,
                frameworks=frameworks,
                assessments=assessments,
                integrity=integrity,
                files=FILES,
                pdf_note=note,
                pdf_warning=warning,
            ),
        )

    if request.chromium is None:
        warning = "Chromium was not found on the machine that made this pack; only the HTML was written."
        html(None, warning)
        return warning
    html("report.pdf is this page, printed by headless Chromium.", None)
    try:
        print_pdf(folder.root / "index.html", folder.root / "report.pdf", request.chromium)
    except RenderError as exc:
        (folder.root / "report.pdf").unlink(missing_ok=True)
        warning = f"printing the PDF failed ({exc.detail}); only the HTML was written."
        html(None, warning)
        return warning
    return None


def _manifest(folder: _Folder, signer: Signer) -> None:
    files = sorted(
        path.relative_to(folder.root).as_posix()
        for path in folder.root.rglob("*")
        if path.is_file() and path.name not in ("manifest.json", "manifest.sig")
    )
    manifest = {"format": "bastion-report-manifest/1", "files": {name: folder.sha256(name) for name in files}}
    encoded = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    folder.write("manifest.json", encoded)
    folder.write("manifest.sig", sign_digest(MANIFEST_TAG, encoded, signer))

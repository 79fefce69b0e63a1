"""The pack's human face: `index.html` from a Jinja2 template, and `report.pdf` printed from it by
the machine's headless Chromium.

The page is self-contained (inline CSS, no scripts, no external resources, a Content Security
Policy that forbids loading anything), because the auditor opens it offline and because strings
in it came from MCP servers and clients: everything is escaped, nothing can run or fetch.
Chromium prints it with networking off, in a throwaway profile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from bastion.compliance.catalog import FRAMEWORKS
from bastion.compliance.controls import Assessment, Status
from bastion.compliance.timeline import Period, stamp
from bastion.errors import BastionError

__all__ = ["CHROMIUM_ENV", "FILES", "RenderError", "find_chromium", "print_pdf", "render_html"]

CHROMIUM_ENV = "BASTION_CHROMIUM"
"""A Chromium (or Chrome) binary to print with, instead of the one found on PATH."""
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINT_TIMEOUT = 120.0
FILES: tuple[tuple[str, str], ...] = (
    ("index.html", "this report; report.pdf is the same page printed"),
    ("controls.json", "the control mapping with each control's status, artefacts and counts"),
    ("calls.jsonl", "every call entry of the period (intent, outcome, refusal) with its log, index and leaf hash"),
    ("evidence/*.jsonl", "the period's entries that evidence each control, in the same form"),
    ("evidence/*.json", "views computed from them: inventory, access review, identities, alerts, coverage, retention"),
    ("verification.json", "the verifier's result over the whole store, the period's bounds and population; signed in verification.sig"),
    ("checkpoints/LOG/", "the signed checkpoints bounding the period (C2SP notes) and the consistency proof between them"),
    ("samples.json", "the sampled entries and the rule that chose them; samples/*.json are inclusion proof bundles"),
    ("keys.txt", "the verifier keys the pack was made with (for reference; trust your own copy)"),
    ("manifest.json", "the SHA-256 of every other file; signed in manifest.sig"),
)  # fmt: skip


class RenderError(BastionError):
    """Chromium ran but did not print the page."""

    def __init__(self, chromium: str, detail: str) -> None:
        self.chromium = chromium
        self.detail = detail
        super().__init__(f"{chromium} did not print the report: {detail}")


_ENVIRONMENT = Environment(
    loader=PackageLoader("bastion.compliance", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html(
    *,
    period: Period,
    generated: float,
    frameworks: Sequence[str],
    assessments: Sequence[Assessment],
    integrity: Mapping[str, Any],
    files: Sequence[tuple[str, str]],
    pdf_note: str | None,
    pdf_warning: str | None,
) -> str:
    """The report page: a summary, each control with its evidence, integrity, how to verify."""
    counts = {status: sum(1 for a in assessments if a.status is status) for status in Status}
    return _ENVIRONMENT.get_template("report.html").render(
        period=period,
        generated=stamp(generated),
        frameworks=[FRAMEWORKS[f] for f in frameworks if f in FRAMEWORKS],
        assessments=assessments,
        counts={status.value: count for status, count in counts.items()},
        integrity=integrity,
        files=files,
        pdf_note=pdf_note,
        pdf_warning=pdf_warning,
        Status=Status,
    )


def find_chromium() -> str | None:
    """The Chromium to print with: BASTION_CHROMIUM, else the first on PATH; None if there is none."""
    chosen = os.environ.get(CHROMIUM_ENV)
    if chosen:
        return chosen if Path(chosen).exists() else None
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path, chromium: str) -> None:
    """Print `html` to `pdf` with headless Chromium, networking off; RenderError if no PDF comes out."""
    with tempfile.TemporaryDirectory(prefix="bastion-chromium-") as profile:
        argv = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-gpu",
            "--disable-extensions",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf}",
            html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(
                argv, capture_output=True, timeout=PRINT_TIMEOUT, check=False, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise RenderError(chromium, f"no PDF within {PRINT_TIMEOUT:.0f} s") from None
        except OSError as exc:
            raise RenderError(chromium, str(exc)) from None
    if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise RenderError(chromium, f"exit {done.returncode}: {' | '.join(tail) or 'no output'}")

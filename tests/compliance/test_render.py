"""The report page: self-contained HTML, printed to PDF by the machine's real headless Chromium,
whose pages turn into images and whose text carries every control's heading."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bastion.compliance.catalog import CONTROLS
from bastion.compliance.controls import Assessment, Status
from bastion.compliance.render import RenderError, find_chromium, print_pdf, render_html
from bastion.compliance.timeline import Period
from tests.compliance.conftest import Built, build

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")
needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None, reason="poppler-utils is not installed"
)


def test_the_page_is_self_contained_and_escapes_what_servers_said(built: Built) -> None:
    page = (built.pack / "index.html").read_text(encoding="utf-8")
    assert "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "no external resource"
    assert "default-src 'none'" in page
    for control in CONTROLS:
        assert f'id="{control.id}"' in page
    assert "What remains the organisation's job" in page
    assert "gap: monitoring did not cover 2026-11-02 03:00\u201305:00 (UTC)" in page


@needs_chromium
@needs_poppler
def test_the_pdf_has_every_control_heading_and_its_pages_render_as_images(built: Built, tmp_path: Path) -> None:
    pdf = built.pack / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    assert all(page.read_bytes().startswith(b"\x89PNG") and page.stat().st_size > 1000 for page in pages)
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True, timeout=60).stdout
    for control in CONTROLS:
        assert f"{control.id} \u2014 {control.title}" in text, control.id
    assert "How to verify this pack" in text


def test_a_hostile_string_from_a_server_stays_text() -> None:
    hostile = '<script>alert(1)</script><img src="https://evil.example/x">'
    assessment = Assessment(CONTROLS[0], Status.GAP, f"drift on {hostile}", (("calls.jsonl", 1),))
    page = render_html(
        period=Period.parse("2026-10-01..2026-12-31"),
        generated=0.0,
        frameworks=["soc2"],
        assessments=[assessment],
        integrity={
            "verified": True,
            "problem": "",
            "entries": 1,
            "logs": [],
            "checkpoints": 1,
            "population": 1,
            "kinds": {},
            "unsigned": 0,
            "samples": 0,
            "seed": "s",
            "signer": "k",
            "period_logs": [],
        },
        files=[],
        pdf_note=None,
        pdf_warning=None,
    )
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=&#34;https://evil.example/x&#34;&gt;" in page


def test_a_chromium_that_fails_is_reported_not_ignored(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n", encoding="utf-8")
    fake.chmod(0o755)
    (tmp_path / "index.html").write_text("<p>x</p>", encoding="utf-8")
    with pytest.raises(RenderError) as caught:
        print_pdf(tmp_path / "index.html", tmp_path / "out.pdf", str(fake))
    assert caught.value.detail == "exit 3: cannot open display"


def test_a_failed_print_leaves_the_html_with_a_warning(built: Built, tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 1\n", encoding="utf-8")
    fake.chmod(0o755)
    pack = build(built.home, tmp_path / "pack", chromium=str(fake), samples=1)
    assert not (pack / "report.pdf").exists()
    assert "printing the PDF failed" in (pack / "index.html").read_text(encoding="utf-8")

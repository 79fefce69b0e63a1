"""`bastion report` in an 80-column terminal and as JSON: control ids whole, one JSON document."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.cli.conftest import bastion, on_one_line, table_of, too_wide


def period() -> str:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    return f"{today}..{today}"


def a_recorded_change(home: Path) -> None:
    done = bastion(home, "tokens", "create", "--client", "ci")  # an entry, and the log's signing key
    assert done.returncode == 0, done.stderr


def test_the_controls_table_keeps_every_control_id_whole(home: Path, tmp_path: Path) -> None:
    a_recorded_change(home)
    done = bastion(home, "report", "--period", period(), "--out", str(tmp_path / "pack"), "--no-pdf")
    assert done.returncode == 0, done.stderr
    controls = json.loads((tmp_path / "pack" / "controls.json").read_text(encoding="utf-8"))["controls"]
    table = table_of(done.stdout)
    assert on_one_line(table, *(control["id"] for control in controls)) == []
    assert "…" not in table
    assert too_wide(table) == []


def test_json_is_one_document_naming_the_pack_and_each_control(home: Path, tmp_path: Path) -> None:
    a_recorded_change(home)
    pack = tmp_path / "pack"
    done = bastion(home, "report", "--period", period(), "--out", str(pack), "--no-pdf", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["directory"] == str(pack)
    assert summary["verified"] is True
    controls = json.loads((pack / "controls.json").read_text(encoding="utf-8"))["controls"]
    assert [row["control"] for row in summary["controls"]] == [control["id"] for control in controls]

"""`bastion demo` end to end: what it prints it really did."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.codes import DENIED
from bastion.demo.script import run_demo

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_the_demo_session_runs_and_its_audit_log_verifies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    lines: list[str] = []
    seen = await run_demo(tmp_path, home, lines.append)
    assert seen["echo"] == "hello through Bastion"
    assert "crash" not in seen["tools"]
    assert seen["crash"] == -32602
    assert "write_note" not in seen["tools"]
    assert seen["escape"] == DENIED
    assert seen["neighbour"].startswith("A second version")
    assert any("paths.outside_roots" in line for line in lines)
    assert "echo" not in seen["rug_pull"]["tools"]
    assert "read_note" in seen["rug_pull"]["tools"]
    assert "~/.ssh/id_rsa" in seen["rug_pull"]["review"]
    assert seen["approval"]["written"][0].startswith("wrote 7 characters")
    assert (tmp_path / "notes" / "todo.txt").read_text(encoding="utf-8") == "ship it"
    alerts = [alert["alert"].split(":")[0] for alert in seen["alerts"]]
    assert alerts[:2] == ["first_use", "silence"]
    assert (seen["evidence"] / "index.html").exists()
    assert (seen["evidence"] / "manifest.sig").exists()
    assert len(seen["progress"]) == 5
    assert seen["audit"]["ok"] is True
    assert seen["audit"]["entries"] >= 10
    assert any("Inclusion proof" in line for line in lines)

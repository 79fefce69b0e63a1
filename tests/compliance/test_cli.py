"""`bastion report` end to end: a real `bastion wrap` session in front of the demo server, then the
real CLI turns its audit log into a pack, and an auditor's machine (no keys of its own) verifies it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from bastion.compliance.controls import CALL_KINDS
from bastion.compliance.timeline import iso
from bastion.store.audit_open import open_store
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import through_stdio

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

DEMO = [PYTHON, "-m", "bastion.demo.server"]


async def bastion(home: Path, *args: str, **env: str) -> tuple[int, str, str]:
    done = await anyio.run_process([*BASTION, *args], env={**child_env(home), **env}, check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_a_real_session_becomes_a_pack_an_auditor_verifies_offline(home: Path, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("alpha", encoding="utf-8")
    started = time.time()
    async with through_stdio(home, ["wrap", "--fs-read", str(notes), "--", *DEMO, str(notes)]) as client:
        await client.call_tool("read_note", {"path": "a.txt"})
        await client.call_tool("echo", {"text": "hello"})
        with pytest.raises(MCPError):
            await client.call_tool("read_note", {"path": "/etc/passwd"})
    period = f"{iso(started - 60)}..{iso(time.time() + 60)}"
    pack = tmp_path / "pack"
    code, stdout, stderr = await bastion(
        home, "report", "--period", period, "--out", str(pack), BASTION_CHROMIUM="/nonexistent"
    )
    assert code == 0, stderr
    assert "warning: Chromium was not found" in stderr, "no Chromium: said so, and the HTML alone is written"
    assert "164.312(b)" in stdout
    assert not (pack / "report.pdf").exists()

    store = open_store(home, None)
    calls = [row for log in store.logs() for row in store.entries(log.log_id) if row.kind in CALL_KINDS]
    store.close()
    population = (pack / "calls.jsonl").read_bytes().splitlines()
    assert len(population) == len(calls) >= 5, "two calls (intent and outcome each) and one refusal"
    mapping = {
        item["id"]: item for item in json.loads((pack / "controls.json").read_text(encoding="utf-8"))["controls"]
    }
    assert mapping["CC6.1"]["status"] == "evidenced"
    assert {a["file"]: a["count"] for a in mapping["CC6.3"]["artefacts"]}["evidence/denied.jsonl"] == 1
    assert mapping["164.312(a)(2)(i)"]["status"] == "evidenced", "every call names its client and server identity"

    _, keys, _ = await bastion(home, "audit", "key")
    trusted = tmp_path / "trusted.txt"
    trusted.write_text(keys, encoding="utf-8")
    auditor = tmp_path / "auditor"
    code, stdout, stderr = await bastion(auditor, "report", "verify", str(pack), "--key", str(trusted))
    assert code == 0, stderr
    assert "the pack verifies" in stdout
    (pack / "evidence" / "denied.jsonl").write_bytes(b"")
    code, _, stderr = await bastion(auditor, "report", "verify", str(pack), "--key", str(trusted))
    assert code == 1
    assert "FAILED: evidence/denied.jsonl" in stderr


def test_prune_applies_the_retention_profile_as_a_recorded_shred(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    config = tmp_path / "bastion.toml"
    config.write_text('[audit]\nretention = "hipaa"\n', encoding="utf-8")
    env = {**os.environ, "BASTION_HOME": str(home)}
    done = subprocess.run(
        [*BASTION, "audit", "prune", "--config", str(config)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "retention hipaa" in done.stdout
    found = subprocess.run(
        [*BASTION, "audit", "search", "--kind", "payload.shredded", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    [entry] = [json.loads(line) for line in found.stdout.splitlines()]
    assert entry["reason"] == "retention hipaa (2190 days)"
    config.write_text("", encoding="utf-8")
    refused = subprocess.run(
        [*BASTION, "audit", "prune", "--config", str(config)], capture_output=True, text=True, env=env, check=False
    )
    assert refused.returncode == 2
    assert "audit.retention" in refused.stderr

"""The demo's closing act, `show_audit`: the session's log verified, its checkpoint shown and one
entry's inclusion proved, with what it found returned for the caller to check."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from bastion.audit.entry import Kind, Record
from bastion.audit.keys import Keyring
from bastion.audit.proofs import check_bundle
from bastion.demo.script import show_audit
from tests.compliance.scenario import Script, write_log

START = 1_790_000_000.0


def call(tool: str, n: int) -> Record:
    fields = {"client": "demo", "server": {"name": "notes"}, "tool": tool, "request": str(n)}
    return Record(Kind.CALL_INTENT, fields, {"arguments": {"n": n}})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    script: Script = [(START + n, call("echo" if n == 2 else "read_note", n)) for n in range(4)]
    script.append((START + 10, "checkpoint"))

    async def record() -> None:
        await write_log(home, script)

    anyio.run(record)
    return home


def test_a_sound_log_is_reported_verified_with_its_size(home: Path) -> None:
    said: list[str] = []
    found = show_audit(home, said.append)
    assert (found["ok"], found["entries"]) == (True, 4)
    assert said[0] == "Audit log: 4 entries verified against their signed checkpoints: ok"
    assert said[1] == "Latest signed checkpoint (C2SP tlog-checkpoint, Ed25519):"


def test_the_echo_calls_inclusion_proof_checks_under_the_home_keys(home: Path) -> None:
    said: list[str] = []
    bundle = show_audit(home, said.append)["proof"]
    check_bundle(bundle, Keyring(home, "").verifiers())
    assert bundle["index"] == 2
    assert any(line.startswith("Inclusion proof of entry 2 (the echo call's intent)") for line in said)


def test_an_altered_entry_is_reported_as_failed(home: Path) -> None:
    with sqlite3.connect(home / "audit.db") as db:
        [(entry,)] = db.execute("SELECT entry FROM audit_entries WHERE idx = 0").fetchall()
        altered = bytes(entry).replace(b"read_note", b"read_nope")
        db.execute("UPDATE audit_entries SET entry = ? WHERE idx = 0", (altered,))
    said: list[str] = []
    found = show_audit(home, said.append)
    assert found["ok"] is False
    assert said[0].endswith(": FAILED")

"""The audit commands on a real log: secrets stay out of the file, search decrypts, redaction and
shredding keep proofs valid, proofs check offline, exports carry index and hash, keys rotate."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import anyio
import pytest
from tests.conftest import BASTION

from bastion.audit.entry import Kind, Record
from bastion.audit.keys import Keyring
from bastion.audit.log import AuditLog
from bastion.audit.payload import AUDIT_MASTER_KEY, PayloadCipher
from bastion.clock import SystemClock
from bastion.files import load_master_key
from bastion.store.audit_open import open_store

pytestmark = pytest.mark.e2e

SECRET = "sk-live-THIS-MUST-NEVER-BE-IN-CLEAR-0123456789"


async def write_calls(home: Path, calls: int = 6, checkpoint_after: int | None = None) -> str:
    store = open_store(home, None)
    master = load_master_key(AUDIT_MASTER_KEY, home, {}, create=True)
    assert master is not None
    log = AuditLog(
        store, Keyring(home, "bastion-test").signer(), PayloadCipher(master), SystemClock(), home, instance="t"
    )
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        for i in range(calls):
            fields = {"tool": "send", "client": "agent", "server": {"name": "mail"}, "method": "tools/call"}
            intent = await log.append(Record(Kind.CALL_INTENT, fields, {"arguments": {"token": SECRET, "n": i}}))
            await log.append(
                Record(
                    Kind.CALL_OUTCOME,
                    {**fields, "intent": intent, "status": "ok", "latency_us": 10},
                    {"result": {"ok": i}},
                )
            )
            if checkpoint_after == i:
                await log.checkpoint()
        tasks.cancel_scope.cancel()
    store.close()
    return log.log_id


def bastion(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BASTION_HOME": str(home)}
    return subprocess.run([*BASTION, "audit", *args], capture_output=True, text=True, env=env, check=False, timeout=120)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir(mode=0o700)
    return path


def test_secrets_in_arguments_never_reach_the_store_in_clear(home: Path) -> None:
    anyio.run(write_calls, home)
    for file in home.rglob("*"):
        if file.is_file():
            assert SECRET.encode() not in file.read_bytes(), file
    found = bastion(home, "search", "--text", SECRET, "--json")
    assert found.returncode == 0, found.stderr
    assert len(found.stdout.splitlines()) == 6, "with the key, search sees through the encryption"


def test_redaction_removes_the_payload_keeps_proofs_and_is_itself_recorded(home: Path) -> None:
    log = anyio.run(write_calls, home)
    assert bastion(home, "redact", "0", "--log", log, "--reason", "GDPR request 42").returncode == 0
    assert len(bastion(home, "search", "--text", SECRET, "--json").stdout.splitlines()) == 5
    assert bastion(home, "verify").returncode == 0
    redactions = [
        json.loads(line) for line in bastion(home, "search", "--kind", "payload.redacted", "--json").stdout.splitlines()
    ]
    assert redactions[0]["target"] == {"log": log, "index": 0}
    assert redactions[0]["reason"] == "GDPR request 42"
    proof = bastion(home, "prove", "0", "--log", log)
    bundle = home / "proof.json"
    bundle.write_text(proof.stdout, encoding="utf-8")
    assert bastion(home, "check-proof", str(bundle)).returncode == 0


def test_shredding_a_day_makes_its_payloads_unreadable_and_proofs_stay_valid(home: Path) -> None:
    anyio.run(write_calls, home)
    assert bastion(home, "shred", "--before", "2999-01-01", "--reason", "retention").returncode == 0
    assert bastion(home, "search", "--text", SECRET, "--json").stdout == ""
    assert bastion(home, "verify").returncode == 0


def test_a_tampered_proof_bundle_does_not_check(home: Path) -> None:
    log = anyio.run(write_calls, home)
    bundle = json.loads(bastion(home, "prove", "3", "--log", log).stdout)
    bundle["index"] = 4
    path = home / "bad.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    checked = bastion(home, "check-proof", str(path))
    assert checked.returncode == 1
    assert "does not verify" in checked.stderr


def test_ocsf_export_has_api_activity_events_with_index_and_hash(home: Path) -> None:
    anyio.run(write_calls, home)
    events = [json.loads(line) for line in bastion(home, "export", "--format", "ocsf").stdout.splitlines()]
    assert len(events) == 6
    assert {event["class_uid"] for event in events} == {6003}
    assert all(
        len(event["metadata"]["uid"]) == 64 and isinstance(event["metadata"]["sequence"], int) for event in events
    )
    rows = [json.loads(line) for line in bastion(home, "export", "--format", "jsonl").stdout.splitlines()]
    assert len(rows) == 12
    assert SECRET not in json.dumps(rows)


def test_old_checkpoints_verify_after_a_key_rotation(home: Path) -> None:
    anyio.run(write_calls, home)
    rotated = bastion(home, "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    anyio.run(write_calls, home)
    assert len(Keyring(home, "").verifiers()) == 2
    verified = bastion(home, "verify", "--json")
    assert verified.returncode == 0, verified.stdout
    kinds = [
        json.loads(line)["kind"]
        for line in bastion(home, "search", "--kind", "key.rotated", "--json").stdout.splitlines()
    ]
    assert kinds == ["key.rotated"]


def test_a_consistency_proof_shows_the_log_only_grew_since_a_kept_checkpoint(home: Path) -> None:
    log = anyio.run(write_calls, home, 6, 1)
    store = open_store(home, None)
    older, newer = store.checkpoints(log)[0], store.checkpoints(log)[-1]
    store.close()
    assert older.size == 4
    assert newer.size == 12
    kept = home / "kept.txt"
    kept.write_text(older.note, encoding="utf-8")
    proof = bastion(home, "prove", "--log", log, "--since", str(kept))
    assert proof.returncode == 0, proof.stderr
    assert json.loads(proof.stdout)["proof"], "a real proof between two different sizes"
    bundle = home / "consistency.json"
    bundle.write_text(proof.stdout, encoding="utf-8")
    checked = bastion(home, "check-proof", str(bundle))
    assert checked.returncode == 0, checked.stderr
    assert "grew from 4 to 12" in checked.stdout
    forged = json.loads(proof.stdout)
    forged["proof"] = forged["proof"][:-1]
    bundle.write_text(json.dumps(forged), encoding="utf-8")
    assert bastion(home, "check-proof", str(bundle)).returncode == 1

"""A recorded quarter: real audit logs written with `AuditLog` under a fake clock.

Two gateway runs (the first from before the quarter to 2026-11-02 03:00, the second from
05:00 that day to after the quarter), a CLI log issuing and revoking a token, and in between
calls, denials (one SSRF), a screened result, alerts (one triaged, one not), drift and its
review, a kill switch and its undoing, a secret revoked, heartbeats and a redaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from bastion.audit.entry import Kind, Record
from bastion.audit.keys import Keyring
from bastion.audit.log import AuditLog
from bastion.audit.payload import AUDIT_MASTER_KEY, PayloadCipher
from bastion.clock import FakeClock
from bastion.files import load_master_key
from bastion.store.audit_open import open_store

__all__ = ["PERIOD", "SECRET", "Quarter", "at", "record_quarter", "write_log"]

PERIOD = "2026-10-01..2026-12-31"
SECRET = "sk-live-NEVER-IN-A-PACK-0123456789"
SERVER = {"name": "mail", "id": "srv_mail_1", "version": "1.2.0"}
CHECKPOINT = "checkpoint"
PID = os.getpid()
"""A gateway records its own process id at start, which is the one its log is stored with."""


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@dataclass
class Quarter:
    logs: dict[str, str] = field(default_factory=dict[str, str])
    """Name (gateway1, cli, gateway2) → log id."""


Script = list[tuple[float, Record | str]]


async def write_log(home: Path, script: Script) -> tuple[str, list[int]]:
    """Append the script's records at their moments; returns the log id and each record's index."""
    store = open_store(home, None)
    master = load_master_key(AUDIT_MASTER_KEY, home, {}, create=True)
    assert master is not None
    clock = FakeClock(script[0][0])
    log = AuditLog(store, Keyring(home, "bastion-test").signer(), PayloadCipher(master), clock, home, instance="test")
    indices: list[int] = []
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        for moment, item in script:
            clock.advance(max(0.0, moment - clock.now()))
            if isinstance(item, str):
                await log.checkpoint()
            else:
                indices.append(await log.append(item))
        tasks.cancel_scope.cancel()
    store.close()
    return log.log_id, indices


def call(client: str, tool: str, n: int, *, server: dict[str, Any] | None = None) -> list[Record]:
    fields = {"session": f"s-{client}", "client": client, "server": server or SERVER, "method": "tools/call"}
    fields |= {"tool": tool, "request": str(n), "decision": {"action": "allow", "rule": "grant.read", "reason": "ok"}}
    return [
        Record(Kind.CALL_INTENT, fields, {"arguments": {"n": n, "token": SECRET}}),
        Record(Kind.CALL_OUTCOME, {**fields, "status": "ok", "latency_us": 120}, {"result": {"n": n}}),
    ]


def denied(client: str, tool: str, rule: str) -> Record:
    fields = {"session": f"s-{client}", "client": client, "server": SERVER, "method": "tools/call", "tool": tool}
    fields["decision"] = {"action": "deny", "rule": rule, "reason": f"refused by {rule}"}
    return Record(Kind.CALL_DENIED, fields, {"arguments": {"url": "http://169.254.169.254/"}})


def alert(key: str, to: str, by: str | None = None, previous: str | None = None) -> Record:
    fields = {"alert": key, "from": previous, "to": to, "by": by, "note": "", "reason": "first use"}
    return Record(Kind.ALERT_CHANGE, fields | {"detector": key.split(":", maxsplit=1)[0], "severity": "warning"})


def _gateway_one(start: float) -> Script:
    script: Script = [
        (start, Record(Kind.GATEWAY_START, {"mode": "stdio", "pid": PID, "label": "mail", "config_sha256": "a" * 64})),
        (start, Record(Kind.LISTING, {"session": "s-agent", "client": "agent", "server": SERVER, "listing": "tools",
                                      "definitions": {"send": "d1", "read": "d2"}})),
    ]  # fmt: skip
    script += [(start + 60 * i, r) for i in range(2) for r in call("agent", "read", i)]
    script.append((start + 600, CHECKPOINT))
    day = at("2026-10-01T01:00:00")
    script += [(day + 3600 * i, r) for i in range(20) for r in call("agent", "send" if i % 2 else "read", 100 + i)]
    later = at("2026-10-05T00:00:00")
    screened = call("agent", "read", 200)
    screened[1] = Record(Kind.CALL_OUTCOME, {**screened[1].fields, "screen": [{"rule": "injection.override"}]})
    script += [
        (later, denied("agent", "delete", "policy.risk")),
        (later + 1, denied("agent", "fetch", "urls.metadata")),
        (later + 2, screened[0]),
        (later + 3, screened[1]),
        (later + 10, alert("first_use:mail.delete", "open")),
        (later + 20, Record(Kind.ALERT_TRIAGE, {"alert": "first_use:mail.delete", "triage": "ack", "by": "alice",
                                                 "channel": "cli", "note": "expected"})),
        (later + 21, alert("first_use:mail.delete", "acknowledged", "alice", "open")),
        (later + 30, alert("volume:mail", "open")),
        (later + 40, Record(Kind.PIN_DRIFT, {"server": {"name": "mail"}, "findings": ["send: description changed"],
                                             "blocked_tools": ["send"], "server_blocked": False})),
        (later + 50, Record(Kind.PIN_CHANGE, {"server": {"name": "mail"}, "change": "review.approved", "by": "bob",
                                              "changes": ["send: description changed"], "reason": "vendor update"})),
        (later + 60, Record(Kind.POLICY_CHANGE, {"change": "kill", "server": {"name": "mail"}, "tool": "send",
                                                 "reason": "incident 7", "by": "carol"})),
        (later + 70, Record(Kind.POLICY_CHANGE, {"change": "unkill", "server": {"name": "mail"}, "tool": "send",
                                                 "reason": "resolved", "by": "carol"})),
        (later + 80, Record(Kind.HEARTBEAT, {"check": "nightly", "ping": "success", "run": "", "duration_s": 3.0})),
        (at("2026-11-02T03:00:00"), Record(Kind.GATEWAY_STOP, {"pid": PID})),
    ]  # fmt: skip
    return script


def _gateway_two() -> Script:
    start = at("2026-11-02T05:00:00")
    script: Script = [
        (start, Record(Kind.GATEWAY_START, {"mode": "http", "pid": PID, "label": "", "config_sha256": "b" * 64}))
    ]
    script += [(start + 86400 * i, r) for i in range(12) for r in call("agent2", "read", 300 + i)]
    script.append((at("2026-12-01T00:00:00"), Record(Kind.SECRET_CHANGE, {
        "server": {"name": "mail", "id": "srv_mail_1"}, "secret": "TOKEN", "version": 2, "change": "revoke"})))  # fmt: skip
    after = at("2027-01-01T01:00:00")
    script += [(after, r) for r in call("agent2", "read", 999)]
    script.append((at("2027-01-01T02:00:00"), Record(Kind.GATEWAY_STOP, {"pid": PID})))
    return script


def _cli() -> Script:
    return [
        (at("2026-10-15T09:00:00"), Record(Kind.CLIENT_CHANGE, {"change": "token.created", "client": "agent2",
                                                                "by": "erin", "servers": ["mail"], "role": "reader"})),
        (at("2026-12-20T09:00:00"), Record(Kind.CLIENT_CHANGE, {"change": "token.revoked", "client": "agent",
                                                                "by": "erin"})),
    ]  # fmt: skip


async def record_quarter(home: Path) -> Quarter:
    quarter = Quarter()
    quarter.logs["gateway1"], indices = await write_log(home, _gateway_one(at("2026-09-30T22:00:00")))
    redact = Record(
        Kind.PAYLOAD_REDACTED,
        {"target": {"log": quarter.logs["gateway1"], "index": indices[10]}, "reason": "GDPR 42", "by": "dave"},
    )
    quarter.logs["cli"], _ = await write_log(home, [*_cli(), (at("2026-12-21T00:00:00"), redact)])
    quarter.logs["gateway2"], _ = await write_log(home, _gateway_two())
    store = open_store(home, None)
    store.redact(quarter.logs["gateway1"], indices[10])
    store.close()
    return quarter

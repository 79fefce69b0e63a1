"""What the dashboard shows, read from the stores: calls, a call's evidence, activity over time,
the inventory as configured and pinned, and the log's integrity. Synchronous (pages call these
in a worker thread); nothing here writes.

What is shown comes from the entries themselves, never from the store's index columns: every row
read is checked against its entry, and one that disagrees marks its log as failing, as the
store-wide verifier behind "verify now" does."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

from bastion.audit.columns import Problem, read_entry
from bastion.audit.keys import Keyring
from bastion.audit.payload import AUDIT_MASTER_KEY, PayloadCipher
from bastion.audit.proofs import make_bundle
from bastion.audit.service import read_witnesses
from bastion.audit.storewide import verify_store
from bastion.audit.verify import LogReport
from bastion.config.model import BastionConfig
from bastion.files import load_master_key
from bastion.inventory.collect import config_findings
from bastion.inventory.pins import Lock
from bastion.policy.compile import compile_policy
from bastion.policy.risk import classify
from bastion.policy.shadow import ShadowSummary, shadow_report
from bastion.store.audit import AuditStore, EntryRow, SearchFilter

__all__ = ["AuditView", "CallFilter", "CallRow", "inventory", "svg_bars"]


@dataclass(frozen=True, slots=True)
class CallFilter:
    server: str = ""
    tool: str = ""
    client: str = ""
    decision: str = ""

    def matches(self, row: CallRow) -> bool:
        return all(
            not wanted or wanted == actual
            for wanted, actual in (
                (self.server, row.server),
                (self.tool, row.tool),
                (self.client, row.client),
                (self.decision, row.action),
            )
        )


@dataclass(frozen=True, slots=True)
class CallRow:
    log: str
    index: int
    time: float
    client: str
    server: str
    tool: str
    action: str
    rule: str
    status: str
    approver: str = ""
    enforced: bool = True
    """False for a monitored server's refusal: recorded, and the call let through."""


@dataclass
class Verification:
    running: bool = False
    done_entries: int = 0
    total_entries: int = 0
    finished: float | None = None
    reports: list[LogReport] = field(default_factory=list[LogReport])


class AuditView:
    def __init__(self, store: AuditStore, home: Path) -> None:
        self.store = store
        self.home = home
        self.verification = Verification()
        self.flagged: dict[tuple[str, int | None], Problem] = {}
        """Rows the pages read that disagree with their entry, since the last verification."""

    def _entry(self, log_id: str, row: EntryRow) -> dict[str, Any]:
        """The row's entry; a row that disagrees with it is remembered, and its log shown as failing."""
        entry, problem = read_entry(log_id, row)
        if problem is not None:
            self.flagged[(log_id, row.idx)] = problem
        return entry

    def problems(self) -> list[Problem]:
        """What the last verification found, and what the pages found since."""
        found = [p for report in self.verification.reports for p in report.problems]
        return found + [p for p in list(self.flagged.values()) if p not in found]

    def calls(self, wanted: CallFilter, limit: int = 200) -> list[CallRow]:
        """Calls newest first: each allowed call (its intent, with the outcome's status) and each refusal."""
        rows: list[CallRow] = []
        outcomes: dict[tuple[str, int], str] = {}
        for log_id, row in self.store.search(SearchFilter(kind="call.outcome", limit=limit * 2)):
            entry = self._entry(log_id, row)
            intent = entry.get("intent")
            if entry.get("kind") == "call.outcome" and isinstance(intent, int):
                outcomes[(log_id, intent)] = str(entry.get("status", ""))
        found = [*self.store.search(SearchFilter(kind="call.intent", limit=limit * 2))]
        found += self.store.search(SearchFilter(kind="call.denied", limit=limit * 2))
        calls = [
            (log_id, row.idx, entry)
            for log_id, row in found
            if (entry := self._entry(log_id, row)).get("kind") in ("call.intent", "call.denied")
        ]
        for log_id, index, entry in sorted(calls, key=lambda call: _time(call[2]), reverse=True):
            call = _call_row(log_id, index, entry, outcomes)
            if wanted.matches(call):
                rows.append(call)
            if len(rows) >= limit:
                break
        return rows

    def shadow(self, since: float, server: str | None = None) -> ShadowSummary:
        """Where the candidate policy decided differently from the live one since `since`."""
        return shadow_report(self.store, self._entry, since, None, server or None)

    def latest(self) -> tuple[str, int]:
        """The newest entry's position, to tell live pages that something happened."""
        newest = self.store.search(SearchFilter(limit=1))
        return (newest[0][0], newest[0][1].idx) if newest else ("", -1)

    def detail(self, log_id: str, index: int, payloads: bool) -> dict[str, Any] | None:
        """One entry with its decision, payload (if the viewer may see payloads) and inclusion proof."""
        rows = list(self.store.entries(log_id, index, index + 1))
        if not rows:
            return None
        entry = self._entry(log_id, rows[0])
        problem = self.flagged.get((log_id, index))
        result: dict[str, Any] = {"log": log_id, "index": index, "entry": entry, "payload": None, "proof": None}
        result["problem"] = problem.describe() if problem is not None else None
        if payloads:
            result["payload"] = self._payload(log_id, index)
        checkpoint = self.store.latest_checkpoint(log_id)
        if checkpoint is not None and checkpoint.size > index:
            result["proof"] = make_bundle(self.store, log_id, index, checkpoint)
        return result

    def _payload(self, log_id: str, index: int) -> dict[str, Any] | str:
        master = load_master_key(AUDIT_MASTER_KEY, self.home, os.environ, create=False)
        found = self.store.payload(log_id, index)
        if master is None:
            return "no master key here: payloads cannot be decrypted on this host"
        if found is None or found[1] is None:
            return "no payload (never recorded, redacted, or shredded)"
        wrapped = self.store.data_key(found[0])
        if wrapped is None:
            return "the payload's day key was shredded"
        cipher = PayloadCipher(master)
        plain = PayloadCipher.open(cipher.unwrap(found[0], wrapped), log_id, index, found[1])
        values = orjson.loads(plain).get("values", {})
        return {name: orjson.loads(text) for name, text in values.items()}

    def activity(self, hours: int = 24, now: float | None = None) -> list[tuple[int, int, int]]:
        """(hour start, calls, denials) for the last `hours` hours.

        Every entry of each hour is read and counted by the kind and time it records, so a row whose
        kind column was changed still counts as what it is, and marks its log as failing.
        """
        now = now or time.time()
        start = int(now // 3600 - hours + 1) * 3600
        buckets = {start + 3600 * i: [0, 0] for i in range(hours)}
        for hour in buckets:
            for log_id, row in self.store.search(SearchFilter(since=hour, until=hour + 3600, limit=100_000)):
                entry = self._entry(log_id, row)
                slot = _SLOTS.get(str(entry.get("kind")))
                bucket = int(_time(entry) // 3600) * 3600
                if slot is not None and bucket in buckets:
                    buckets[bucket][slot] += 1
        return [(hour, counts[0], counts[1]) for hour, counts in sorted(buckets.items())]

    def integrity(self) -> list[dict[str, Any]]:
        """Each log with its latest checkpoint and its state: failing (with its problems), verified, or unknown."""
        failing: dict[str, list[str]] = {}
        for problem in self.problems():
            failing.setdefault(problem.log_id, []).append(problem.describe())
        verified = {report.log_id for report in self.verification.reports if report.ok}
        logs: list[dict[str, Any]] = []
        for log in self.store.logs():
            latest = self.store.latest_checkpoint(log.log_id)
            problems = failing.get(log.log_id, [])
            state = "failing" if problems else "verified" if log.log_id in verified else "not verified yet"
            logs.append(
                {
                    "log": log.log_id,
                    "origin": log.origin,
                    "size": self.store.size(log.log_id),
                    "checkpoint": latest,
                    "state": state,
                    "problems": problems,
                }
            )
        return logs

    def verify(self, progress: Callable[[int, int], None]) -> list[LogReport]:
        """Re-verify the whole store with this host's trusted keys and witnesses, as `bastion audit verify` does."""
        self.flagged.clear()
        verifiers = Keyring(self.home, "").verifiers()
        witnesses = list(read_witnesses(self.home, self.store).values())
        return verify_store(self.store, verifiers, external=witnesses, progress=progress)


_SLOTS = {"call.intent": 0, "call.denied": 1}


def _time(entry: dict[str, Any]) -> float:
    """When the entry was written, in seconds, as the entry records it."""
    moment = entry.get("t")
    return moment / 1000 if isinstance(moment, int) else 0.0


def _mapping(value: object) -> dict[str, Any]:
    return cast(dict[str, Any], value) if isinstance(value, dict) else {}


def _call_row(log_id: str, index: int, entry: dict[str, Any], outcomes: dict[tuple[str, int], str]) -> CallRow:
    decision = _mapping(entry.get("decision"))
    denied = entry.get("kind") == "call.denied"
    return CallRow(
        log_id,
        index,
        _time(entry),
        str(entry.get("client", "")),
        str(_mapping(entry.get("server")).get("name", "")),
        str(entry.get("tool", "")),
        "deny" if denied else str(decision.get("action", "allow")),
        str(decision.get("rule", "")),
        "refused" if denied else outcomes.get((log_id, index), "in flight"),
        str(decision.get("approved_by", "")),
        decision.get("enforced") is not False,
    )


def inventory(config: BastionConfig | None, lock: Lock | None) -> list[dict[str, Any]]:
    """Every configured server and its pinned tools, with risk class, visibility, grants and findings."""
    if config is None:
        return []
    policy = compile_policy(config)
    servers: list[dict[str, Any]] = []
    for name, server in config.servers.items():
        pin = lock.servers.get(name) if lock is not None else None
        findings = config_findings(server)
        if pin is None:
            findings.append("not pinned (bastion pin)")
        tools: list[dict[str, Any]] = []
        rules = policy.servers.get(name)
        for tool_name, pinned in sorted((pin.tools if pin else {}).items()):
            risk = classify(pinned.definition, server.tools.risk.get(tool_name)).risk.value
            decision = policy.decide_tool("local", name, rules.profile(pinned.definition)) if rules else None
            tools.append(
                {"name": tool_name, "risk": risk, "listed": bool(decision and decision.action.value != "deny"),
                 "rule": decision.rule if decision else "disabled"}
            )  # fmt: skip
        servers.append(
            {
                "name": name,
                "transport": server.transport,
                "enabled": server.enabled,
                "sandbox": server.sandbox if server.transport == "stdio" else "remote",
                "grants": sorted(server.capabilities),
                "fs_read": list(server.fs_read),
                "fs_write": list(server.fs_write),
                "pinned": pin is not None,
                "package": f"{pin.package.name}@{pin.package.version}" if pin and pin.package else "",
                "tools": tools,
                "findings": findings,
            }
        )
    return servers


def svg_bars(series: list[tuple[int, int, int]], width: int = 720, height: int = 140) -> str:
    """Calls (and denials, in red) per hour as an inline SVG bar chart, rendered on the server."""
    top = max([calls + denials for _h, calls, denials in series] + [1])
    step = width / max(len(series), 1)
    bars: list[str] = []
    for i, (hour, calls, denials) in enumerate(series):
        x = i * step + 1
        ok_h = (height - 20) * calls / top
        deny_h = (height - 20) * denials / top
        label = time.strftime("%H:00", time.localtime(hour))
        bars.append(
            f'<rect class="bar-ok" x="{x:.1f}" y="{height - 20 - ok_h - deny_h:.1f}" width="{step - 2:.1f}" '
            f'height="{ok_h:.1f}"><title>{label}: {calls} calls</title></rect>'
            f'<rect class="bar-deny" x="{x:.1f}" y="{height - 20 - deny_h:.1f}" width="{step - 2:.1f}" '
            f'height="{deny_h:.1f}"><title>{label}: {denials} denials</title></rect>'
        )
        if i % 4 == 0:
            bars.append(f'<text x="{x:.1f}" y="{height - 5}" class="axis">{label}</text>')
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="calls and denials per hour">'
        + "".join(bars)
        + "</svg>"
    )

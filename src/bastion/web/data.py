"""What the dashboard shows, read from the stores: calls, a call's evidence, activity over time,
the inventory as configured and pinned, and the log's integrity. Synchronous (pages call these
in a worker thread); nothing here writes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bastion.audit.keys import Keyring
from bastion.audit.payload import PayloadCipher, load_master_key
from bastion.audit.proofs import make_bundle
from bastion.audit.service import pid_alive, read_witnesses
from bastion.audit.verify import LogReport, verify_log
from bastion.config.model import BastionConfig
from bastion.inventory.collect import config_findings
from bastion.inventory.pins import Lock
from bastion.inventory.risk import classify
from bastion.policy.compile import compile_policy
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

    def calls(self, wanted: CallFilter, limit: int = 200) -> list[CallRow]:
        """Calls newest first: each allowed call (its intent, with the outcome's status) and each refusal."""
        rows: list[CallRow] = []
        outcomes: dict[tuple[str, int], str] = {}
        for log_id, row in self.store.search(SearchFilter(kind="call.outcome", limit=limit * 2)):
            entry = orjson.loads(row.entry)
            outcomes[(log_id, int(entry.get("intent", -1)))] = str(entry.get("status", ""))
        found = [*self.store.search(SearchFilter(kind="call.intent", limit=limit * 2))]
        found += self.store.search(SearchFilter(kind="call.denied", limit=limit * 2))
        for log_id, row in sorted(found, key=lambda item: item[1].time, reverse=True):
            call = _call_row(log_id, row, outcomes)
            if wanted.matches(call):
                rows.append(call)
            if len(rows) >= limit:
                break
        return rows

    def latest(self) -> tuple[str, int]:
        """The newest entry's position, to tell live pages that something happened."""
        newest = self.store.search(SearchFilter(limit=1))
        return (newest[0][0], newest[0][1].idx) if newest else ("", -1)

    def detail(self, log_id: str, index: int, payloads: bool) -> dict[str, Any] | None:
        """One entry with its decision, payload (if the viewer may see payloads) and inclusion proof."""
        rows = list(self.store.entries(log_id, index, index + 1))
        if not rows:
            return None
        entry = orjson.loads(rows[0].entry)
        result: dict[str, Any] = {"log": log_id, "index": index, "entry": entry, "payload": None, "proof": None}
        if payloads:
            result["payload"] = self._payload(log_id, index)
        checkpoint = self.store.latest_checkpoint(log_id)
        if checkpoint is not None and checkpoint.size > index:
            result["proof"] = make_bundle(self.store, log_id, index, checkpoint)
        return result

    def _payload(self, log_id: str, index: int) -> dict[str, Any] | str:
        master = load_master_key(self.home, os.environ, create=False)
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
        """(hour start, calls, denials) for the last `hours` hours."""
        now = now or time.time()
        start = int(now // 3600 - hours + 1) * 3600
        buckets = {start + 3600 * i: [0, 0] for i in range(hours)}
        for kind, slot in (("call.intent", 0), ("call.denied", 1)):
            for _log, row in self.store.search(SearchFilter(kind=kind, since=start, limit=100_000)):
                hour = int(row.time // 3600) * 3600
                if hour in buckets:
                    buckets[hour][slot] += 1
        return [(hour, counts[0], counts[1]) for hour, counts in sorted(buckets.items())]

    def integrity(self) -> list[dict[str, Any]]:
        logs: list[dict[str, Any]] = []
        for log in self.store.logs():
            latest = self.store.latest_checkpoint(log.log_id)
            logs.append(
                {
                    "log": log.log_id,
                    "origin": log.origin,
                    "size": self.store.size(log.log_id),
                    "checkpoint": latest,
                }
            )
        return logs

    def verify(self, progress: Callable[[int, int], None]) -> list[LogReport]:
        """Re-verify every log against its signed checkpoints and witnesses, with this host's trusted keys."""
        verifiers = Keyring(self.home, "").verifiers()
        logs = self.store.logs()
        total = sum(self.store.size(log.log_id) for log in logs)
        by_origin: dict[str, list[str]] = {}
        for note in read_witnesses(self.home, self.store).values():
            by_origin.setdefault(note.split("\n", 1)[0], []).append(note)
        done = 0

        def step(count: int) -> None:
            nonlocal done
            done += count
            progress(done, total)

        reports = [
            verify_log(
                log,
                self.store.raw_entries(log.log_id),
                self.store.checkpoints(log.log_id),
                verifiers,
                witnesses=by_origin.get(log.origin, []),
                owner_alive=pid_alive(log.pid),
                progress=step,
            )
            for log in logs
        ]
        progress(total, total)
        return reports


def _call_row(log_id: str, row: EntryRow, outcomes: dict[tuple[str, int], str]) -> CallRow:
    entry = orjson.loads(row.entry)
    decision = entry.get("decision") or {}
    denied = row.kind == "call.denied"
    return CallRow(
        log_id,
        row.idx,
        row.time,
        str(entry.get("client", "")),
        str((entry.get("server") or {}).get("name", "")),
        str(entry.get("tool", "")),
        "deny" if denied else str(decision.get("action", "allow")),
        str(decision.get("rule", "")),
        "refused" if denied else outcomes.get((log_id, row.idx), "in flight"),
        str(decision.get("approved_by", "")),
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

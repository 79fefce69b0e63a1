"""What the dashboard shows, read from a real audit store: calls newest first with their outcome,
one call's evidence, activity per hour, each log's integrity, and the inventory as configured."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from bastion.audit.entry import Kind, Record
from bastion.config.load import parse_config
from bastion.store.audit import AuditStore
from bastion.store.audit_open import open_store
from bastion.web.data import AuditView, CallFilter, inventory, svg_bars
from tests.compliance.scenario import Script, write_log

HOUR = 3600.0
START = 1_790_000_000.0 // HOUR * HOUR + 60
MAIL = {"name": "mail"}


def decided(kind: Kind, client: str, tool: str, decision: dict[str, Any], **extra: Any) -> Record:
    fields = {"client": client, "server": MAIL, "tool": tool, "request": tool, "decision": decision, **extra}
    return Record(kind, fields, {"arguments": {"to": "ann@example.com"}})


SCRIPT: Script = [
    (START, decided(Kind.CALL_INTENT, "alice", "read", {"action": "allow", "rule": "grant.read"})),
    (START + 1, Record(Kind.CALL_OUTCOME, {"client": "alice", "server": MAIL, "tool": "read", "intent": 0,
                                           "status": "ok"})),
    (START + HOUR, decided(Kind.CALL_DENIED, "bob", "delete", {"action": "deny", "rule": "capability.destructive"})),
    (START + HOUR + 1, decided(Kind.CALL_INTENT, "bob", "send",
                               {"action": "deny", "rule": "urls.private_address", "enforced": False})),
    (START + HOUR + 2, "checkpoint"),
]  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)

    async def record() -> None:
        await write_log(home, SCRIPT)

    anyio.run(record)
    return home


@pytest.fixture
def view(home: Path) -> Iterator[AuditView]:
    store: AuditStore = open_store(home, None)
    yield AuditView(store, home)
    store.close()


def test_calls_come_newest_first_with_their_outcome_or_refusal(view: AuditView) -> None:
    calls = view.calls(CallFilter())
    assert [(c.index, c.client, c.tool, c.action, c.status, c.enforced) for c in calls] == [
        (3, "bob", "send", "deny", "in flight", False),
        (2, "bob", "delete", "deny", "refused", True),
        (0, "alice", "read", "allow", "ok", True),
    ]
    assert calls[2].time == pytest.approx(START, abs=0.001)


def test_a_filter_keeps_only_the_calls_that_match_every_field_given(view: AuditView) -> None:
    assert [c.index for c in view.calls(CallFilter(client="bob", decision="deny"))] == [3, 2]
    assert [c.index for c in view.calls(CallFilter(server="mail", tool="read"))] == [0]
    assert view.calls(CallFilter(server="git")) == []
    assert [c.index for c in view.calls(CallFilter(), limit=1)] == [3]


def test_a_calls_detail_carries_its_payload_and_an_inclusion_proof(view: AuditView) -> None:
    detail = view.detail(view.latest()[0], 0, payloads=True)
    assert detail is not None
    assert detail["entry"]["tool"] == "read"
    assert detail["payload"] == {"arguments": {"to": "ann@example.com"}}
    assert detail["proof"] is not None
    assert detail["problem"] is None
    hidden = view.detail(view.latest()[0], 0, payloads=False)
    assert hidden is not None
    assert hidden["payload"] is None
    assert view.detail(view.latest()[0], 99, payloads=True) is None


def test_activity_counts_calls_and_denials_per_hour(view: AuditView) -> None:
    series = view.activity(hours=3, now=START + HOUR + 10)
    assert [(calls, denials) for _hour, calls, denials in series] == [(0, 0), (1, 0), (1, 1)]
    assert series[-1][0] == int((START + HOUR) // HOUR * HOUR)


def test_a_log_is_unverified_until_verified_and_failing_once_a_row_disagrees(view: AuditView, home: Path) -> None:
    [log] = view.integrity()
    assert (log["state"], log["size"]) == ("not verified yet", 4)
    view.verification.reports = view.verify(lambda done, total: None)
    assert view.integrity()[0]["state"] == "verified"
    assert view.problems() == []
    with sqlite3.connect(home / "audit.db") as db:  # a refusal relabelled in the index, as anyone with the file could
        db.execute("UPDATE audit_entries SET kind = 'call.intent' WHERE idx = 2")
    assert [c.action for c in view.calls(CallFilter(tool="delete"))] == ["deny"], "shown as its entry says"
    [failing] = view.integrity()
    assert failing["state"] == "failing"
    assert failing["problems"][0].startswith(f"log {log['log']} index 2:")


def test_the_inventory_lists_configured_servers_and_flags_those_not_pinned() -> None:
    assert inventory(None, None) == []
    config = parse_config('[servers.mail]\ncommand = "mail-server"\ngrants = ["write"]\nfs_write = ["/srv"]\n')
    [mail] = inventory(config, None)
    assert (mail["name"], mail["pinned"], mail["grants"], mail["tools"]) == ("mail", False, ["write"], [])
    assert "not pinned (bastion pin)" in mail["findings"]


def test_the_chart_draws_a_pair_of_bars_per_hour_scaled_to_the_busiest() -> None:
    chart = svg_bars([(0, 4, 0), (3600, 2, 2), (7200, 0, 0)], width=300, height=120)
    assert chart.startswith('<svg class="chart" viewBox="0 0 300 120"')
    assert chart.count('class="bar-ok"') == chart.count('class="bar-deny"') == 3
    assert 'height="100.0"><title>' in chart
    assert svg_bars([]).endswith('aria-label="calls and denials per hour"></svg>')

"""The watcher of one gateway: calls and server states become alerts that are recorded, stored for
the CLI, triaged from it and sent; heartbeats are audited. Time is a fake clock; the loop is real."""

from __future__ import annotations

import queue
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from bastion.audit.keys import Keyring
from bastion.audit.log import AuditLog
from bastion.audit.payload import AUDIT_MASTER_KEY, PayloadCipher
from bastion.clock import FakeClock
from bastion.config.load import parse_config
from bastion.files import load_master_key
from bastion.store.audit import AuditStore, SearchFilter
from bastion.store.audit_open import open_store
from bastion.watch.alerts import Notification
from bastion.watch.checks import PingKind
from bastion.watch.events import CallEvent, Severity, Signal
from bastion.watch.service import Watcher
from bastion.watch.sinks import Delivery
from bastion.watch.store import Triage, open_watch

pytestmark = pytest.mark.anyio

WATCH = parse_config("[watch.checks.nightly]\nperiod = 3600\ngrace = 60\n").watch


@dataclass
class Pager:
    """A sink that hands each notification's alert key to the test (sent from a worker thread)."""

    channel: str = "primary"
    kind: str = "pager"
    keys: queue.Queue[str] = field(default_factory=queue.Queue[str])

    def send(self, note: Notification, fields: Mapping[str, str]) -> Delivery:
        self.keys.put(note.alert_key)
        return Delivery(True)

    async def next(self) -> str:
        return await anyio.to_thread.run_sync(lambda: self.keys.get(timeout=10))


@dataclass
class Running:
    watcher: Watcher
    pager: Pager
    audit: AuditStore
    clock: FakeClock

    def kinds(self, kind: str) -> int:
        return len(self.audit.search(SearchFilter(kind=kind)))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    store = open_store(home, None)
    master = load_master_key(AUDIT_MASTER_KEY, home, {}, create=True)
    assert master is not None
    clock = FakeClock()
    log = AuditLog(store, Keyring(home, "test").signer(), PayloadCipher(master), clock, home, instance="test")
    pager = Pager()
    watch_store = open_watch(home, None)
    watcher = Watcher(WATCH, log, clock, watch_store, [pager])
    async with anyio.create_task_group() as tasks:
        await tasks.start(log.run)
        await tasks.start(watcher.run)
        yield Running(watcher, pager, store, clock)
        tasks.cancel_scope.cancel()
    watch_store.close()
    store.close()


def call(at: float, tool: str = "write_file", outcome: str = "ok") -> CallEvent:
    return CallEvent(at, "alice", "fs", tool, "write", outcome, 4.0)


async def test_a_first_use_is_alerted_recorded_and_stored_at_once(running: Running) -> None:
    running.watcher.observe_call(call(running.clock.now()))
    key = await running.pager.next()
    assert key.startswith("first_use:")
    stored = running.watcher.store.alert(key)
    assert stored is not None
    assert (stored.state, stored.detector) == ("open", "first_use")
    assert running.kinds("alert.change") == 1


async def test_triage_requested_from_the_cli_is_applied_on_the_next_turn(running: Running) -> None:
    now = running.clock.now()
    running.watcher.signal(Signal("test", "test:one", Severity.WARNING, "first", now))
    assert await running.pager.next() == "test:one"
    running.watcher.store.request_triage(Triage("t1", "test:one", "ack", "bob", "looking", now))
    running.watcher.signal(Signal("test", "test:two", Severity.WARNING, "second", now))
    assert await running.pager.next() == "test:two"
    acknowledged = running.watcher.store.alert("test:one")
    assert acknowledged is not None
    assert acknowledged.state == "acknowledged"
    assert running.watcher.store.pending_triage() == []


async def test_a_server_that_restarts_raises_a_health_alert_and_recovers(running: Running) -> None:
    running.watcher.server_state("fs", "restarting", "exit code 3")
    key = await running.pager.next()
    assert key.startswith("health:")
    running.watcher.server_state("fs", "up", "")
    running.watcher.signal(Signal("test", "test:wake", Severity.INFO, "wake", running.clock.now()))
    keys = {await running.pager.next(), await running.pager.next()}
    assert keys == {key, "test:wake"}, "the recovery's resolved notice and the next alert"
    resolved = running.watcher.store.alerts(include_resolved=True)
    assert any(row.key == key and row.state == "resolved" for row in resolved)


async def test_a_heartbeat_is_audited_and_answers_the_checks_status(running: Running) -> None:
    answer = await running.watcher.heartbeat("nightly", PingKind.SUCCESS, "run-1")
    assert answer["check"] == "nightly"
    assert answer["status"] == "up"
    assert running.kinds("heartbeat") == 1


async def test_a_heartbeat_for_an_unknown_check_is_refused_and_not_audited(running: Running) -> None:
    with pytest.raises(KeyError):
        await running.watcher.heartbeat("weekly", PingKind.SUCCESS, None)
    assert running.kinds("heartbeat") == 0


async def test_every_configured_check_is_saved_for_bastion_status(running: Running) -> None:
    running.watcher.save_checks()
    [check] = running.watcher.store.checks()
    assert (check.name, check.status, check.last_ping) == ("nightly", "new", None)

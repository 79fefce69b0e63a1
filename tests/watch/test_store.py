"""The shared watch store: alerts and checks as every process sees them, and triage from the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.watch.store import AlertRow, CheckRow, Triage, WatchStore, open_watch


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WatchStore]:
    opened = open_watch(tmp_path, None)
    yield opened
    opened.close()


def alert(key: str, state: str = "open", last_seen: float = 10.0, **data: str) -> AlertRow:
    return AlertRow(key, state, "warning", "volume", "fs", f"{key} happened", 1.0, last_seen, 1, dict(data))


def test_the_store_is_a_sqlite_file_in_home_unless_the_audit_log_is_in_postgresql(tmp_path: Path) -> None:
    store = open_watch(tmp_path, None)
    store.save_check(CheckRow("nightly", "up", 5.0, 65.0, 5.0))
    store.close()
    assert (tmp_path / "watch.db").is_file()
    reopened = WatchStore("sqlite:" + str(tmp_path / "watch.db"))
    assert reopened.checks() == [CheckRow("nightly", "up", 5.0, 65.0, 5.0)]
    reopened.close()


def test_saving_an_alert_again_replaces_it_and_keeps_its_details(store: WatchStore) -> None:
    store.save_alert(alert("a", path="/etc"))
    store.save_alert(alert("a", state="acknowledged", last_seen=20.0, path="/etc", by="bob"))
    assert store.alerts() == [alert("a", state="acknowledged", last_seen=20.0, path="/etc", by="bob")]
    assert store.alert("a") == store.alerts()[0]


def test_resolved_alerts_are_hidden_unless_asked_for_and_the_newest_comes_first(store: WatchStore) -> None:
    store.save_alert(alert("old", last_seen=1.0))
    store.save_alert(alert("new", last_seen=9.0))
    store.save_alert(alert("gone", state="resolved", last_seen=5.0))
    assert [row.key for row in store.alerts()] == ["new", "old"]
    assert [row.key for row in store.alerts(include_resolved=True)] == ["new", "gone", "old"]


def test_an_unknown_alert_is_none(store: WatchStore) -> None:
    assert store.alert("nothing:here") is None


def test_checks_are_listed_by_name_with_their_last_state(store: WatchStore) -> None:
    store.save_check(CheckRow("zeta", "new", None, None, 1.0))
    store.save_check(CheckRow("alpha", "up", 2.0, 62.0, 2.0))
    store.save_check(CheckRow("zeta", "down", None, 30.0, 40.0))
    assert store.checks() == [CheckRow("alpha", "up", 2.0, 62.0, 2.0), CheckRow("zeta", "down", None, 30.0, 40.0)]


def test_triage_stays_pending_in_order_until_applied(store: WatchStore) -> None:
    store.request_triage(Triage("t2", "a", "resolve", "bob", "fixed", 20.0))
    store.request_triage(Triage("t1", "a", "ack", "alice", "", 10.0))
    assert [t.id for t in store.pending_triage()] == ["t1", "t2"]
    store.triage_applied("t1", 30.0)
    assert store.pending_triage() == [Triage("t2", "a", "resolve", "bob", "fixed", 20.0)]

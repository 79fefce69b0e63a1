"""The audit store's queries, written once, behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bastion.errors import StoreError
from bastion.store.audit import (
    STORED_NODE_LEVEL,
    AuditStore,
    CheckpointRow,
    EntryRow,
    LogRow,
    NodeRow,
    PayloadRow,
    SearchFilter,
)
from tests.audit.conftest import Backend


def entry(idx: int, tool: str = "push", time: float | None = None) -> EntryRow:
    when = float(idx) if time is None else time
    return EntryRow(idx, bytes([idx]) * 32, f"entry {idx}".encode(), when, "call", "git", tool, "cursor", "allow")


@pytest.fixture
def store(backend: Backend) -> Iterator[AuditStore]:
    opened = backend.open()
    opened.create_log(LogRow("log-a", "bastion/a", "a", 1, 1.0))
    opened.create_log(LogRow("log-b", "bastion/b", "b", 2, 2.0))
    yield opened
    opened.close()


def test_entries_are_read_in_index_order_within_their_range_and_their_own_log(store: AuditStore) -> None:
    store.append_batch("log-a", [entry(i) for i in range(6)], [], [PayloadRow(3, "2026-12-06", b"sealed")])
    store.append_batch("log-b", [entry(0, tool="other")], [], [])
    assert store.size("log-a") == 6
    assert store.size("log-c") == 0
    assert [row.idx for row in store.entries("log-a", 2, 5)] == [2, 3, 4]
    assert [row.tool for row in store.entries("log-b")] == ["other"]
    raw = list(store.raw_entries("log-a", 3, 4))
    assert [(row[0], bytes(row[2]), row[9], bool(row[10]), row[11]) for row in raw] == [
        (3, b"entry 3", "2026-12-06", True, None)
    ]


def test_a_subtree_folds_from_its_leaves_below_the_stored_level_and_from_its_node_above(store: AuditStore) -> None:
    leaves = [entry(i) for i in range(1 << STORED_NODE_LEVEL)]
    store.append_batch("log-a", leaves, [NodeRow(STORED_NODE_LEVEL, 0, b"n" * 32)], [])
    assert store.subtree_hashes("log-a", 1, 3) == [leaves[6].leaf, leaves[7].leaf]
    assert store.subtree_hashes("log-a", STORED_NODE_LEVEL, 0) == [b"n" * 32]
    assert list(store.nodes("log-a", STORED_NODE_LEVEL, end=1)) == [(0, b"n" * 32)]
    with pytest.raises(StoreError):
        store.subtree_hashes("log-a", 2, 4)  # leaves 16..19 were never written
    with pytest.raises(StoreError):
        store.subtree_hashes("log-a", STORED_NODE_LEVEL, 1)


def test_a_redacted_payload_is_gone_for_good_and_its_entry_stays(store: AuditStore) -> None:
    store.append_batch("log-a", [entry(0), entry(1)], [], [PayloadRow(0, "2026-12-06", b"secret")])
    assert store.payload("log-a", 0) == ("2026-12-06", b"secret")
    assert store.payload("log-a", 1) is None
    assert [row[0] for row in store.sealed_payloads("log-a", 0, 2)] == [0]
    assert store.redact("log-a", 0) is True
    assert store.redact("log-a", 0) is False
    assert store.redact("log-a", 1) is False, "nothing sealed to redact"
    assert store.payload("log-a", 0) == ("2026-12-06", None)
    assert list(store.sealed_payloads("log-a", 0, 2)) == []
    assert [row.entry for row in store.entries("log-a")] == [b"entry 0", b"entry 1"]


def test_a_days_data_key_is_set_once_and_once_shredded_cannot_be_set_again(store: AuditStore) -> None:
    assert store.put_data_key("2026-12-05", b"first") == b"first"
    assert store.put_data_key("2026-12-05", b"second") == b"first", "another gateway's key wins the race"
    store.put_data_key("2026-12-06", b"today")
    assert store.shred_before("2026-12-06", now=9.0) == ["2026-12-05"]
    assert store.shred_before("2026-12-06", now=10.0) == []
    assert store.data_key("2026-12-05") is None
    assert store.data_keys() == [("2026-12-05", None, 9.0), ("2026-12-06", b"today", None)]
    with pytest.raises(StoreError):
        store.put_data_key("2026-12-05", b"again")


def test_checkpoints_come_in_size_order_and_the_latest_is_the_largest(store: AuditStore) -> None:
    assert store.latest_checkpoint("log-a") is None
    for size in (4, 16, 8):
        store.add_checkpoint(CheckpointRow("log-a", size, bytes([size]) * 32, f"note {size}", float(size)))
    assert [row.size for row in store.checkpoints("log-a")] == [4, 8, 16]
    assert store.latest_checkpoint("log-a") == CheckpointRow("log-a", 16, bytes([16]) * 32, "note 16", 16.0)
    assert store.checkpoints("log-b") == []
    with pytest.raises(StoreError):
        store.add_checkpoint(CheckpointRow("log-a", 16, b"x" * 32, "a second root for one size", 17.0))


def test_search_filters_by_column_and_time_newest_first_up_to_its_limit(store: AuditStore) -> None:
    store.append_batch("log-a", [entry(0, "push", 10.0), entry(1, "pull", 20.0), entry(2, "push", 30.0)], [], [])
    store.append_batch("log-b", [entry(0, "push", 25.0)], [], [])
    found = store.search(SearchFilter(tool="push"))
    assert [(log, row.idx) for log, row in found] == [("log-a", 2), ("log-b", 0), ("log-a", 0)]
    window = store.search(SearchFilter(since=20.0, until=30.0))
    assert [(log, row.time) for log, row in window] == [("log-b", 25.0), ("log-a", 20.0)]
    assert len(store.search(SearchFilter(limit=1))) == 1
    assert store.search(SearchFilter(client="nobody")) == []


def test_stored_log_ids_include_rows_kept_under_a_log_the_store_does_not_list(store: AuditStore) -> None:
    store.append_batch("log-a", [entry(0)], [], [])
    store.append_batch("ghost", [entry(0)], [], [])
    store.add_checkpoint(CheckpointRow("orphan", 1, b"r" * 32, "note", 1.0))
    assert store.stored_log_ids() == {"log-a", "ghost", "orphan"}
    assert [log.log_id for log in store.logs()] == ["log-a", "log-b"]

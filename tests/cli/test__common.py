"""What every command shares: one name for the person acting, and the audit log's doors for commands."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import anyio
import orjson
import pytest

from bastion.audit.entry import Kind, Record
from bastion.cli._common import plaintext, record_entry, who
from bastion.config.model import BastionConfig
from bastion.store.audit import AuditStore, SearchFilter
from bastion.store.audit_open import open_store


def no_terminal() -> str:
    raise OSError(25, "Inappropriate ioctl for device")


def test_the_actor_is_the_terminals_login_name_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getlogin", lambda: "alice")
    monkeypatch.setenv("LOGNAME", "root")
    assert who() == "alice"


def test_without_a_terminal_the_actor_is_the_user_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getlogin", no_terminal)
    monkeypatch.setenv("LOGNAME", "bob")
    assert who() == "bob"


def test_an_actor_nothing_names_is_recorded_as_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    def nobody() -> str:
        raise OSError("no user name")

    monkeypatch.setattr(os, "getlogin", no_terminal)
    monkeypatch.setattr(getpass, "getuser", nobody)
    assert who() == "unknown"


def entries(store: AuditStore, kind: Kind) -> list[tuple[str, int, dict[str, object]]]:
    found = store.search(SearchFilter(kind=kind.value))
    return [(log_id, row.idx, orjson.loads(row.entry)) for log_id, row in found]


def test_a_recorded_entry_is_in_the_log_with_its_fields(home: Path) -> None:
    record = Record(Kind.POLICY_CHANGE, {"change": "kill", "by": "alice", "reason": "incident 7"})
    anyio.run(record_entry, BastionConfig(), None, record)
    store = open_store(home, None)
    try:
        [(_, _, entry)] = entries(store, Kind.POLICY_CHANGE)
    finally:
        store.close()
    assert (entry["change"], entry["by"], entry["reason"]) == ("kill", "alice", "incident 7")


def test_a_recorded_payload_reads_back_and_a_redacted_one_reads_as_nothing(home: Path) -> None:
    record = Record(Kind.CALL_INTENT, {"tool": "echo"}, {"arguments": {"text": "needle-4711"}})
    anyio.run(record_entry, BastionConfig(), None, record)
    store = open_store(home, None)
    try:
        [(log_id, index, _)] = entries(store, Kind.CALL_INTENT)
        assert "needle-4711" in plaintext(store, log_id, index)
        assert store.redact(log_id, index)
        assert plaintext(store, log_id, index) == ""
    finally:
        store.close()

"""The state store that gateways sharing one home write to: gateways, servers, kill switches, tokens."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from bastion.errors import StoreError
from bastion.store.sqlite import GatewayRow, KillRow, ServerRow, StateStore, TokenRow, hash_token


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path)
    yield opened
    opened.close()


def test_another_process_sees_a_gateway_and_its_servers_once_written(tmp_path: Path, store: StateStore) -> None:
    assert store.path == tmp_path / "bastion.db"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    store.gateway_started(101, "laptop", "stdio", "/etc/bastion.toml", now=10.0)
    store.server_state(101, "git", "running", "", restarts=0, now=12.0)
    other = StateStore.open(tmp_path)
    try:
        assert other.gateways() == [GatewayRow(101, "laptop", "stdio", "/etc/bastion.toml", 10.0, 12.0)]
        assert other.servers() == [ServerRow(101, "git", "running", "", 0, 12.0)]
    finally:
        other.close()


def test_a_restarted_or_stopped_gateway_leaves_no_stale_servers(store: StateStore) -> None:
    store.gateway_started(101, "laptop", "stdio", "a.toml", now=1.0)
    store.server_state(101, "git", "failed", "exit 1", restarts=3, now=2.0)
    store.gateway_started(202, "laptop", "http", "b.toml", now=3.0)
    store.server_state(202, "time", "running", "", restarts=0, now=4.0)
    store.gateway_started(101, "laptop", "stdio", "a.toml", now=5.0)  # the same pid again: a new gateway
    assert [row.server for row in store.servers()] == ["time"]
    store.forget_gateway(202)
    assert store.servers() == []
    assert [row.pid for row in store.gateways()] == [101]


def test_a_kill_switch_is_set_once_and_lifted_once(store: StateStore) -> None:
    assert store.kill("git", "push", "leaking", by="ada", now=1.0) is True
    assert store.kill("git", "push", "again", by="bob", now=2.0) is False, "already off: the first reason stays"
    store.kill("fs", "write", "audit", by="ada", now=3.0)
    assert store.kills() == [KillRow("fs", "write", "audit", "ada", 3.0), KillRow("git", "push", "leaking", "ada", 1.0)]
    assert store.unkill("git", "push") is True
    assert store.unkill("git", "push") is False
    assert [row.tool for row in store.kills()] == ["write"]


def test_a_token_is_kept_only_as_its_hash_and_names_its_holder_until_it_expires(store: StateStore) -> None:
    token = store.create_token("cursor", now=100.0, expires=200.0, servers=("git",))
    assert token.startswith("bst_")
    with closing(sqlite3.connect(store.path)) as raw:
        [row] = raw.execute("SELECT * FROM tokens").fetchall()
    assert hash_token(token) in row
    assert not any(token in str(column) for column in row)
    assert store.client_for_token(token, now=150.0) == "cursor"
    assert store.token_servers("cursor") == ("git",)
    assert store.client_for_token(token, now=200.0) is None, "expired at its deadline"
    assert store.client_for_token(token + "x", now=150.0) is None
    assert store.tokens() == [TokenRow("cursor", 100.0, 200.0, None, ("git",), "agent")]


def test_a_client_has_one_live_token_until_it_is_revoked(store: StateStore) -> None:
    first = store.create_token("cursor", now=1.0, expires=None)
    with pytest.raises(StoreError):
        store.create_token("cursor", now=2.0, expires=None)
    assert store.client_for_token(first, now=3.0) == "cursor", "the refused second token changed nothing"
    assert store.revoke_token("cursor", now=4.0) is True
    assert store.revoke_token("cursor", now=5.0) is False
    assert store.client_for_token(first, now=6.0) is None
    second = store.create_token("cursor", now=7.0, expires=None)
    assert store.client_for_token(second, now=8.0) == "cursor"
    assert store.client_for_token(first, now=8.0) is None


def test_a_dashboard_token_is_not_an_mcp_clients_token(store: StateStore) -> None:
    token = store.create_token("ada", now=1.0, expires=None, role="admin")
    assert store.holder_of_token(token, now=2.0) == ("ada", "admin")
    assert store.client_for_token(token, now=2.0) is None


def test_a_store_from_before_server_limits_and_roles_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "bastion.db"
    with closing(sqlite3.connect(path)) as old, old:
        old.execute(
            "CREATE TABLE tokens (client TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL UNIQUE, created REAL NOT NULL,"
            " expires REAL, revoked REAL)"
        )
        old.execute("INSERT INTO tokens VALUES ('cursor', ?, 1.0, NULL, NULL)", (hash_token("bst_old"),))
    store = StateStore(path)
    try:
        assert store.tokens() == [TokenRow("cursor", 1.0, None, None, None, "agent")]
        assert store.client_for_token("bst_old", now=2.0) == "cursor"
    finally:
        store.close()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "bastion.db"
    path.write_bytes(b"this is not a SQLite database, it is just some bytes" * 40)
    with pytest.raises(StoreError):
        StateStore(path)

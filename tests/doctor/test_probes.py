"""The doctor's probes against real things: the file system, bubblewrap, PostgreSQL, sockets."""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.config.model import ServerConfig, SinkConfig
from bastion.doctor.checks import Status, sandbox_checks
from bastion.doctor.probes import (
    probe_clock,
    probe_home,
    probe_keys,
    probe_postgres,
    probe_sandbox,
    probe_server,
    probe_sink,
    probe_sqlite,
)
from tests.audit.conftest import POSTGRES_URL


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port something listens on."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_existing_state_dir_is_tested_with_a_file_that_is_then_removed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    facts = probe_home(home)
    assert facts.exists
    assert facts.is_dir
    assert facts.write_error is None
    assert facts.mode == 0o700
    assert facts.owner == os.geteuid()
    assert list(home.iterdir()) == []


def test_a_missing_state_dir_is_not_created(tmp_path: Path) -> None:
    facts = probe_home(tmp_path / "a" / "home")
    assert not facts.exists
    assert facts.write_error is None
    assert not (tmp_path / "a").exists()


def test_a_state_dir_below_a_file_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    facts = probe_home(tmp_path / "file" / "home")
    assert facts.write_error is not None
    assert "not a directory" in facts.write_error


def test_a_state_dir_on_a_read_only_file_system_cannot_be_created() -> None:
    facts = probe_home(Path("/proc/bastion-doctor/home"))  # even root cannot make a directory in /proc
    assert not facts.exists
    assert facts.write_error is not None


def test_key_files_are_found_with_their_modes_and_other_files_are_not(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / "audit-signing-1.key").write_bytes(b"k" * 32)
    (keys / "audit-signing-1.key").chmod(0o644)
    (keys / "audit-verifiers.txt").write_text("", encoding="utf-8")
    (tmp_path / "identities").mkdir(mode=0o700)
    (tmp_path / "identities" / "fs.key.1").write_bytes(b"k" * 32)
    (tmp_path / "identities" / "fs.key.1").chmod(0o600)
    facts = probe_keys(tmp_path, {}, None)
    assert {(Path(k.path).name, k.mode) for k in facts.files} == {("audit-signing-1.key", 0o644), ("fs.key.1", 0o600)}
    assert {Path(d.path).name for d in facts.directories} == {"keys", "identities"}
    assert facts.missing == ()


def test_a_sandboxed_true_really_runs_through_the_launcher() -> None:
    facts = probe_sandbox(dict(os.environ))
    assert facts.chosen is not None, facts.probe_error
    assert facts.start_error is None
    assert facts.version.startswith("bubblewrap")
    checks = sandbox_checks(facts, needed=True)
    assert all(c.status is not Status.FAIL for c in checks)
    if facts.cgroup is not None:  # the probe's own pids cgroup is removed again
        assert not [n for n in os.listdir(facts.cgroup) if n.startswith(f"bastion-{os.getpid()}-doctor-")]


def test_a_server_command_resolves_as_the_launcher_resolves_it() -> None:
    server = ServerConfig(command=sys.executable, args=("-c", "pass"))
    facts = probe_server("py", server, dict(os.environ))
    assert facts.error is None
    assert facts.resolved is not None
    assert os.path.isfile(facts.resolved)


def test_a_missing_command_or_granted_path_is_found() -> None:
    ghost = probe_server("ghost", ServerConfig(command="bastion-no-such-server"), dict(os.environ))
    assert ghost.error is not None
    assert ghost.fix
    paths = probe_server("py", ServerConfig(command=sys.executable, fs_read=("/nonexistent-doctor",)), dict(os.environ))
    assert paths.missing_paths == ("/nonexistent-doctor",)


def test_an_unsandboxed_server_is_looked_up_on_its_path_only() -> None:
    facts = probe_server("plain", ServerConfig(command="true", sandbox="off"), dict(os.environ))
    assert facts.error is None
    assert "sandbox = off" in facts.note


def test_a_remote_server_is_not_contacted() -> None:
    facts = probe_server("remote", ServerConfig(url="https://mcp.invalid/mcp"), {})
    assert facts.error is None
    assert facts.target == "https://mcp.invalid/mcp"


def test_a_reachable_postgresql_gives_its_version_and_time() -> None:
    facts = probe_postgres(POSTGRES_URL)
    assert facts.error is None, facts.error
    assert facts.server_version
    assert facts.server_time is not None
    assert abs(probe_clock(facts.server_time).database_skew or 0.0) < 60


def test_postgresql_at_a_closed_port_is_an_error(closed_port: int) -> None:
    facts = probe_postgres(f"postgresql://postgres:secret@127.0.0.1:{closed_port}/x")
    assert facts.error is not None
    assert "secret" not in facts.where
    assert "secret" not in facts.error


def test_a_sqlite_store_in_a_missing_directory_is_fine_if_it_can_be_made(tmp_path: Path) -> None:
    assert probe_sqlite(tmp_path / "new" / "audit.db").error is None
    (tmp_path / "file").write_text("", encoding="utf-8")
    assert probe_sqlite(tmp_path / "file" / "audit.db").error is not None


def test_a_sink_gets_a_connection_and_nothing_else(listening: int, closed_port: int) -> None:
    up = SinkConfig(kind="webhook", url=f"http://127.0.0.1:{listening}/hook")
    assert probe_sink(1, up, {}).error is None
    down = SinkConfig(kind="slack", url=f"http://127.0.0.1:{closed_port}/hook")
    facts = probe_sink(2, down, {})
    assert facts.error is not None
    assert facts.label == "sink 2 (slack, primary)"
    mail = SinkConfig(kind="email", smtp=f"127.0.0.1:{listening}", sender="a@b.c", to=("d@e.f",))
    assert probe_sink(3, mail, {}).error is None


def test_a_pagerduty_sink_needs_its_routing_key_and_a_command_sink_its_program() -> None:
    pager = SinkConfig(kind="pagerduty", routing_key_env="BASTION_TEST_PD_KEY")
    facts = probe_sink(1, pager, {})
    assert facts.error is not None
    assert "BASTION_TEST_PD_KEY" in facts.fix
    missing = SinkConfig(kind="command", command=("bastion-no-such-notifier",))
    assert probe_sink(2, missing, dict(os.environ)).error is not None
    present = SinkConfig(kind="command", command=("true",))
    assert probe_sink(3, present, dict(os.environ)).error is None


def test_secrets_sealed_under_a_lost_master_key_are_found(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "secrets.db") as db:
        db.execute("CREATE TABLE secrets (server TEXT, name TEXT)")
        db.execute("INSERT INTO secrets VALUES ('fs', 'TOKEN')")
    db.close()
    (what, fix), *_ = probe_keys(tmp_path, {}, None).missing
    assert "secrets.db" in what
    assert "secrets-master.key" in fix
    assert probe_keys(tmp_path, {"BASTION_SECRETS_KEY": "set"}, None).missing == ()

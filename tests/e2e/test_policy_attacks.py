"""Least privilege against real servers: each attack is refused by Bastion (not by the server),
and its benign look-alike goes through.

- path traversal and symlink escapes against the official Node filesystem server;
- SSRF spellings against a fetch tool that would fetch anything, aimed at a real local secret;
- SQL writes through a "read" query tool that would run anything, on a real SQLite file;
- shell injection through a command tool that would run anything.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import anyio
import mcp_types as mt
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from bastion.codes import DENIED
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import NPM_BIN, through_stdio

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FILESYSTEM = NPM_BIN / "mcp-server-filesystem"
VULNERABLE = Path(__file__).parents[1] / "servers" / "vulnerable.py"


def text(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


async def refused(client: Client, tool: str, arguments: dict[str, object]) -> str:
    """Call a tool expecting Bastion's policy refusal; returns the rule that refused it."""
    with pytest.raises(MCPError) as caught:
        await client.call_tool(tool, arguments)
    assert caught.value.error.code == DENIED, caught.value.error.message
    data = caught.value.error.data
    assert isinstance(data, dict)
    return str(data["rule"])  # pyright: ignore[reportUnknownArgumentType]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A root with a file, a look-alike, and three ways out: a symlink, a dangling one, a linked parent."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET", encoding="utf-8")
    (root / "notes.txt").write_text("hello", encoding="utf-8")
    (root / "notes..v2.txt").write_text("second", encoding="utf-8")
    (root / "link").symlink_to(outside / "secret.txt")
    (root / "dangling").symlink_to(outside / "new.txt")
    (root / "door").symlink_to(outside)
    (root / ".env").write_text("API_KEY=x", encoding="utf-8")
    return root


@pytest.mark.npm
@pytest.mark.skipif(not FILESYSTEM.exists(), reason="run `npm ci --prefix tests/e2e/npm` first")
async def test_path_escapes_are_refused_before_the_filesystem_server_sees_them(home: Path, tree: Path) -> None:
    argv = ["wrap", "--name", "fs", "--fs-read", str(tree), "--", str(FILESYSTEM), str(tree)]
    async with through_stdio(home, argv) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "read_text_file" in names
        assert "write_file" not in names  # read-only by default: write tools are not even listed
        for attack in (
            str(tree / ".." / "outside" / "secret.txt"),
            "../outside/secret.txt",
            str(tree) + "//..//outside/secret.txt",
            "%2e%2e/outside/secret.txt",
            "\uff0e\uff0e/outside/secret.txt",
            "/etc/passwd",
            "file:///etc/passwd",
            "link",
            "door/secret.txt",
        ):
            rule = await refused(client, "read_text_file", {"path": attack})
            assert rule.startswith("paths."), (attack, rule)
        assert await refused(client, "read_text_file", {"path": ".env"}) == "paths.denied_name"
        assert await refused(client, "read_text_file", {"path": "notes.txt\x00.png"}) == "paths.control_character"
        assert text(await client.call_tool("read_text_file", {"path": str(tree / "notes..v2.txt")})) == "second"
        assert text(await client.call_tool("read_text_file", {"path": "notes.txt"})) == "hello"


@pytest.mark.npm
@pytest.mark.skipif(not FILESYSTEM.exists(), reason="run `npm ci --prefix tests/e2e/npm` first")
async def test_writes_need_a_grant_and_stay_in_the_writable_root(home: Path, tree: Path) -> None:
    async with through_stdio(home, ["wrap", "--fs-write", str(tree), "--", str(FILESYSTEM), str(tree)]) as client:
        with pytest.raises(MCPError) as hidden:
            await client.call_tool("write_file", {"path": "x.txt", "content": "x"})
        assert hidden.value.error.code == -32602  # not granted: not listed, and unknown to the client
    scratch = tree / "scratch"
    scratch.mkdir()
    # The server marks write_file destructiveHint (it overwrites), so it needs the destructive grant.
    argv = ["wrap", "--name", "fs", "--fs-read", str(tree), "--fs-write", str(scratch), "--grant", "destructive"]
    async with through_stdio(home, [*argv, "--", str(FILESYSTEM), str(tree)]) as client:
        assert await refused(client, "write_file", {"path": "notes.txt", "content": "x"}) == "paths.outside_roots"
        assert await refused(client, "write_file", {"path": "dangling", "content": "x"}) == "paths.outside_roots"
        await client.call_tool("write_file", {"path": str(scratch / "ok.txt"), "content": "fine"})
    assert (tree / "notes.txt").read_text(encoding="utf-8") == "hello"
    assert not (tree.parent / "outside" / "new.txt").exists()
    assert (scratch / "ok.txt").read_text(encoding="utf-8") == "fine"


class _Secret(BaseHTTPRequestHandler):
    hits: list[str] = []  # noqa: RUF012 (shared by design: the test reads what the server saw)

    def do_GET(self) -> None:
        _Secret.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"internal secret")

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def internal() -> Iterator[int]:
    """A real service on loopback holding a secret: the SSRF target."""
    _Secret.hits = []
    server = HTTPServer(("127.0.0.1", 0), _Secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def vulnerable_config(tmp_path: Path, db: Path) -> Path:
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[servers.bad]\ncommand = "{PYTHON}"\nargs = ["{VULNERABLE}", "{db}"]\n'
        f'fs_write = ["{db.parent}"]\n'
        'grants = ["network", "exec"]\n'
        '[servers.bad.sql]\ndialect = "sqlite"\n'
        '[servers.bad.commands]\nallow = { echo = ["[A-Za-z0-9 ]*"] }\n',
        encoding="utf-8",
    )
    return config


async def test_ssrf_spellings_of_a_loopback_service_are_refused(home: Path, tmp_path: Path, internal: int) -> None:
    config = vulnerable_config(tmp_path, tmp_path / "db.sqlite")
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        for host in ("127.0.0.1", "2130706433", "0x7f.0.0.1", "0177.0.0.1", "127.1", "[::ffff:127.0.0.1]", "localhost"):
            rule = await refused(client, "fetch", {"url": f"http://{host}:{internal}/secret"})
            assert rule in ("urls.private_address", "urls.malformed"), (host, rule)
        assert await refused(client, "fetch", {"url": "http://169.254.169.254/latest/"}) == "urls.metadata"
        assert await refused(client, "fetch", {"url": f"file:///etc/passwd?{internal}"}) == "urls.scheme"
        # A public address with an IP-looking path is not refused by policy (the server may still fail to reach it).
        benign = await client.call_tool("fetch", {"url": "http://93.184.215.14/127.0.0.1"})
        assert benign.is_error or "html" in text(benign).lower()
    assert _Secret.hits == []


async def test_sql_writes_through_a_read_tool_are_refused(home: Path, tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    config = vulnerable_config(tmp_path, db)
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        assert await refused(client, "read_query", {"query": "DELETE FROM notes"}) == "sql.write"
        assert await refused(client, "read_query", {"query": "SELECT 1; DROP TABLE notes"}) == "sql.stacked"
        cte = "WITH gone AS (DELETE FROM notes RETURNING *) SELECT * FROM gone"
        assert (await refused(client, "read_query", {"query": cte})).startswith("sql.")
        assert await refused(client, "read_query", {"query": "ATTACH DATABASE '/tmp/x.db' AS x"}) == "sql.write"
        benign = await client.call_tool("read_query", {"query": "SELECT 'delete from notes' AS note"})
        assert "delete from notes" in text(benign)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("keep me",)]


async def test_shell_injection_is_refused_and_an_allowed_command_runs(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    config = vulnerable_config(tmp_path, tmp_path / "db.sqlite")
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        for attack in (f"echo hi; touch {marker}", f"echo $(touch {marker})", f"echo hi && touch {marker}"):
            assert await refused(client, "run_command", {"command": attack}) == "commands.metacharacter"
        assert await refused(client, "run_command", {"command": f"touch {marker}"}) == "commands.executable"
        assert text(await client.call_tool("run_command", {"command": "echo hello there"})).strip() == "hello there"
    assert not marker.exists()


async def test_every_denial_is_in_the_audit_log_with_its_rule(home: Path, tmp_path: Path) -> None:
    config = vulnerable_config(tmp_path, tmp_path / "db.sqlite")
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        await refused(client, "run_command", {"command": "echo a; id"})
        await client.call_tool("run_command", {"command": "echo fine"})
    found = await anyio.run_process(
        [*BASTION, "audit", "search", "--kind", "call.denied", "--json"], env=child_env(home)
    )
    [denial] = [json.loads(line) for line in found.stdout.splitlines()]
    assert denial["tool"] == "run_command"
    assert denial["decision"]["rule"] == "commands.metacharacter"
    allowed = await anyio.run_process(
        [*BASTION, "audit", "search", "--kind", "call.intent", "--json"], env=child_env(home)
    )
    [intent] = [json.loads(line) for line in allowed.stdout.splitlines()]
    assert intent["decision"]["rule"] == "grant.exec"

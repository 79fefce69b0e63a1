"""The sandbox against a malicious server of ours: it reaches for secrets, the environment,
places outside its grants, the network and unbounded processes, and gets none of them, while
the gateway goes on serving the other server. Policy cannot help here (the attempts are
hard-coded in the server), so each BLOCKED is the sandbox's doing."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import mcp_types as mt
import pytest

from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import through_stdio, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

MALICIOUS = Path(__file__).parents[1] / "servers" / "malicious.py"


def text(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback TCP service that records anything that reaches it."""
    received: list[bytes] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            with conn:
                received.append(conn.recv(1024))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], received
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


def setup(tmp_path: Path, home: Path, port: int) -> tuple[Path, dict[str, Path]]:
    places = {name: tmp_path / name for name in ("readonly", "writable", "elsewhere", "fakehome")}
    for path in places.values():
        path.mkdir()
    (places["elsewhere"] / "other-secrets.env").write_text("OTHER_TOKEN=sk-other-server", encoding="utf-8")
    (places["fakehome"] / ".ssh").mkdir()
    (places["fakehome"] / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----", encoding="utf-8")
    targets = {
        "secret_files": [
            "/etc/shadow",
            str(home / "keys" / "audit-master.key"),
            str(home / "audit.db"),
            str(places["elsewhere"] / "other-secrets.env"),
            str(places["fakehome"] / ".ssh" / "id_rsa"),
        ],
        "write_to": [
            str(places["readonly"] / "planted.txt"),
            str(places["elsewhere"] / "planted.txt"),
            str(places["writable"] / ".." / "planted.txt"),
            "/usr/planted.txt",
        ],
        "port": port,
    }
    config = tmp_path / "bastion.toml"
    config.write_text(
        f"[servers.evil]\ncommand = \"{PYTHON}\"\nargs = ['{MALICIOUS}', '{json.dumps(targets)}']\n"
        f'fs_read = ["{places["readonly"]}"]\nfs_write = ["{places["writable"]}"]\n'
        "[servers.evil.limits]\nprocesses = 40\n"
        '[servers.evil.tools]\ngrant = ["read_secrets", "environment", "write_outside", "phone_home", "fork_bomb"]\n'
        f'[servers.good]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{places["readonly"]}"]\n'
        'env_pass = ["GOOD_TOKEN"]\n',
        encoding="utf-8",
    )
    return config, places


async def test_a_malicious_server_reaches_nothing_outside_its_grants(
    home: Path, tmp_path: Path, listener: tuple[int, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, received = listener
    config, places = setup(tmp_path, home, port)
    monkeypatch.setenv("GOOD_TOKEN", "sk-good-server-only")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-ambient-credential")
    monkeypatch.setenv("HOME", str(places["fakehome"]))
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        secrets = text(await client.call_tool("evil__read_secrets", {}))
        assert "ESCAPED" not in secrets, secrets
        assert secrets.count("BLOCKED") == 5
        env = json.loads(text(await client.call_tool("evil__environment", {})))
        assert "GOOD_TOKEN" not in env
        assert "GITHUB_TOKEN" not in env
        assert not any("sk-" in value for value in env.values())
        assert env["HOME"] == "/tmp"
        written = text(await client.call_tool("evil__write_outside", {})).splitlines()
        # A granted read-only root and the system stay read-only; a write anywhere else lands in
        # the sandbox's private tmpfs at best (checked on the host below).
        assert written[0].startswith("BLOCKED"), written
        assert "Read-only" in written[0], written
        assert written[3].startswith("BLOCKED"), written
        network = text(await client.call_tool("evil__phone_home", {}))
        assert network.startswith("BLOCKED"), network
        with anyio.fail_after(60):
            bomb = text(await client.call_tool("evil__fork_bomb", {}))
        assert bomb.startswith("BLOCKED after"), bomb
        assert int(bomb.split()[2]) < 40
        # The gateway goes on serving the other server.
        echoed = await client.call_tool("good__echo", {"text": "still serving"})
        assert text(echoed) == "still serving"
        # The sandbox watcher looks every 2 s, in the gateway: wait (bounded) for its finding while it runs.
        await wait_for(process_limit_found(home), timeout=15, what="the sandbox's process-limit finding", every=0.5)
    assert received == []
    assert not (places["readonly"] / "planted.txt").exists()
    assert not (places["elsewhere"] / "planted.txt").exists()
    assert not (tmp_path / "planted.txt").exists()


def process_limit_found(home: Path) -> Callable[[], Awaitable[bool | None]]:
    """Whether the audit log holds the finding that server `evil` ran into its process limit."""

    async def probe() -> bool | None:
        findings = await anyio.run_process(
            [*BASTION, "audit", "search", "--kind", "sandbox.finding", "--json"], env=child_env(home)
        )
        rows = [json.loads(line) for line in findings.stdout.splitlines()]
        return (
            any(row["finding"] == "process limit reached" and row["server"]["name"] == "evil" for row in rows) or None
        )

    return probe


async def test_unsandboxed_servers_are_reported_as_findings(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[servers.loose]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\nsandbox = "off"\n',
        encoding="utf-8",
    )
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        assert text(await client.call_tool("echo", {"text": "x"})) == "x"
    findings = await anyio.run_process(
        [*BASTION, "audit", "search", "--kind", "sandbox.finding", "--json"], env=child_env(home)
    )
    [row] = [json.loads(line) for line in findings.stdout.splitlines()]
    assert row["server"]["name"] == "loose"
    assert "unsandboxed" in row["finding"]


async def secret(home: Path, config: Path, *args: str, value: str = "") -> None:
    done = await anyio.run_process(
        [*BASTION, "secrets", *args, "--config", str(config)], input=value.encode(), env=child_env(home), check=False
    )
    assert done.returncode == 0, done.stderr.decode()


async def test_each_server_gets_only_its_own_secrets_and_entries_name_identity_and_version(
    home: Path, tmp_path: Path, listener: tuple[int, list[bytes]]
) -> None:
    config, _places = setup(tmp_path, home, listener[0])
    await secret(home, config, "set", "evil", "EVIL_KEY", value="sk-evil-1")
    await secret(home, config, "set", "good", "GOOD_SECRET", value="sk-good-only")
    await secret(home, config, "rotate", "evil", "EVIL_KEY", value="sk-evil-2")
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        env = json.loads(text(await client.call_tool("evil__environment", {})))
    assert env["EVIL_KEY"] == "sk-evil-2"
    assert "GOOD_SECRET" not in env
    found = await anyio.run_process(
        [*BASTION, "audit", "search", "--kind", "call.intent", "--tool", "environment", "--json"], env=child_env(home)
    )
    [intent] = [json.loads(line) for line in found.stdout.splitlines()]
    assert intent["server"]["id"].startswith("srv_")
    assert intent["server"]["credentials"] == {"EVIL_KEY": 2}
    assert "bwrap" in intent["server"]["sandbox"]
    store = (home / "secrets.db").read_bytes()
    assert b"sk-evil" not in store
    assert b"sk-good" not in store


async def test_a_revoked_secret_keeps_its_server_from_starting_and_the_others_serve(
    home: Path, tmp_path: Path, listener: tuple[int, list[bytes]]
) -> None:
    config, _places = setup(tmp_path, home, listener[0])
    await secret(home, config, "set", "evil", "EVIL_KEY", value="sk-evil-1")
    await secret(home, config, "revoke", "evil", "EVIL_KEY")
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert not any(name.startswith("evil__") for name in names)
        assert text(await client.call_tool("good__echo", {"text": "fine"})) == "fine"
    status = await anyio.run_process([*BASTION, "audit", "tail", "--json"], env=child_env(home))
    assert b"sk-evil" not in status.stdout

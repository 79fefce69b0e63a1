"""Server processes shared between sessions (`isolation`), end to end: `bastion serve` as a
process, real sandboxed servers, two clients with their own tokens, processes counted in /proc."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncGenerator, Generator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2
import mcp_types as mt
import pytest
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

from bastion.codes import METHOD_NOT_FOUND
from bastion.store.sqlite import StateStore
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import free_port, wait_for_port

pytestmark = [pytest.mark.e2e]

PROBE = Path(__file__).parents[1] / "servers" / "tenant_probe.py"
TOOLS = '["ask", "roots", "confirm", "progress", "hold", "cancelled", "pid"]'


@dataclass
class Served:
    url: str
    pid: int
    tokens: dict[str, str]


def probe(name: str, isolation: str, pool: str = "idle_timeout = 1") -> str:
    """A `tenant_probe` server under `isolation`; its name is on its command line, to count it."""
    return (
        f'[servers.{name}]\ncommand = "{PYTHON}"\nargs = ["{PROBE}", "{name}"]\nisolation = "{isolation}"\n'
        f"[servers.{name}.tools]\ngrant = {TOOLS}\n[servers.{name}.pool]\n{pool}\n"
    )


@contextmanager
def serve(home: Path, tmp_path: Path, servers: str, clients: tuple[str, ...] = ("alice", "bob")) -> Generator[Served]:
    port = free_port()
    config = tmp_path / "bastion.toml"
    config.write_text(f'[http]\nlisten = "127.0.0.1:{port}"\n{servers}', encoding="utf-8")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = StateStore.open(home)
    tokens = {name: store.create_token(name, 0.0, None) for name in clients}
    store.close()
    process = subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=child_env(home))
    try:
        anyio.run(wait_for_port, port)
        yield Served(f"http://127.0.0.1:{port}/mcp", process.pid, tokens)
    finally:
        process.terminate()
        process.wait(timeout=15)


def server_processes(root: int, label: str) -> list[int]:
    """The processes of server `label` below the gateway `root` (the server itself, not its bwrap)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="utf-8")
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            stack.append(child)
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                comm = Path(f"/proc/{child}/comm").read_text(encoding="utf-8").strip()
            except OSError:
                continue
            if comm != "bwrap" and str(PROBE).encode() in argv and label.encode() in argv:
                found.append(child)
    return found


async def settle(root: int, label: str, expected: int, within: float) -> int:
    """Wait (polling /proc, bounded) until server `label` has `expected` processes; return the count."""
    count = len(server_processes(root, label))
    with anyio.move_on_after(within):
        while count != expected:
            await anyio.sleep(0.1)
            count = len(server_processes(root, label))
    return count


@dataclass
class Seen:
    """What one client was asked by servers, and the progress it was told of."""

    name: str
    asked: list[str] = field(default_factory=list[str])
    progress: list[float] = field(default_factory=list[float])

    async def sampling(
        self, context: ClientRequestContext, params: mt.CreateMessageRequestParams
    ) -> mt.CreateMessageResult:
        self.asked.append("sampling")
        text = f"{self.name}'s model"
        return mt.CreateMessageResult(role="assistant", content=mt.TextContent(type="text", text=text), model="fake")

    async def roots(self, context: ClientRequestContext) -> mt.ListRootsResult:
        self.asked.append("roots")
        return mt.ListRootsResult(roots=[mt.Root(uri=f"file:///home/{self.name}")])  # pyright: ignore[reportArgumentType]

    async def elicit(self, context: ClientRequestContext, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        self.asked.append("elicitation")
        return mt.ElicitResult(action="accept", content={"answer": f"{self.name} agrees"})

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress.append(progress)


@asynccontextmanager
async def connect(served: Served, seen: Seen) -> AsyncGenerator[Client]:
    headers = {"Authorization": f"Bearer {served.tokens[seen.name]}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with Client(
            streamable_http_client(served.url, http_client=http),
            mode="legacy",
            sampling_callback=seen.sampling,
            list_roots_callback=seen.roots,  # pyright: ignore[reportDeprecated]
            elicitation_callback=seen.elicit,
        ) as client:
            yield client


def text(result: mt.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, mt.TextContent)
    return first.text


async def _two_clients_on_one_shared_process(served: Served) -> None:
    alice, bob = Seen("alice"), Seen("bob")
    async with connect(served, alice) as a, connect(served, bob) as b:
        assert text(await a.call_tool("pid")) == text(await b.call_tool("pid"))  # one process for both
        assert text(await a.call_tool("ask", {"text": "who?"})) == "alice's model"
        assert text(await b.call_tool("ask", {"text": "who?"})) == "bob's model"
        assert text(await b.call_tool("roots")) == "file:///home/bob"
        assert text(await a.call_tool("roots")) == "file:///home/alice"
        assert text(await a.call_tool("confirm", {"message": "ok?"})) == "alice agrees"
        assert text(await b.call_tool("confirm", {"message": "ok?"})) == "bob agrees"
        # Both in flight at once: each client is told of its own call's progress, and only of it.
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: a.call_tool("progress", {"steps": 5}, progress_callback=alice.on_progress))
            tasks.start_soon(lambda: b.call_tool("progress", {"steps": 7}, progress_callback=bob.on_progress))
    assert alice.progress == [1, 2, 3, 4, 5]
    assert bob.progress == [1, 2, 3, 4, 5, 6, 7]
    assert alice.asked == ["sampling", "roots", "elicitation"]
    assert bob.asked == ["sampling", "roots", "elicitation"]


def test_a_shared_server_routes_each_request_progress_and_roots_to_the_client_that_caused_it(
    home: Path, tmp_path: Path
) -> None:
    with serve(home, tmp_path, probe("probe", "shared", "max_processes = 1")) as served:
        anyio.run(_two_clients_on_one_shared_process, served)


async def _cancel_one(served: Served) -> tuple[str, str]:
    alice, bob = Seen("alice"), Seen("bob")
    holding = {"alice": anyio.Event(), "bob": anyio.Event()}
    alices_call = anyio.CancelScope()
    outcome = ""

    def began(who: str) -> ProgressFnT:
        async def progressed(progress: float, total: float | None, message: str | None) -> None:
            holding[who].set()

        return progressed

    async with connect(served, alice) as a, connect(served, bob) as b:

        async def alice_holds() -> None:
            with alices_call:
                await a.call_tool("hold", {"seconds": 30, "tag": "alice"}, progress_callback=began("alice"))

        async def bob_holds() -> None:
            nonlocal outcome
            outcome = text(await b.call_tool("hold", {"seconds": 3, "tag": "bob"}, progress_callback=began("bob")))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(alice_holds)
            tasks.start_soon(bob_holds)
            with anyio.fail_after(30):
                await holding["alice"].wait()
                await holding["bob"].wait()
            # Both calls in flight on the one process: Alice abandons hers (the SDK sends notifications/cancelled).
            alices_call.cancel()
        # Bob's hold has ended, seconds after the server was told of Alice's cancellation.
        return outcome, text(await b.call_tool("cancelled"))


def test_a_cancelled_call_on_a_shared_server_cancels_that_call_alone(home: Path, tmp_path: Path) -> None:
    with serve(home, tmp_path, probe("probe", "shared", "max_processes = 1")) as served:
        outcome, cancelled = anyio.run(_cancel_one, served)
    assert outcome == "held"  # bob's call on the same process went on
    assert cancelled == "alice"


async def _ambiguous_request(served: Served) -> None:
    alice, bob = Seen("alice"), Seen("bob")
    started = anyio.Event()

    async def progressed(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with connect(served, alice) as a, connect(served, bob) as b:
        async with anyio.create_task_group() as tasks:
            # Alice's call stays in flight for about two seconds ...
            tasks.start_soon(lambda: a.call_tool("progress", {"steps": 100}, progress_callback=progressed))
            with anyio.fail_after(30):
                await started.wait()
            # ... so the server's sampling request during Bob's call could be either's: refused, not guessed.
            with pytest.raises(MCPError) as refused:
                await b.call_tool("ask", {"text": "whose?"})
            assert refused.value.error.code == METHOD_NOT_FOUND
        # Alone on the process again, Bob's request is his.
        assert text(await b.call_tool("ask", {"text": "whose?"})) == "bob's model"
    assert alice.asked == []
    assert bob.asked == ["sampling"]


def test_a_request_from_a_shared_server_no_one_call_can_be_said_to_cause_is_refused(home: Path, tmp_path: Path) -> None:
    with serve(home, tmp_path, probe("probe", "shared", "max_processes = 1")) as served:
        anyio.run(_ambiguous_request, served)


async def _count_and_release(served: Served) -> dict[str, tuple[int, int, float]]:
    """Five sessions (three of alice's, two of bob's) each call every server; then all end."""
    labels = ("per-session", "per-client", "pooled")
    held: dict[str, int] = {}
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(served, Seen(name))) for name in FIVE]
        for client in clients:
            for label in labels:
                await client.call_tool(f"{label}__pid")
        held = {label: len(server_processes(served.pid, label)) for label in labels}
    ended = anyio.current_time()
    released: dict[str, tuple[int, int, float]] = {}
    for label in labels:
        left = await settle(served.pid, label, 0, within=15)
        released[label] = (held[label], left, anyio.current_time() - ended)
    return released


FIVE = ("alice", "alice", "alice", "bob", "bob")


def test_servers_are_shared_per_client_or_pooled_and_released_when_the_sessions_end(home: Path, tmp_path: Path) -> None:
    servers = probe("per-session", "session") + probe("per-client", "client") + probe("pooled", "shared")
    with serve(home, tmp_path, servers) as served:
        released = anyio.run(_count_and_release, served)
    held = {label: count for label, (count, _left, _took) in released.items()}
    assert held == {"per-session": 5, "per-client": 2, "pooled": 1}
    for label, (_count, left, took) in released.items():
        assert left == 0, f"{label}: {left} processes still running {took:.1f}s after every session ended"


async def _full(served: Served) -> httpx2.Response:
    async with connect(served, Seen("alice")) as alice:
        await alice.call_tool("pid")  # alice's process is the pool's only one, and in use
        headers = {"Authorization": f"Bearer {served.tokens['bob']}", "Accept": "application/json, text/event-stream"}
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bob", "version": "1"}}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            with anyio.fail_after(10):  # an answer, not a wait for room
                return await http.post(
                    served.url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}
                )


def test_a_full_pool_answers_a_new_session_503_with_retry_after_at_once(home: Path, tmp_path: Path) -> None:
    servers = probe("solo", "client", "max_processes = 1\nidle_timeout = 30")
    with serve(home, tmp_path, servers) as served:
        refused = anyio.run(_full, served)
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0


def test_past_max_sessions_a_new_session_is_answered_503_with_retry_after(home: Path, tmp_path: Path) -> None:
    servers = "max_sessions = 1\n" + probe("solo", "session")  # into [http]: the first line after listen
    with serve(home, tmp_path, servers) as served:
        refused = anyio.run(_full, served)
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) > 0


async def _idle(served: Served) -> tuple[int, int]:
    async with connect(served, Seen("alice")) as alice:
        await alice.call_tool("pid")
        held = len(server_processes(served.pid, "idle"))
        left = await settle(served.pid, "idle", 0, within=20)  # the client is still connected, and silent
    return held, left


def test_an_idle_session_is_closed_after_the_configured_timeout_and_its_servers_released(
    home: Path, tmp_path: Path
) -> None:
    servers = "session_idle_timeout = 3\n" + probe("idle", "session")
    with serve(home, tmp_path, servers) as served:
        held, left = anyio.run(_idle, served)
    assert (held, left) == (1, 0)

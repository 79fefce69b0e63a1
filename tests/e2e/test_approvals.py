"""The approval gate driven for real: a call waits while a person decides from another process
(the CLI), through the webhook's signed link, or as the client's own user (elicitation);
timeouts and unreachable channels deny; two channels racing produce one decision."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as mt
import pytest
from mcp.shared.exceptions import MCPError

from bastion.approvals.store import open_approvals
from bastion.cli._common import who
from bastion.codes import DENIED
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import JsonPosts, free_port, json_receiver, through_stdio, wait_for, wait_for_port, wait_until

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def config(tmp_path: Path, approvals: str = 'channels = ["cli"]\ntimeout = 30\n') -> Path:
    path = tmp_path / "bastion.toml"
    path.write_text(
        f"[approvals]\n{approvals}"
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n'
        '[servers.notes.tools]\napprove = ["echo"]\n',
        encoding="utf-8",
    )
    return path


async def cli(home: Path, *args: str) -> str:
    done = await anyio.run_process([*BASTION, "approvals", *args], env=child_env(home), check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def pending_id(home: Path) -> str:
    async def first() -> str | None:
        listed = json.loads(await cli(home, "list", "--json"))
        return str(listed[0]["id"]) if listed else None

    return await wait_for(first, timeout=20, what="a pending approval", every=0.1)


def text(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


async def test_a_call_waits_until_approved_from_another_terminal(home: Path, tmp_path: Path) -> None:
    results: list[str] = []
    async with through_stdio(home, ["run", "--config", str(config(tmp_path))]) as client:
        async with anyio.create_task_group() as tasks:

            async def call() -> None:
                results.append(text(await client.call_tool("echo", {"text": "sensitive"})))

            tasks.start_soon(call)
            approval = await pending_id(home)
            shown = json.loads(await cli(home, "show", approval, "--json"))
            assert (shown["server"], shown["tool"], shown["risk"]) == ("notes", "echo", "read")
            assert "sensitive" in shown["arguments"]
            assert results == []
            await cli(home, "approve", approval, "--reason", "looks fine")
    assert results == ["sensitive"]
    decided = await anyio.run_process(
        [*BASTION, "audit", "search", "--kind", "approval.decided", "--json"], env=child_env(home)
    )
    [entry] = [json.loads(line) for line in decided.stdout.splitlines()]
    assert entry["status"] == "approved"
    assert (entry["by"], entry["channel"]) == (who(), "cli")  # the person plainly; the channel on its own
    assert entry["reason"] == "looks fine"


async def denied_entries(home: Path) -> list[dict[str, Any]]:
    """The `call.denied` entries: a refusal by a person, or by nobody in time, is one like any other."""
    found = await anyio.run_process(
        [*BASTION, "audit", "search", "--kind", "call.denied", "--json"], env=child_env(home)
    )
    return [json.loads(line) for line in found.stdout.splitlines()]


async def test_a_denial_reaches_the_client_as_an_error_naming_who(home: Path, tmp_path: Path) -> None:
    errors: list[MCPError] = []
    async with through_stdio(home, ["run", "--config", str(config(tmp_path))]) as client:
        async with anyio.create_task_group() as tasks:

            async def call() -> None:
                try:
                    await client.call_tool("echo", {"text": "x"})
                except MCPError as exc:
                    errors.append(exc)

            tasks.start_soon(call)
            await cli(home, "deny", await pending_id(home), "--reason", "not today")
    [error] = errors
    assert error.error.code == DENIED
    assert "not today" in error.error.message
    assert isinstance(error.error.data, dict)
    assert error.error.data["rule"] == "approval.denied"  # pyright: ignore[reportUnknownMemberType]
    assert [entry["decision"]["rule"] for entry in await denied_entries(home)] == ["approval.denied"]


async def test_nobody_deciding_in_time_is_a_denial(home: Path, tmp_path: Path) -> None:
    path = config(tmp_path, 'channels = ["cli"]\ntimeout = 1\n')
    async with through_stdio(home, ["run", "--config", str(path)]) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("echo", {"text": "x"})
    assert refused.value.error.code == DENIED
    assert isinstance(refused.value.error.data, dict)
    assert refused.value.error.data["rule"] == "approval.timeout"  # pyright: ignore[reportUnknownMemberType]
    assert [entry["decision"]["rule"] for entry in await denied_entries(home)] == ["approval.timeout"]


async def test_a_session_scoped_approval_lets_later_calls_through(home: Path, tmp_path: Path) -> None:
    async with through_stdio(home, ["run", "--config", str(config(tmp_path))]) as client:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.call_tool, "echo", {"text": "first"})
            await cli(home, "approve", await pending_id(home), "--session")
        with anyio.fail_after(10):
            assert text(await client.call_tool("echo", {"text": "second"})) == "second"


async def test_two_channels_racing_make_one_decision(home: Path, tmp_path: Path) -> None:
    codes: list[int] = []
    async with through_stdio(home, ["run", "--config", str(config(tmp_path))]) as client:
        outcome: list[object] = []
        async with anyio.create_task_group() as tasks:

            async def call() -> None:
                try:
                    outcome.append(text(await client.call_tool("echo", {"text": "race"})))
                except MCPError as exc:
                    outcome.append(exc.error.code)

            tasks.start_soon(call)
            approval = await pending_id(home)
            runs = [
                [*BASTION, "approvals", "approve", approval],
                [*BASTION, "approvals", "deny", approval],
            ]

            async def run(argv: list[str]) -> None:
                codes.append((await anyio.run_process(argv, env=child_env(home), check=False)).returncode)

            async with anyio.create_task_group() as racers:
                for argv in runs:
                    racers.start_soon(run, argv)
    assert sorted(codes) == [0, 2]  # one wins; the other is told it was decided already
    assert outcome in (["race"], [DENIED])


@pytest.fixture
def receiver() -> Iterator[JsonPosts]:
    with json_receiver() as posts:
        yield posts


async def test_the_webhook_links_approve_once_and_are_signed(home: Path, tmp_path: Path, receiver: JsonPosts) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    path = config(
        tmp_path, f'channels = ["webhook"]\ntimeout = 30\nwebhook_url = "{receiver.url}"\npublic_url = "{public}"\n'
    )
    dashboard = await anyio.open_process([*BASTION, "dashboard", "--listen", f"127.0.0.1:{port}"], env=child_env(home))
    try:
        await wait_for_port(port)
        async with through_stdio(home, ["run", "--config", str(path)]) as client:
            results: list[str] = []
            async with anyio.create_task_group() as tasks:

                async def call() -> None:
                    results.append(text(await client.call_tool("echo", {"text": "via slack"})))

                tasks.start_soon(call)
                await wait_until(lambda: receiver.received, timeout=20, what="the approval request at the webhook")
                payload = receiver.bodies[0]
                assert "notes.echo" in payload["text"]
                buttons = payload["blocks"][2]["elements"]
                approve_url = buttons[0]["url"]
                async with httpx2.AsyncClient() as http:
                    tampered = re.sub(r"sig=[0-9a-f]{8}", "sig=00000000", approve_url)
                    assert (await http.get(tampered)).status_code == 403
                    page = await http.get(approve_url)
                    assert page.status_code == 200
                    assert "Approve notes.echo?" in page.text
                    form = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(approve_url).query))
                    assert (await http.post(f"{public}/approvals/link", data=form)).status_code == 200
                    assert (await http.post(f"{public}/approvals/link", data=form)).status_code == 409
            assert results == ["via slack"]
    finally:
        dashboard.terminate()
        await dashboard.wait()


async def test_an_unreachable_channel_means_deny(home: Path, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    path = config(tmp_path, f'channels = ["webhook"]\ntimeout = 30\nwebhook_url = "{dead}"\npublic_url = "{dead}"\n')
    async with through_stdio(home, ["run", "--config", str(path)]) as client:
        with anyio.fail_after(20), pytest.raises(MCPError) as refused:
            await client.call_tool("echo", {"text": "x"})
    assert isinstance(refused.value.error.data, dict)
    assert refused.value.error.data["rule"] == "approval.unreachable"  # pyright: ignore[reportUnknownMemberType]


async def _accept(_ctx: object, params: object) -> mt.ElicitResult:
    return mt.ElicitResult(action="accept", content={"approve": True})


async def test_the_clients_own_user_can_approve_by_elicitation(home: Path, tmp_path: Path) -> None:
    path = config(tmp_path, 'channels = ["elicitation"]\ntimeout = 30\n')
    async with through_stdio(home, ["run", "--config", str(path)], elicitation_callback=_accept) as client:
        with anyio.fail_after(20):
            assert text(await client.call_tool("echo", {"text": "asked the user"})) == "asked the user"
    store = open_approvals(home, None)
    [decided] = store.list()
    store.close()
    assert decided.verdict is not None
    assert decided.verdict.channel == "elicitation"
    assert decided.verdict.by.startswith("the client's user")

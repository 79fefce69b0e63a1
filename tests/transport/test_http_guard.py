"""The POST gate: bodies are bounded in size and time, parsed once, checked against the routing headers,
and a new session waits for room; what passes reaches the app with its frame in the scope."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from bastion.codes import HEADER_MISMATCH, INVALID_REQUEST, PARSE_ERROR
from bastion.transport.http_guard import FRAME_SCOPE_KEY, RequestGuard, header_mismatch

pytestmark = pytest.mark.anyio

CALL: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}


class App:
    """The app behind the guard: remembers the scope and the body it was handed."""

    def __init__(self) -> None:
        self.scope: Scope | None = None
        self.body = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def post(headers: dict[str, str] | None = None) -> Scope:
    encoded = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return {"type": "http", "method": "POST", "path": "/mcp", "headers": encoded}


async def run(guard: RequestGuard, scope: Scope, *chunks: bytes) -> tuple[int, dict[bytes, bytes], Any]:
    """Send `chunks` as the body; the status, headers and JSON (or raw) body answered."""
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    body = sent[1]["body"]
    return sent[0]["status"], dict(sent[0]["headers"]), orjson.loads(body) if body != b"ok" else body


def room(_scope: Scope, _frame: dict[str, Any]) -> int | None:
    return None


async def test_a_good_post_reaches_the_app_with_its_frame_parsed_once_and_its_body_replayed() -> None:
    app = App()
    raw = orjson.dumps(CALL)
    status, _, body = await run(RequestGuard(app, room), post(), raw[:10], raw[10:])
    assert (status, body) == (200, b"ok")
    assert app.scope is not None
    assert app.scope[FRAME_SCOPE_KEY] == CALL
    assert app.body == raw


async def test_a_body_over_the_limit_is_413_whether_declared_or_streamed() -> None:
    guard = RequestGuard(App(), room, max_body=16)
    declared, _, _ = await run(guard, post({"content-length": "17"}), b"")
    streamed, _, answer = await run(guard, post(), b"x" * 10, b"y" * 10)
    assert (declared, streamed) == (413, 413)
    assert answer["error"]["code"] == INVALID_REQUEST


async def test_malformed_json_is_a_parse_error_with_status_400() -> None:
    status, _, answer = await run(RequestGuard(App(), room), post(), b"{not json")
    assert (status, answer["error"]["code"]) == (400, PARSE_ERROR)


async def test_a_body_that_stalls_is_answered_408_and_the_connection_closed() -> None:
    never = anyio.Event()
    sent: list[Message] = []

    async def receive() -> Message:
        await never.wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await RequestGuard(App(), room, read_timeout=0.01)(post(), receive, send)
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]


async def test_a_routing_header_that_disagrees_with_the_body_is_refused() -> None:
    scope = post({"Mcp-Method": "tools/call", "Mcp-Name": "other"})
    status, _, answer = await run(RequestGuard(App(), room), scope, orjson.dumps(CALL))
    assert (status, answer["id"], answer["error"]["code"]) == (400, 1, HEADER_MISMATCH)
    assert header_mismatch(post({"Mcp-Method": "tools/call", "Mcp-Name": "echo"}), CALL) is None
    assert header_mismatch(post({"Mcp-Method": "tools/list"}), CALL) is not None


@pytest.mark.parametrize("second", [b"mcp-method", b"Mcp-Method"])
def test_a_routing_header_sent_twice_is_a_mismatch_even_when_both_copies_agree(second: bytes) -> None:
    scope = post({"Mcp-Method": "tools/call"})
    scope["headers"].append((second, b"tools/call"))
    assert header_mismatch(scope, CALL) == "mcp-method header appears more than once"


async def test_a_body_in_several_parts_is_joined_and_the_limit_holds_across_them() -> None:
    app = App()
    body = orjson.dumps(CALL)
    status, _, _ = await run(RequestGuard(app, room), post(), body[:5], body[5:9], body[9:])
    assert (status, app.body) == (200, body)
    status, _, answer = await run(RequestGuard(App(), room, max_body=8), post(), b"{" * 5, b"{" * 5, b"}")
    assert (status, answer["error"]["code"]) == (413, INVALID_REQUEST)


async def test_a_full_gateway_answers_503_with_retry_after_instead_of_queueing() -> None:
    app = App()
    status, headers, _ = await run(RequestGuard(app, lambda _s, _f: 7), post(), orjson.dumps(CALL))
    assert (status, headers[b"retry-after"]) == (503, b"7")
    assert app.scope is None


async def test_requests_other_than_post_pass_untouched() -> None:
    app = App()
    scope: Scope = {"type": "http", "method": "GET", "path": "/mcp", "headers": []}
    status, _, _ = await run(RequestGuard(app, room), scope, b"")
    assert status == 200
    assert FRAME_SCOPE_KEY not in scope


async def stalled(guard: RequestGuard) -> list[Message]:
    """What `guard` answers a POST whose body never arrives."""
    sent: list[Message] = []

    async def receive() -> Message:
        await anyio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):  # a deadline that never fires fails the test rather than hanging it
        await guard(post(), receive, send)
    return sent


async def test_each_stalled_body_gets_its_own_deadline_while_others_arrive_in_time() -> None:
    guard = RequestGuard(App(), room, read_timeout=0.05)
    answers: list[int] = []

    async def stall_after(delay: float) -> None:
        await anyio.sleep(delay)
        answers.append((await stalled(guard))[0]["status"])

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(stall_after, 0.0)
        tasks.start_soon(stall_after, 0.03)  # due after the first deadline has passed
        for _ in range(3):
            status, _, _ = await run(guard, post(), orjson.dumps(CALL))
            assert status == 200
    assert answers == [408, 408]
    assert (await stalled(guard))[0]["status"] == 408  # and again once nothing was being read


async def test_a_read_answered_408_leaves_its_task_uncancelled() -> None:
    assert (await stalled(RequestGuard(App(), room, read_timeout=0.01)))[0]["status"] == 408
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await anyio.lowlevel.checkpoint()  # and no cancellation is pending


async def test_a_read_cancelled_from_outside_is_cancelled_not_answered_408() -> None:
    guard = RequestGuard(App(), room, read_timeout=5)
    sent: list[Message] = []
    with anyio.move_on_after(0.01) as scope:
        sent = await stalled(guard)
    assert scope.cancelled_caught
    assert sent == []


def test_a_guard_keeps_its_deadline_in_a_later_event_loop() -> None:
    guard = RequestGuard(App(), room, read_timeout=0.2)
    assert anyio.run(run, guard, post(), orjson.dumps(CALL))[0] == 200  # its loop ends before the deadline
    assert anyio.run(stalled, guard)[0]["status"] == 408

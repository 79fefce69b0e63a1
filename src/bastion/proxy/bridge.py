"""Server requests for 2026-07-28 clients: a handshake-era server's sampling, elicitation or
roots request, asked mid-call, becomes an input-required result.

The 2026-07-28 protocol has no server-to-client requests: a server that needs input returns
`resultType: "input_required"` with the questions, and the client retries the call with the
answers. A handshake-era server instead sends a request and waits. Bastion keeps the server's
call running in the background, answers the client's call with the server's question as an
input-required result, and when the client retries (carrying Bastion's opaque
`requestState`), hands the answer to the waiting server and goes on waiting for the call.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bastion.codes import INVALID_PARAMS, SERVER_UNAVAILABLE
from bastion.types import Reply, RpcError

__all__ = ["STATE_PREFIX", "ParkedCalls"]

STATE_PREFIX = "bastion-input:"
PARK_TIMEOUT = 600.0
"""How long a server's question waits for the client to retry with an answer."""


@dataclass
class _Question:
    key: str
    method: str
    params: dict[str, Any] | None
    answered: anyio.Event = field(default_factory=anyio.Event)
    answer: Reply | None = None


@dataclass
class _Parked:
    server: str
    events: MemoryObjectReceiveStream[_Question | Reply]
    feed: MemoryObjectSendStream[_Question | Reply]
    asked: dict[str, _Question] = field(default_factory=dict[str, _Question])


class ParkedCalls:
    def __init__(self) -> None:
        self._by_state: dict[str, _Parked] = {}
        self._current: dict[str, _Parked] = {}
        self._keys = itertools.count(1)

    def is_retry(self, params: dict[str, Any] | None) -> bool:
        state = params.get("requestState") if params else None
        return isinstance(state, str) and state.startswith(STATE_PREFIX)

    async def call(
        self,
        tasks: anyio.abc.TaskGroup,
        server: str,
        params: dict[str, Any] | None,
        send: Callable[[dict[str, Any] | None], Awaitable[Reply]],
    ) -> Reply:
        """Run (or resume) a call; returns its reply, or an input-required result with the server's question."""
        if self.is_retry(params):
            assert params is not None
            parked = self._by_state.pop(params["requestState"], None)
            if parked is None:
                return RpcError(INVALID_PARAMS, "Invalid params: requestState is unknown or expired")
            responses = params.get("inputResponses") or {}
            for key, question in list(parked.asked.items()):
                if key in responses:
                    question.answer = responses[key]
                    question.answered.set()
                    del parked.asked[key]
        else:
            feed, events = anyio.create_memory_object_stream[_Question | Reply](16)
            parked = _Parked(server, events, feed)

            async def run() -> None:
                async with feed:
                    reply = await send(params)
                    await feed.send(reply)

            tasks.start_soon(run)
        self._current[server] = parked
        try:
            event = await parked.events.receive()
        except anyio.EndOfStream:
            return RpcError(SERVER_UNAVAILABLE, f"server {server!r} ended the call without an answer")
        if isinstance(event, _Question):
            state = STATE_PREFIX + secrets.token_urlsafe(16)
            self._by_state[state] = parked
            parked.asked[event.key] = event
            request = {"method": event.method, "params": event.params or {}}
            return {"resultType": "input_required", "inputRequests": {event.key: request}, "requestState": state}
        if self._current.get(server) is parked:
            del self._current[server]
        parked.events.close()
        return event

    async def ask(self, server: str, method: str, params: dict[str, Any] | None) -> Reply | None:
        """A server's request during a parked call: wait for the client's answer. None: no call to ask in."""
        parked = self._current.get(server)
        if parked is None:
            return None
        question = _Question(f"q{next(self._keys)}", method, params)
        await parked.feed.send(question)
        with anyio.move_on_after(PARK_TIMEOUT):
            await question.answered.wait()
        return (
            question.answer
            if question.answer is not None
            else RpcError(SERVER_UNAVAILABLE, f"the client did not answer {method} in time")
        )

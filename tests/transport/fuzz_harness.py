"""A StdioFront over real pipes, with the test playing both its client and its one stdio server.

The gateway's channel to the client is a `FramedStream` over two `os.pipe()`s, and so is its link
to the server, so fuzz bytes meet the byte-level framing (line splitting, the size limit) before
they meet `decode`. Every line the gateway writes, to either side, is checked (`well_formed`).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import anyio
import mcp_types as mt
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bastion.config.model import DEFAULT_MAX_FRAME_BYTES, GatewayConfig, ServerConfig
from bastion.proxy.pipeline import ClientInfo
from bastion.proxy.session import ClientPeer, Session
from bastion.proxy.stdio_front import StdioFront
from bastion.transport.jsonrpc import MEMBERS, Frame
from bastion.transport.lines import FdStream, FramedStream
from bastion.transport.link import Connector, ServerLink

LIMIT = DEFAULT_MAX_FRAME_BYTES
"""The gateway's frame size limit (4 MiB, the default), on both sides."""
ANSWER_WITHIN = 5.0
"""A valid call after fuzz bytes must be answered this fast, or the gateway hangs."""
REQUEST_TIMEOUT = 0.3
"""The server's request timeout where the fuzz bytes stand in for the answer: a call whose real answer
never comes ends with an error this late. Elsewhere the server answers every call, and its timeout is
ANSWER_WITHIN, so that a busy machine's pause is not taken for a hang."""
TIMEOUT_SLACK = 2.0
"""What the upstream's timeout check (every 0.25 s) and a loaded CI machine may add to REQUEST_TIMEOUT."""
FINISH_WITHIN = 10.0
PENDING_ID = b"@ID@"
"""In the bytes the server writes: replaced by the id of the tools/call the gateway is waiting on."""
INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}


def envelope() -> dict[str, Any]:
    """The per-request envelope (`_meta`) of a 2026-07-28 client."""
    return {
        mt.PROTOCOL_VERSION_META_KEY: "2026-07-28",
        mt.CLIENT_INFO_META_KEY: {"name": "fuzz", "version": "1"},
        mt.CLIENT_CAPABILITIES_META_KEY: {},
    }


def line(frame: Frame) -> bytes:
    return json.dumps(frame).encode() + b"\n"


def dump(value: object) -> bytes:
    """JSON as a careless peer writes it: NaN and Infinity allowed, lone surrogates as raw (invalid) UTF-8."""
    return json.dumps(value, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


# -- what is checked on every line the gateway writes ---------------------------------------------------------


class Malformed(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    frame = dict(pairs)
    if len(frame) != len(pairs):
        raise Malformed(f"duplicate members in {[name for name, _ in pairs]}")
    return frame


def _no_constants(token: str) -> Any:
    raise Malformed(f"{token} is not JSON")


def well_formed(raw: bytes) -> Frame:
    """One line as a peer must see it from the gateway: UTF-8, one JSON object without duplicate members,
    `"jsonrpc": "2.0"`, only JSON-RPC members, the shape of a request, notification or response.
    Raises Malformed (a ValueError) saying what is wrong."""
    value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    if not isinstance(value, dict):
        raise Malformed("not a JSON object")
    frame: Frame = value  # pyright: ignore[reportUnknownVariableType]
    if frame.get("jsonrpc") != "2.0":
        raise Malformed('"jsonrpc" is not "2.0"')
    if not MEMBERS.issuperset(frame):
        raise Malformed(f"unknown members {sorted(set(frame) - MEMBERS)}")
    request_id = frame.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, int | str)):
        raise Malformed(f"id {request_id!r} is not a string or an integer")
    if "method" in frame:
        if not isinstance(frame["method"], str) or "result" in frame or "error" in frame:
            raise Malformed("a request with a bad method, or with a result or error")
        if "params" in frame and not isinstance(frame["params"], dict):
            raise Malformed("params is not an object")
    elif "id" not in frame or ("result" in frame) == ("error" in frame):
        raise Malformed("neither a request nor a response")
    elif "result" in frame and not isinstance(frame["result"], dict):
        raise Malformed("a result that is not an object")
    elif "error" in frame:
        error: Any = frame["error"]
        if not isinstance(error, dict) or not isinstance(error.get("code"), int):  # pyright: ignore[reportUnknownMemberType]
            raise Malformed("an error without an integer code")
        if not isinstance(error.get("message"), str):  # pyright: ignore[reportUnknownMemberType]
            raise Malformed("an error without a message")
    return frame


# -- the test's ends of the pipes ------------------------------------------------------------------------------


class Wire:
    """The test's end of a pipe pair to the gateway: raw bytes out, checked frames in."""

    def __init__(self, receive: FdStream, send: FdStream, violations: list[str]) -> None:
        self._receive = receive
        self._send = send
        self._lock = anyio.Lock()
        self._inbox_in: MemoryObjectSendStream[Frame]
        self.inbox: MemoryObjectReceiveStream[Frame]
        self._inbox_in, self.inbox = anyio.create_memory_object_stream[Frame](math.inf)
        self.violations = violations

    async def pump(self) -> None:
        """Read until the gateway closes its side, checking every line; the inbox ends with it."""
        buffer = bytearray()
        try:
            while True:
                try:
                    chunk = await self._receive.receive(1 << 20)
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    break
                buffer += chunk
                start = 0
                while (newline := buffer.find(b"\n", start)) >= 0:
                    self._take(bytes(buffer[start:newline]))
                    start = newline + 1
                del buffer[:start]
            if buffer:
                self.violations.append(f"unterminated last line: {bytes(buffer[:120])!r}")
        finally:
            self._inbox_in.close()

    def _take(self, raw: bytes) -> None:
        try:
            frame = well_formed(raw)
        except ValueError as exc:
            self.violations.append(f"{exc}: {raw[:200]!r}")
            return
        self._inbox_in.send_nowait(frame)

    async def write(self, data: bytes) -> None:
        """Write bytes whole, never interleaved with another write. A gateway that has gone is noticed by
        the checks, not here."""
        async with self._lock:
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await self._send.send(data)

    async def close_output(self) -> None:
        await self._send.aclose()

    async def aclose(self) -> None:
        await self._send.aclose()
        await self._receive.aclose()
        self._inbox_in.close()
        self.inbox.close()


def _pipe() -> tuple[FdStream, FdStream]:
    """An OS pipe as (read end, write end); each fd is closed with its stream."""
    read, write = os.pipe()
    return FdStream(read, owned=True), FdStream(write, owned=True)


class FuzzServer:
    """The stdio server the test plays: it answers initialize and tools/list properly; on tools/call it
    writes the queued fuzz bytes before (or instead of) its real answer, which echoes the call's marker."""

    def __init__(self) -> None:
        self.queued: list[tuple[bytes, bool]] = []
        self.violations: list[str] = []

    async def serve(self, wire: Wire) -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wire.pump)
            async for frame in wire.inbox:
                method = frame.get("method")
                if "id" not in frame or not isinstance(method, str):
                    continue  # a notification, or the gateway's answer to a request in the fuzz bytes
                fuzz = self.queued.pop(0) if method == "tools/call" and self.queued else None
                tasks.start_soon(self._answer, wire, frame, fuzz)

    async def _answer(self, wire: Wire, frame: Frame, fuzz: tuple[bytes, bool] | None) -> None:
        reply: Frame | None = {"jsonrpc": "2.0", "id": frame["id"], **_outcome(frame["method"], frame.get("params"))}
        data = b""
        if fuzz is not None:
            payload, then_answer = fuzz
            data = payload.replace(PENDING_ID, dump(frame["id"])) + b"\n"
            reply = reply if then_answer else None
        if reply is not None:
            data += line(reply)
        await wire.write(data)


def _outcome(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
    if method == "initialize":
        return {
            "result": {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {"listChanged": True}},
                "serverInfo": {"name": "fuzz", "version": "1.0"},
            }
        }
    if method == "tools/list":
        return {"result": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}}
    if method == "tools/call":
        arguments = (params or {}).get("arguments")
        marker = arguments.get("marker") if isinstance(arguments, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        return {"result": {"content": [{"type": "text", "text": marker[:100] if isinstance(marker, str) else ""}]}}
    return {"error": {"code": -32601, "message": f"Method not found: {method[:40]}"}}


class PipeLink(FramedStream):
    """The gateway's link to the test's server: a FramedStream over two pipes."""

    def exit_description(self) -> str:
        return "closed its pipes"

    async def ended(self, within: float) -> str | None:
        return None


def pipe_connector(server: FuzzServer) -> Connector:
    @asynccontextmanager
    async def connect(_name: str, _config: ServerConfig) -> AsyncIterator[ServerLink]:
        to_server_read, to_server_write = _pipe()
        from_server_read, from_server_write = _pipe()
        link = PipeLink(from_server_read, to_server_write, max_bytes=LIMIT)
        wire = Wire(to_server_read, from_server_write, server.violations)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(server.serve, wire)
                try:
                    yield link
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            await link.aclose()
            await wire.aclose()

    return connect


class ErrorLog(logging.Handler):
    """Errors Bastion logs: a request failing inside the gateway is a bug, even when its error boundary holds."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@contextmanager
def bastion_errors() -> Iterator[ErrorLog]:
    """Collect Bastion's errors; its warnings (one per bad frame) are left out, to keep the fuzzing fast."""
    logger = logging.getLogger("bastion")
    errors, level = ErrorLog(), logger.level
    logger.addHandler(errors)
    logger.setLevel(logging.ERROR)
    try:
        yield errors
    finally:
        logger.removeHandler(errors)
        logger.setLevel(level)


# -- the gateway -----------------------------------------------------------------------------------------------


class Gateway:
    """A StdioFront over real pipes; the test is its client (`client`) and its one stdio server (`server`)."""

    def __init__(
        self, channel: FramedStream, client: Wire, server: FuzzServer, errors: ErrorLog, request_timeout: float
    ) -> None:
        self.channel = channel
        self.request_timeout = request_timeout
        self.client = client
        self.server = server
        self.errors = errors
        self.crash: Exception | None = None
        self.ended = anyio.Event()
        self.modern = False
        """Whether the test opened a 2026-07-28 session (so its requests carry the envelope)."""
        self._ids = itertools.count(1)
        self.front = StdioFront(channel, self._session, instance="fuzz")

    def _session(self, client: ClientInfo, peer: ClientPeer, capabilities: dict[str, Any]) -> Session:
        config = ServerConfig(command="unused", request_timeout=self.request_timeout, startup_timeout=ANSWER_WITHIN)
        connector = pipe_connector(self.server)
        return Session({"fz": config}, GatewayConfig(), client, peer, connector, client_capabilities=capabilities)

    async def serve(self) -> None:
        try:
            await self.front.serve()
        except Exception as exc:  # the crash the fuzzing looks for: kept for the test to report
            self.crash = exc
        finally:
            self.ended.set()
            await self.channel.aclose()  # so the client's reader sees the end at once

    def check(self) -> None:
        """Every invariant that can be judged between two examples."""
        if self.crash is not None:
            raise AssertionError("the gateway crashed") from self.crash
        assert not self.client.violations, f"the client received malformed lines: {self.client.violations[:3]}"
        assert not self.server.violations, f"a frame reached the server unparsed: {self.server.violations[:3]}"
        assert not self.errors.records, f"the gateway logged errors: {self.errors.records[:2]}"

    def alive(self) -> None:
        self.check()
        assert not self.ended.is_set(), "the gateway stopped serving"

    async def call(self, method: str, params: dict[str, Any] | None, *, within: float = ANSWER_WITHIN) -> Frame:
        """Send one valid request and wait for its answer."""
        request_id = f"probe-{next(self._ids)}"
        frame: Frame = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        await self.client.write(line(frame))
        return await self.answer(request_id, within=within, method=method)

    async def answer(self, request_id: int | str, *, within: float = ANSWER_WITHIN, method: str = "a request") -> Frame:
        """The gateway's answer to `request_id`, refusing any request it relays meanwhile."""
        with anyio.move_on_after(within):
            async for incoming in self.client.inbox:
                if incoming.get("id") == request_id and "method" not in incoming:
                    return incoming
                if "method" in incoming and "id" in incoming:  # sampling, roots…: asked by the fuzz bytes
                    refusal = {"code": -32601, "message": "not in this test"}
                    await self.client.write(line({"jsonrpc": "2.0", "id": incoming["id"], "error": refusal}))
            self.check()
            raise AssertionError(f"the gateway closed its output before answering {method}")
        self.check()
        raise AssertionError(f"no answer to {method} within {within:g}s: the gateway hangs")

    async def echo(self, marker: str, *, within: float = ANSWER_WITHIN) -> Frame:
        params: dict[str, Any] = {"name": "echo", "arguments": {"marker": marker}}
        if self.modern:
            params["_meta"] = envelope()
        return await self.call("tools/call", params, within=within)

    def real_answer(self, marker: str) -> dict[str, Any]:
        result: dict[str, Any] = {"content": [{"type": "text", "text": marker}]}
        return {**result, "resultType": "complete"} if self.modern else result

    async def echoes(self, marker: str) -> None:
        """The next valid call works: it gets the real answer, from the server, unchanged."""
        answer = await self.echo(marker)
        assert answer.get("result") == self.real_answer(marker), answer

    async def open_session(self, *, modern: bool = False) -> None:
        """Open the session as a client of the handshake era (initialize) or of 2026-07-28 (server/discover)."""
        if modern:
            answer = await self.call("server/discover", {"_meta": envelope()})
            assert "result" in answer, answer
            self.modern = True
            return
        answer = await self.call("initialize", INITIALIZE)
        assert "result" in answer, answer
        await self.client.write(line({"jsonrpc": "2.0", "method": "notifications/initialized"}))

    async def finish(self) -> None:
        """Close the client's side, as a client does on exit: the gateway must then end by itself, cleanly."""
        await self.client.close_output()
        with anyio.fail_after(FINISH_WITHIN):
            await self.ended.wait()
        self.check()


@asynccontextmanager
async def open_gateway(request_timeout: float = ANSWER_WITHIN) -> AsyncIterator[Gateway]:
    to_gateway_read, to_gateway_write = _pipe()
    to_client_read, to_client_write = _pipe()
    channel = FramedStream(to_gateway_read, to_client_write, max_bytes=LIMIT)
    client = Wire(to_client_read, to_gateway_write, [])
    try:
        with bastion_errors() as errors:
            gateway = Gateway(channel, client, FuzzServer(), errors, request_timeout)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(gateway.serve)
                tasks.start_soon(client.pump)
                try:
                    yield gateway
                finally:
                    tasks.cancel_scope.cancel()
    finally:
        await channel.aclose()
        await client.aclose()

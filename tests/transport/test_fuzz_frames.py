"""Frame fuzzing in both directions, over real pipes: whatever a client writes to the stdio front, and
whatever a stdio server writes back, the gateway keeps running, answers the next valid call within
seconds, and passes on only frames it parsed.

Hypothesis draws the frames (`fuzz_frames.py`; derandomized, no database, so CI sees the same examples
every run); a sweep adds every field of every frame, one at a time, left out or of each wrong type.
The harness (`fuzz_harness.py`) runs a StdioFront over `os.pipe()` pairs on an anyio blocking portal;
the test plays its client and its one stdio server and checks every line it gets from the gateway.

`bench/fuzz_bench.py` runs the same fuzzers with more examples and prints frames per second.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from tests.transport.fuzz_frames import CLIENT_TEMPLATES, OPENING, SERVER_FRAMES, client_frames, payloads, swept
from tests.transport.fuzz_harness import (
    ANSWER_WITHIN,
    INITIALIZE,
    PENDING_ID,
    REQUEST_TIMEOUT,
    TIMEOUT_SLACK,
    line,
    open_gateway,
)

from bastion.codes import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST
from bastion.transport.jsonrpc import Frame

CI_EXAMPLES = {"client": 500, "client_modern": 250, "client_first": 400, "server": 600, "server_instead": 12}
"""Examples per fuzzer in the normal test run: with the sweeps, about a minute on a 2-core machine."""
SWEEP_CHUNK = 32
"""Swept frames are sent this many at a time, each batch followed by a valid call."""


@dataclass
class Tally:
    """What a fuzzer sent: examples, fuzz frames (non-empty lines), bytes, and the wall time it took."""

    examples: int = 0
    frames: int = 0
    size: int = 0
    seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def add(self, payload: bytes) -> None:
        self.examples += 1
        self.frames += sum(1 for part in payload.split(b"\n") if part.strip())
        self.size += len(payload)

    def sent(self, frames: list[bytes]) -> Tally:
        """For a sweep: the frames it sent, and the time since the tally began."""
        self.frames, self.size = len(frames), sum(len(frame) for frame in frames)
        return self.stop()

    def stop(self) -> Tally:
        self.seconds = time.perf_counter() - self.started
        return self


def fuzz_settings(examples: int, *, derandomize: bool = True) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        print_blob=False,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


def run_examples(
    examples: int, strategy: st.SearchStrategy[Any], body: Callable[[Any], None], random_seed: int | None = None
) -> None:
    """Run `body` on `examples` draws: the same draws every run, or others for each `random_seed` (bench only)."""
    test = given(strategy)(fuzz_settings(examples, derandomize=random_seed is None)(body))
    (test if random_seed is None else seed(random_seed)(test))()


# -- the fuzzers (also run by bench/fuzz_bench.py, with more examples) -----------------------------------------


def fuzz_client(examples: int, *, modern: bool = False, random_seed: int | None = None) -> Tally:
    """Client to gateway, in an open session of either era: fuzz bytes, then a call that gets its real answer."""
    tally = Tally()
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(open_gateway()) as gateway:
        portal.call(functools.partial(gateway.open_session, modern=modern))

        def example(payload: bytes) -> None:
            tally.add(payload)
            portal.call(gateway.client.write, payload + b"\n")
            portal.call(gateway.echoes, f"after {tally.examples}")
            gateway.alive()

        run_examples(examples, payloads(pending=False), example, random_seed)
        portal.call(gateway.finish)
    return tally.stop()


async def _first_bytes(payload: bytes) -> None:
    async with open_gateway() as gateway:
        await gateway.client.write(payload + b"\n")
        ping = await gateway.call("ping", None)
        assert "result" in ping or "error" in ping
        initialized = await gateway.call("initialize", INITIALIZE)
        if "result" in initialized:
            await gateway.echoes("after")
        else:  # the fuzz bytes opened the session; the era they chose decides the answer
            await gateway.echo("after")
        gateway.alive()
        await gateway.finish()


def fuzz_client_first(examples: int, *, random_seed: int | None = None) -> Tally:
    """Client to gateway, as the first bytes of a session (a fresh gateway per example): whether or not they
    open the session, ping, initialize and a call are answered after them."""
    tally = Tally()
    with start_blocking_portal() as portal:

        def example(payload: bytes) -> None:
            tally.add(payload)
            portal.call(_first_bytes, payload)

        run_examples(examples, payloads(pending=False, opening=True), example, random_seed)
    return tally.stop()


def _ended_clearly(answer: Frame, real: dict[str, Any], payload: bytes) -> None:
    """The real answer or a JSON-RPC error (well_formed has checked its code and message). A well-formed
    response to the pending id in the fuzz bytes is, to the gateway, the server's answer."""
    assert "error" in answer or answer["result"] == real or PENDING_ID in payload, answer


def fuzz_server(examples: int, *, then_answer: bool, random_seed: int | None = None) -> Tally:
    """Server to gateway: on a tools/call the server writes fuzz bytes before (or instead of) its real answer.
    The call ends with the real answer or a clear error, within the request timeout if no answer comes;
    the next call gets its real answer."""
    tally = Tally()
    within = ANSWER_WITHIN if then_answer else REQUEST_TIMEOUT + TIMEOUT_SLACK
    timeout = ANSWER_WITHIN if then_answer else REQUEST_TIMEOUT
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(open_gateway(timeout)) as gateway:
        portal.call(gateway.open_session)

        def example(payload: bytes) -> None:
            tally.add(payload)
            gateway.server.queued.append((payload, then_answer))
            marker = f"fuzzed {tally.examples}"
            answer = portal.call(functools.partial(gateway.echo, marker, within=within))
            assert not gateway.server.queued, "the fuzzed call never reached the server"
            if then_answer:
                _ended_clearly(answer, gateway.real_answer(marker), payload)
            else:
                assert "error" in answer or PENDING_ID in payload, answer
            portal.call(gateway.echoes, f"after {tally.examples}")
            gateway.alive()

        run_examples(examples, payloads(pending=True), example, random_seed)
        portal.call(gateway.finish)
    return tally.stop()


# -- the sweeps: every field of every frame, of each wrong type ------------------------------------------------


def _chunks(frames: list[bytes]) -> list[list[bytes]]:
    return [frames[start : start + SWEEP_CHUNK] for start in range(0, len(frames), SWEEP_CHUNK)]


async def sweep_client(*, modern: bool) -> Tally:
    """Every client frame bent one field at a time, sent into an open session."""
    tally = Tally()
    frames = list(swept(client_frames(list(CLIENT_TEMPLATES))))
    async with open_gateway() as gateway:
        await gateway.open_session(modern=modern)
        for chunk in _chunks(frames):
            await gateway.client.write(b"".join(frame + b"\n" for frame in chunk))
            try:
                await gateway.echoes("after the batch")
                gateway.alive()
            except AssertionError as exc:
                raise AssertionError(f"after one of {chunk}") from exc
        await gateway.finish()
    return tally.sent(frames)


async def sweep_client_first() -> Tally:
    """Every frame that may open a session, bent one field at a time, as the first frame a gateway gets
    (a fresh gateway once one of them has opened the session)."""
    tally = Tally()
    frames = list(swept(client_frames(OPENING)))
    left = list(frames)
    while left:
        async with open_gateway() as gateway:
            while left:
                frame = left.pop(0)
                await gateway.client.write(frame + b"\n")
                try:
                    ping = await gateway.call("ping", None)
                    assert "result" in ping or "error" in ping
                    # An initialize with bad params: refused as invalid before a session, as a repeat after one.
                    probe = await gateway.call("initialize", {"protocolVersion": 1})
                    gateway.alive()
                except AssertionError as exc:
                    raise AssertionError(f"after {frame!r}") from exc
                if probe["error"]["code"] == INVALID_REQUEST:
                    break  # the frame opened a session: the next one goes to a fresh gateway
                assert probe["error"]["code"] == INVALID_PARAMS, probe
            await gateway.finish()
    return tally.sent(frames)


async def sweep_server() -> Tally:
    """Every server frame bent one field at a time, written before the server's real answers."""
    tally = Tally()
    frames = list(swept(SERVER_FRAMES))
    async with open_gateway() as gateway:
        await gateway.open_session()
        for number, chunk in enumerate(_chunks(frames)):
            payload = b"\n".join(chunk)
            gateway.server.queued.append((payload, True))
            marker = f"swept {number}"
            try:
                _ended_clearly(await gateway.echo(marker), gateway.real_answer(marker), payload)
                await gateway.echoes(f"after {number}")
                gateway.alive()
            except AssertionError as exc:
                raise AssertionError(f"after one of {chunk}") from exc
        await gateway.finish()
    return tally.sent(frames)


# -- the tests -------------------------------------------------------------------------------------------------


def test_whatever_a_client_writes_the_gateway_goes_on_and_forwards_only_parsed_frames() -> None:
    assert fuzz_client(CI_EXAMPLES["client"]).examples >= CI_EXAMPLES["client"] // 2


def test_whatever_a_2026_client_writes_the_gateway_goes_on_and_forwards_only_parsed_frames() -> None:
    assert fuzz_client(CI_EXAMPLES["client_modern"], modern=True).examples >= CI_EXAMPLES["client_modern"] // 2


def test_whatever_a_client_writes_first_the_gateway_still_opens_the_session() -> None:
    assert fuzz_client_first(CI_EXAMPLES["client_first"]).examples >= CI_EXAMPLES["client_first"] // 2


def test_whatever_a_server_writes_before_its_answer_the_call_ends_clearly_and_the_next_works() -> None:
    assert fuzz_server(CI_EXAMPLES["server"], then_answer=True).examples >= CI_EXAMPLES["server"] // 2


def test_whatever_a_server_writes_instead_of_its_answer_the_call_ends_within_its_timeout() -> None:
    assert fuzz_server(CI_EXAMPLES["server_instead"], then_answer=False).examples >= CI_EXAMPLES["server_instead"] // 2


@pytest.mark.anyio
@pytest.mark.parametrize("modern", [False, True], ids=["handshake era", "2026-07-28"])
async def test_every_field_of_a_client_frame_of_the_wrong_type_is_refused_and_the_session_goes_on(
    modern: bool,
) -> None:
    assert (await sweep_client(modern=modern)).frames > 1000


@pytest.mark.anyio
async def test_every_field_of_a_first_frame_of_the_wrong_type_leaves_the_gateway_able_to_open() -> None:
    assert (await sweep_client_first()).frames > 500


@pytest.mark.anyio
async def test_every_field_of_a_server_frame_of_the_wrong_type_leaves_calls_answered() -> None:
    assert (await sweep_server()).frames > 500


# -- regressions: what the fuzzing found -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_first_server_discover_whose_meta_is_not_an_object_is_refused_and_the_gateway_goes_on() -> None:
    async with open_gateway() as gateway:
        with anyio.fail_after(ANSWER_WITHIN):
            await gateway.client.write(b'{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":"x"}}\n')
            refused = await gateway.answer(1)
            assert refused["error"]["code"] == INVALID_PARAMS
            await gateway.open_session(modern=True)
            await gateway.echoes("after")
            gateway.alive()
            await gateway.finish()


@pytest.mark.anyio
async def test_a_2026_request_whose_meta_is_not_an_object_is_refused_without_an_internal_error() -> None:
    async with open_gateway() as gateway:
        with anyio.fail_after(ANSWER_WITHIN):
            await gateway.open_session(modern=True)
            call = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":[1]}}\n'
            await gateway.client.write(call)
            refused = await gateway.answer(1)
            assert refused["error"]["code"] == INVALID_PARAMS
            await gateway.echoes("after")
            gateway.alive()  # no error logged: the request was refused, not failed inside the gateway
            await gateway.finish()


@pytest.mark.anyio
async def test_a_server_answer_with_a_null_error_fails_that_call_alone() -> None:
    async with open_gateway() as gateway:
        with anyio.fail_after(ANSWER_WITHIN):
            await gateway.open_session()
            gateway.server.queued.append((b'{"jsonrpc":"2.0","id":' + PENDING_ID + b',"error":null}', False))
            failed = await gateway.echo("never answered")
            assert failed["error"]["code"] == INTERNAL_ERROR
            await gateway.echoes("after")
            gateway.alive()
            await gateway.finish()


@pytest.mark.anyio
async def test_a_client_answer_with_a_null_error_fails_that_relayed_request_alone() -> None:
    async with open_gateway() as gateway:
        with anyio.fail_after(ANSWER_WITHIN):
            await gateway.open_session()
            gateway.server.queued.append((b'{"jsonrpc":"2.0","id":"s1","method":"roots/list"}', True))
            call: Frame = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {}},
            }
            await gateway.client.write(line(call))
            relayed = answered = False
            async for incoming in gateway.client.inbox:
                if incoming.get("method") == "roots/list":
                    await gateway.client.write(line({"jsonrpc": "2.0", "id": incoming["id"], "error": None}))
                    relayed = True
                answered = answered or incoming.get("id") == 1
                if relayed and answered:
                    break
            await gateway.echoes("after")
            gateway.alive()
            await gateway.finish()

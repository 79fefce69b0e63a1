"""Frames are parsed once and their shape checked: nothing ambiguous is accepted."""

from __future__ import annotations

import orjson
import pytest

from bastion.codes import INVALID_REQUEST
from bastion.transport.jsonrpc import FrameError, decode


def frame(**members: object) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", **members})


@pytest.mark.parametrize(
    "raw",
    [
        frame(id=1, method="tools/call", params={"name": "a"}, Params={"name": "b"}),
        frame(id=1, method="tools/call", METHOD="x"),
        frame(id=1, result={}, extra=1),
        frame(id=2**53, method="ping"),
        frame(id=-(2**53), method="ping"),
        b'{"jsonrpc": "2.0", "id": 1e30, "method": "ping"}',
        b'{"jsonrpc": "2.0", "id": 1000000000000000000000000000000, "method": "ping"}',
    ],
)
def test_unknown_members_and_unsafe_ids_are_invalid_requests(raw: bytes) -> None:
    decoded = decode(raw)
    assert isinstance(decoded, FrameError)
    assert decoded.code == INVALID_REQUEST


@pytest.mark.parametrize(
    "raw",
    [
        frame(id=2**53 - 1, method="ping"),
        frame(id=-(2**53 - 1), method="ping"),
        frame(id="x", method="tools/call", params={}),
        frame(method="notifications/initialized"),
        frame(id=1, result={}),
        frame(id=1, error={"code": 1, "message": "m"}),
    ],
)
def test_well_formed_frames_pass(raw: bytes) -> None:
    assert isinstance(decode(raw), dict)

"""JSON-RPC 2.0 frames as plain dicts: decode once with orjson, classify, build errors.

The hot path touches each frame once: `decode` parses and checks its shape, and the
proxy works on the resulting dict. MCP's typed models are used only where a message is
inspected in depth or synthesized (handshake, listings, era bridging).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import orjson

from bastion.codes import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR

__all__ = [
    "Frame",
    "FrameError",
    "Kind",
    "decode",
    "encode",
    "error_frame",
    "kind_of",
    "result_frame",
]

Frame = dict[str, Any]
RequestId = int | str

MEMBERS: Final = frozenset({"jsonrpc", "id", "method", "params", "result", "error"})
"""The members a JSON-RPC 2.0 frame may have; a frame with any other (or a case variant) is refused."""
MAX_SAFE_ID: Final = 2**53 - 1
"""Integer ids beyond this lose precision in JavaScript clients and servers, so two calls could share one."""


class Kind(Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame that could not be accepted, and the JSON-RPC error it deserves (if it can be answered)."""

    code: int
    message: str
    request_id: RequestId | None = None


def decode(raw: bytes | str, *, max_depth: int = 64) -> Frame | FrameError:
    """Parse one frame; never raises. Size limits are enforced by the reader before this."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return FrameError(PARSE_ERROR, f"Parse error: {exc}")
    if isinstance(value, list):
        return FrameError(INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported by MCP")
    if not isinstance(value, dict):
        return FrameError(INVALID_REQUEST, "Invalid Request: a frame must be a JSON object")
    frame: Frame = value  # pyright: ignore[reportUnknownVariableType]
    request_id = frame.get("id")
    if request_id is not None and (isinstance(request_id, bool) or not isinstance(request_id, int | str)):
        return FrameError(INVALID_REQUEST, "Invalid Request: id must be a string or an integer")
    if isinstance(request_id, int) and not -MAX_SAFE_ID <= request_id <= MAX_SAFE_ID:
        return FrameError(INVALID_REQUEST, "Invalid Request: an integer id must lie within ±(2^53 - 1)")
    if not MEMBERS.issuperset(frame):
        # `Params` beside `params`: one reader may take one, another the other; nothing unknown is passed on.
        unknown = sorted(str(key)[:40] for key in frame if key not in MEMBERS)
        return FrameError(INVALID_REQUEST, f"Invalid Request: unknown member(s) {unknown}", request_id)
    if frame.get("jsonrpc") != "2.0":
        return FrameError(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"', request_id)
    if _too_deep(raw, frame, max_depth):
        return FrameError(INVALID_REQUEST, f"Invalid Request: nesting deeper than {max_depth} levels", request_id)
    if kind_of(frame) is None:
        return FrameError(INVALID_REQUEST, "Invalid Request: not a request, notification or response", request_id)
    params = frame.get("params")
    if params is not None and not isinstance(params, dict):
        return FrameError(INVALID_PARAMS, "Invalid params: MCP params must be an object", request_id)
    return frame


def kind_of(frame: Frame) -> Kind | None:
    method = frame.get("method")
    if isinstance(method, str):
        return Kind.REQUEST if "id" in frame else Kind.NOTIFICATION
    if "id" in frame and (("result" in frame) != ("error" in frame)):
        if "result" in frame and not isinstance(frame["result"], dict):
            return None
        return Kind.RESPONSE
    return None


def encode(frame: Frame) -> bytes:
    return orjson.dumps(frame, option=orjson.OPT_APPEND_NEWLINE)  # one buffer, not a copy with b"\n"


def result_frame(request_id: RequestId, result: dict[str, Any]) -> Frame:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_frame(request_id: RequestId | None, code: int, message: str, data: Any = None) -> Frame:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _too_deep(raw: bytes | str, frame: Frame, max_depth: int) -> bool:
    # Counting brackets is a C-speed upper bound on depth; walk only frames that could exceed it.
    opens = raw.count(b"{") + raw.count(b"[") if isinstance(raw, bytes) else raw.count("{") + raw.count("[")
    if opens <= max_depth:
        return False
    stack: list[tuple[Any, int]] = [(frame, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            return True
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())  # pyright: ignore[reportUnknownVariableType,reportUnknownMemberType,reportUnknownArgumentType]
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)  # pyright: ignore[reportUnknownVariableType,reportUnknownArgumentType]
    return False

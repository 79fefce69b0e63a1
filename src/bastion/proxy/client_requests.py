"""Requests Bastion sends a client for a server (sampling, elicitation, roots), each waiting for
its answer: one bookkeeping for both fronts, which differ only in how the frame travels."""

from __future__ import annotations

import itertools
from typing import Any, Final

import anyio

from bastion.codes import REQUEST_TIMEOUT
from bastion.transport.jsonrpc import Frame
from bastion.types import Reply, RpcError

__all__ = ["CLIENT_REQUEST_TIMEOUT", "ClientRequests"]

CLIENT_REQUEST_TIMEOUT: Final = 600.0
"""How long a client has to answer (a person may be reading an elicitation)."""


class ClientRequests:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[anyio.Event, list[Reply]]] = {}

    def start(self, method: str, params: dict[str, Any] | None) -> Frame:
        """A new request's frame, its id (`bastion-N`) waiting for an answer until `forget`."""
        request_id = f"bastion-{next(self._ids)}"
        self._pending[request_id] = (anyio.Event(), [])
        frame: Frame = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        return frame

    async def answer(self, frame: Frame) -> Reply:
        """The client's answer to a started request, or a timeout error."""
        done, box = self._pending[frame["id"]]
        with anyio.move_on_after(CLIENT_REQUEST_TIMEOUT):
            await done.wait()
            return box[0]
        return RpcError(REQUEST_TIMEOUT, f"the client did not answer {frame['method']} in time")

    def forget(self, frame: Frame) -> None:
        self._pending.pop(frame["id"], None)

    def resolve(self, frame: Frame) -> bool:
        """A client's answer to one of these requests; False if nothing asked for it."""
        entry = self._pending.get(frame["id"]) if isinstance(frame["id"], str) else None
        if entry is None:
            return False
        done, box = entry
        # `"error": null` is an error too (the frame was classed by its members): never look for a result then.
        box.append(RpcError.from_wire(frame["error"]) if "error" in frame else frame["result"])
        done.set()
        return True

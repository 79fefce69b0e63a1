"""JSON-RPC error codes: the standard ones, the spec's, and Bastion's own.

They live on the ground floor because two kinds of code name them: the frame codec and the
fronts that answer malformed frames, and the stages that refuse calls (policy, approvals,
admit, screening, audit). A refusing stage should not have to climb into the transport to
say why it refused. Tests pin these codes, never message text.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AUDIT_UNAVAILABLE",
    "DENIED",
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "REQUEST_TIMEOUT",
    "SERVER_UNAVAILABLE",
]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
REQUEST_TIMEOUT: Final = -32001
"""The server did not answer within its request timeout (the SDK's code for the same thing)."""
HEADER_MISMATCH: Final = -32020
"""The spec's code (2026-07-28) for HTTP routing headers (`Mcp-Method`, `Mcp-Name`) that disagree with the body."""
# Bastion's own codes, in the implementation-defined range -32000..-32019 (the SDK uses -32000 and -32001).
DENIED: Final = -32011
"""A call refused by policy; the message says what and why, never whether a hidden tool exists."""
AUDIT_UNAVAILABLE: Final = -32012
"""A call refused because its audit record could not be made durable (fail closed)."""
SERVER_UNAVAILABLE: Final = -32010
"""The server behind the call is down, crashed, or exited mid-call; the message names it."""

"""The audit stage: an intent entry durable before a call is forwarded, an outcome entry after.

Strict by design: if the intent cannot be made durable, the call is refused (fail closed),
so there is never a call without its record. The outcome records status and latency and a
commitment to the result; the result itself goes only into the encrypted payload.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bastion.audit.entry import Kind, Record
from bastion.audit.log import AuditLog
from bastion.errors import StoreError
from bastion.proxy.pipeline import Call, CallNext
from bastion.transport.jsonrpc import AUDIT_UNAVAILABLE
from bastion.types import Reply, RpcError

__all__ = ["AuditStage", "call_fields"]

logger = logging.getLogger(__name__)


def call_fields(call: Call, server_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The public facts of a call, as every entry about it states them."""
    info = server_info or {}
    fields: dict[str, Any] = {
        "session": call.client.session_id,
        "client": call.client.client_id,
        "server": {"name": call.server, "version": str(info.get("version", ""))},
        "method": call.method,
    }
    if call.client.name:
        fields["client_app"] = call.client.name
    if call.request_id is not None:
        fields["request"] = str(call.request_id)
    if call.tool is not None:
        fields["tool"] = call.tool
    decision = call.notes.get("decision")
    if isinstance(decision, dict):
        fields["decision"] = decision
    return fields


class AuditStage:
    name = "audit"

    def __init__(self, log: AuditLog, server_info: dict[str, dict[str, Any]] | None = None) -> None:
        self._log = log
        self._server_info = server_info if server_info is not None else {}

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        fields = call_fields(call, self._server_info.get(call.server))
        fields.setdefault("decision", {"action": "allow", "rule": "default", "reason": "no rule refused it"})
        arguments = (call.params or {}).get("arguments", call.params or {})
        try:
            intent = await self._log.append(Record(Kind.CALL_INTENT, fields, {"arguments": arguments}))
        except StoreError:
            logger.exception("refusing %s %s: no durable audit record", call.method, call.tool)
            return RpcError(AUDIT_UNAVAILABLE, "Refused: the call's audit record could not be made durable")
        call.notes["audit.intent"] = intent
        started = time.perf_counter()
        reply = await call_next(call)
        outcome = {
            **fields,
            "intent": intent,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "status": "error" if isinstance(reply, RpcError) else ("tool_error" if _is_tool_error(reply) else "ok"),
        }
        if isinstance(reply, RpcError):
            outcome["error"] = {"code": reply.code, "message": reply.message}
        secret = {} if isinstance(reply, RpcError) else {"result": reply}
        try:
            await self._log.append(Record(Kind.CALL_OUTCOME, outcome, secret))
        except StoreError as exc:
            # The call has happened; its intent is on record. Say so loudly; the reply still goes back.
            logger.critical("the outcome of audit entry %d could not be recorded: %s", intent, exc)
        return reply


def _is_tool_error(reply: Reply) -> bool:
    return isinstance(reply, dict) and reply.get("isError") is True

"""The audit stage: an intent entry durable before a call is forwarded, an outcome entry after.

Strict by design: if the intent cannot be made durable, the call is refused (fail closed),
so there is never a call without its record. The outcome records status and latency and a
commitment to the result; the result itself goes only into the encrypted payload. A call cancelled
on its way (by its client, its session's end or the gateway's stop) gets an outcome too, with status
`cancelled`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from anyio import get_cancelled_exc_class

from bastion.audit.canonical import canonical_any
from bastion.audit.entry import Kind, Record
from bastion.audit.log import AuditLog
from bastion.codes import AUDIT_UNAVAILABLE, INTERNAL_ERROR
from bastion.errors import StoreError
from bastion.proxy.pipeline import Call, CallNext, ClientInfo
from bastion.types import Reply, RpcError

__all__ = ["AuditEvents", "AuditStage", "ServerFactsOf", "call_fields", "log_fields"]

logger = logging.getLogger(__name__)
refusals_log = logging.getLogger("bastion.refusals")


ServerFactsOf = Callable[[str], Mapping[str, Any]]
"""A server's identity, credential versions and sandbox, as entries about it state them."""


def _no_facts(_server: str) -> Mapping[str, Any]:
    return {}


def call_fields(call: Call, facts: ServerFactsOf = _no_facts) -> dict[str, Any]:
    """The public facts of a call, as every entry about it states them."""
    server: dict[str, Any] = {"name": call.server, **facts(call.server)}
    if call.server_version:
        server["version"] = call.server_version
    fields: dict[str, Any] = {
        "session": call.client.session_id,
        "client": call.client.client_id,
        "server": server,
        "method": call.method,
    }
    if call.client.name:
        fields["client_app"] = call.client.name
    if call.request_id is not None:
        fields["request"] = str(call.request_id)
    if call.tool is not None:
        fields["tool"] = call.tool
    if call.decision is not None:
        fields["decision"] = call.decision.to_record()
    return fields


class AuditStage:
    name = "audit"

    def __init__(self, log: AuditLog, facts: ServerFactsOf = _no_facts) -> None:
        self._log = log
        self._facts = facts

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        fields = call_fields(call, self._facts)
        if "decision" not in fields:
            fields["decision"] = {"action": "allow", "rule": "default", "reason": "no rule refused it"}
        arguments = (call.params or {}).get("arguments", call.params or {})
        try:
            intent = await self._log.append(Record(Kind.CALL_INTENT, fields, {"arguments": arguments}))
        except StoreError:
            logger.exception(
                "refusing %s %s: no durable audit record",
                call.method,
                call.tool,
                extra=log_fields(call, "audit.unavailable"),
            )
            return RpcError(AUDIT_UNAVAILABLE, "Refused: the call's audit record could not be made durable")
        started = time.perf_counter()
        try:
            reply = await call_next(call)
        except get_cancelled_exc_class():
            # Cancelled by its client, its session's end or a stop: the intent is durable, so say how it ended.
            cancelled = {**fields, "intent": intent, "latency_us": _since(started), "status": "cancelled"}
            self._log.submit(Record(Kind.CALL_OUTCOME, cancelled))
            raise
        outcome = {
            **fields,
            "intent": intent,
            "latency_us": _since(started),
            "status": "error" if isinstance(reply, RpcError) else ("tool_error" if _is_tool_error(reply) else "ok"),
        }
        if isinstance(reply, RpcError):
            outcome["error"] = {"code": reply.code, "message": reply.message}
        if call.screening:
            outcome["screening"] = list(call.screening)
        secret = {} if isinstance(reply, RpcError) else {"result": reply}
        # The reply need not wait for the outcome's fsync: the intent is durable already, and the
        # outcome shares the next batch's commit. A failure there is logged by the writer.
        self._log.submit(Record(Kind.CALL_OUTCOME, outcome, secret))
        return reply


def log_fields(call: Call, rule: str | None = None) -> dict[str, Any]:
    """What a log line about a call carries as fields (`extra=`): names and ids, never arguments."""
    return {
        "server": call.server,
        "tool": call.tool,
        "rule": rule,
        "client": call.client.client_id,
        "request_id": call.request_id,
    }


def _since(started: float) -> int:
    """Microseconds since `started` (a `perf_counter` reading)."""
    return round((time.perf_counter() - started) * 1_000_000)


def _is_tool_error(reply: Reply) -> bool:
    return isinstance(reply, dict) and reply.get("isError") is True


class AuditEvents:
    """Session events as entries: refusals that never reached the pipeline, and tool listings."""

    def __init__(
        self, log: AuditLog, facts: ServerFactsOf = _no_facts, on_refused: Callable[[str], None] | None = None
    ) -> None:
        self._log = log
        self._facts = facts
        self._on_refused = on_refused

    async def refused(self, call: Call, reply: Reply) -> None:
        fields = call_fields(call, self._facts)
        rule = call.decision.rule if call.decision is not None else "unknown"
        if self._on_refused is not None:
            self._on_refused(rule)
        refusals_log.info("refused %s %s (rule %s)", call.method, call.tool or "", rule, extra=log_fields(call, rule))
        if isinstance(reply, RpcError):
            fields["error"] = {"code": reply.code, "message": reply.message}
        try:
            await self._log.append(
                Record(Kind.CALL_DENIED, fields, {"arguments": (call.params or {}).get("arguments", {})})
            )
        except StoreError:
            logger.exception("a refusal of %s could not be recorded", call.tool, extra=log_fields(call, rule))

    async def failed(self, call: Call, error: BaseException) -> None:
        """A request the gateway failed on: its error's type, never its message (which may quote arguments)."""
        fields = call_fields(call, self._facts)
        fields["error"] = {"code": INTERNAL_ERROR, "type": type(error).__name__}
        try:
            await self._log.append(
                Record(Kind.CALL_ERROR, fields, {"arguments": (call.params or {}).get("arguments", {})})
            )
        except StoreError:
            logger.exception("the failure of %s could not be recorded", call.method)

    async def listed(self, client: ClientInfo, server: str, kind: str, items: list[dict[str, Any]]) -> None:
        digests = {str(item.get("name")): hashlib.sha256(canonical_any(item)).hexdigest() for item in items}
        fields = {
            "session": client.session_id,
            "client": client.client_id,
            "server": {"name": server, **self._facts(server)},
            "listing": kind,
            "definitions": digests,
        }
        try:
            await self._log.append(Record(Kind.LISTING, fields))
        except StoreError:
            logger.exception("the %s listing of %s could not be recorded", kind, server)

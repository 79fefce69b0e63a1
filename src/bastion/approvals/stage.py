"""The approval stage: a call policy marked `approve` waits for a person.

The client sees an ordinary call in flight. Meanwhile the request is in the shared store,
where the CLI (`bastion approvals`) and the dashboard see it, and is pushed to the webhook and,
where the client supports it and config allows, back to the client as an elicitation. The
first decision wins; a standing grant (a session- or window-scoped approval) lets later calls
through without asking. Nobody deciding within the timeout, or no channel able to ask, is a
denial. Every request, decision and timeout is an audit entry, and a refused call also gets its
`call.denied` entry, like every other refusal, so the denials are one complete population.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import anyio

from bastion.approvals.model import Approval, Scope, Status, Verdict, mask_arguments, new_id
from bastion.approvals.store import ApprovalStore
from bastion.audit.entry import Kind, Record
from bastion.audit.log import AuditLog
from bastion.clock import Clock
from bastion.codes import DENIED
from bastion.config.model import ApprovalConfig
from bastion.errors import StoreError
from bastion.proxy.pipeline import Call, CallNext, SessionEvents
from bastion.types import Action, Approved, Decision, Reply, RpcError

__all__ = ["ApprovalStage", "Notifier"]

logger = logging.getLogger(__name__)

Notifier = Callable[[Approval], Awaitable[bool]]
"""Tells a channel about a new request; True if the channel was reached."""
RECENT = 8


class ApprovalStage:
    name = "approval"

    def __init__(
        self,
        store: ApprovalStore,
        config: ApprovalConfig,
        gateway: str,
        audit: AuditLog,
        clock: Clock,
        notifiers: Sequence[Notifier] = (),
        events: SessionEvents | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._gateway = gateway
        self._audit = audit
        self._clock = clock
        self._notifiers = list(notifiers)
        self._events = events
        """Where a refused call is reported (its `call.denied` entry), as for every other refusal."""
        self._recent: dict[str, deque[str]] = {}

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        decision = call.decision
        if call.method == "tools/call":
            self._remember(call)
        if decision is None or decision.action is not Action.APPROVE or not decision.enforced:
            return await call_next(call)  # nothing to wait for, or a monitored server's (recorded, not held)
        now = self._clock.now()
        grants = await anyio.to_thread.run_sync(self._store.grants, now)
        session, client = call.client.session_id, call.client.client_id
        standing = next((g for g in grants if g.covers(client, session, call.server, str(call.tool), now)), None)
        if standing is not None:
            call.decision = replace(decision, action=Action.ALLOW, approved=Approved(standing.approval, standing.by))
            return await call_next(call)
        approval = self._request(call, decision, now)
        await anyio.to_thread.run_sync(self._store.create, approval)
        await self._record(Kind.APPROVAL_REQUESTED, approval, {"why": approval.why, "timeout_s": self._config.timeout})
        result = await self._ask(approval, call)
        if result is not None and result.status is Status.APPROVED and result.verdict is not None:
            verdict = result.verdict
            await self._record(Kind.APPROVAL_DECIDED, result, _verdict_fields(result))
            approved = Approved(approval.id, verdict.by, verdict.channel)
            call.decision = replace(decision, action=Action.ALLOW, approved=approved)
            return await call_next(call)
        return await self._refusal(call, approval, result, decision)

    def _request(self, call: Call, decision: Decision, now: float) -> Approval:
        arguments = (call.params or {}).get("arguments") or {}
        return Approval(
            new_id(),
            now,
            now + self._config.timeout,
            self._gateway,
            call.client.client_id,
            call.client.session_id,
            call.server,
            str(call.tool),
            decision.risk,
            mask_arguments(arguments),
            decision.reason,
            tuple(self._recent.get(call.client.session_id, ()))[:-1],
        )

    async def _ask(self, approval: Approval, call: Call) -> Approval | None:
        """Reach the channels, then wait for the first decision or the deadline."""
        reached = "cli" in self._config.channels or "dashboard" in self._config.channels
        for notify in self._notifiers:
            try:
                reached = await notify(approval) or reached
            except Exception:  # a failing channel must not take the call with it; others may still answer
                logger.exception("approval %s: a channel failed", approval.id)
        elicit = self._elicit_allowed(approval, call) and call.ask is not None
        if not (reached or elicit):
            return None
        result: Approval | None = None
        async with anyio.create_task_group() as tasks:
            if elicit:
                tasks.start_soon(self._elicit, approval, call)
            wait = functools.partial(self._store.wait, approval.id, approval.expires)
            result = await anyio.to_thread.run_sync(wait, abandon_on_cancel=True)
            tasks.cancel_scope.cancel()
        if result is not None and result.status is Status.PENDING:
            result = await anyio.to_thread.run_sync(self._store.expire, approval.id, self._clock.now())
            result = result or await anyio.to_thread.run_sync(self._store.get, approval.id)
        return result

    def _elicit_allowed(self, approval: Approval, call: Call) -> bool:
        if "elicitation" not in self._config.channels:
            return False
        return approval.risk != "destructive" or self._config.elicitation_for_destructive

    async def _elicit(self, approval: Approval, call: Call) -> None:
        """Ask the client's own user (a weaker assurance: the agent's side of the wire answers)."""
        assert call.ask is not None
        params = {
            "message": f"Bastion: allow {approval.server}.{approval.tool} ({approval.risk})?\n{approval.why}\n"
            f"Arguments:\n{approval.arguments}",
            "requestedSchema": {
                "type": "object",
                "properties": {"approve": {"type": "boolean", "title": "Allow this call"}},
                "required": ["approve"],
            },
        }
        reply = await call.ask("elicitation/create", params)
        if isinstance(reply, RpcError):
            return
        accepted = reply.get("action") == "accept" and bool((reply.get("content") or {}).get("approve"))
        verdict = Verdict(
            accepted, f"the client's user ({approval.client})", "elicitation", self._clock.now(), Scope.CALL
        )
        await anyio.to_thread.run_sync(self._store.decide, approval.id, verdict)

    async def _refusal(self, call: Call, approval: Approval, result: Approval | None, decision: Decision) -> RpcError:
        if result is None:
            rule, message = "approval.unreachable", "no approval channel could be reached, so the call is refused"
            await self._record(Kind.APPROVAL_DECIDED, approval, {"status": "unreachable"})
        elif result.status is Status.DENIED and result.verdict is not None:
            verdict = result.verdict
            rule = "approval.denied"
            message = f"{verdict.by} denied the call" + (f": {verdict.reason}" if verdict.reason else "")
            await self._record(Kind.APPROVAL_DECIDED, result, _verdict_fields(result))
        else:
            rule = "approval.timeout"
            message = f"no one approved the call within {self._config.timeout:g} s, so it is refused"
            await self._record(Kind.APPROVAL_DECIDED, approval, {"status": "expired"})
        call.decision = replace(decision, action=Action.DENY, rule=rule, reason=message)
        refusal = RpcError(DENIED, f"Refused ({rule}): {message}", {"rule": rule, "approval": approval.id})
        if self._events is not None:
            await self._events.refused(call, refusal)
        return refusal

    def _remember(self, call: Call) -> None:
        recent = self._recent.get(call.client.session_id)
        if recent is None:
            recent = self._recent[call.client.session_id] = deque(maxlen=RECENT)
        recent.append(f"{call.server}.{call.tool}")
        if len(self._recent) > 10_000:
            self._recent.pop(next(iter(self._recent)))

    async def _record(self, kind: Kind, approval: Approval, extra: dict[str, Any]) -> None:
        fields = {
            "approval": approval.id,
            "client": approval.client,
            "session": approval.session,
            "server": {"name": approval.server},
            "tool": approval.tool,
            "risk": approval.risk,
            **extra,
        }
        try:
            await self._audit.append(Record(kind, fields, {"arguments": approval.arguments}))
        except StoreError:
            logger.exception("approval %s could not be recorded", approval.id)


def _verdict_fields(approval: Approval) -> dict[str, Any]:
    verdict = approval.verdict
    assert verdict is not None
    return {
        "status": approval.status.value,
        "by": verdict.by,
        "channel": verdict.channel,
        "scope": verdict.scope.value,
        "until": verdict.until,
        "reason": verdict.reason,
    }

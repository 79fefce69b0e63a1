"""The watch stage: every tool call that policy let through is timed and reported to the watcher
(and wrapped in an OpenTelemetry span once an SDK has set a tracer provider).

OpenTelemetry's API is imported only once something could have set a provider (see
`_provider_set`): a gateway nobody traces never loads it (0.3 MB of a `bastion wrap`'s peak).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from bastion.proxy.pipeline import Call, CallNext
from bastion.types import Reply, RpcError
from bastion.watch.events import CallEvent
from bastion.watch.service import Watcher

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["CallMetrics", "MetricsHook", "WatchStage"]

_NO_SPAN = contextlib.nullcontext(None)
_API = "opentelemetry.trace"
_PROVIDER_ENV = "OTEL_PYTHON_TRACER_PROVIDER"


def _provider_set() -> bool:
    """Whether an OpenTelemetry SDK has set a tracer provider (the API's own answer).

    Only code that imported the API can have set one (`trace.set_tracer_provider`), or
    OTEL_PYTHON_TRACER_PROVIDER names one, which the API loads when first asked; while neither
    holds the answer is no, and the API is not imported to give it."""
    if _API not in sys.modules and _PROVIDER_ENV not in os.environ:
        return False
    from opentelemetry import trace  # only where a provider can exist (see above)

    return not isinstance(trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


@functools.cache
def _tracer() -> Tracer:
    """The gateway's tracer, from the provider `_provider_set` found (asked for once)."""
    from opentelemetry import trace  # only once a provider is set (see _provider_set)

    return trace.get_tracer("bastion")


class _Tracing:
    """Whether an OpenTelemetry SDK has set a tracer provider. Until one does, every span is a
    no-op, and not making one saves its cost on every call. Asked at most once a second while the
    answer is no (OpenTelemetry's own check reads the environment each time); once yes, for good
    (a provider, once set, stays)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._on = False
        self._asked = -math.inf

    def __call__(self) -> bool:
        if not self._on and (now := self._clock()) - self._asked >= 1.0:
            self._asked = now
            self._on = _provider_set()
        return self._on


class CallMetrics(Protocol):
    def call(self, server: str, tool: str, outcome: str, seconds: float, action: str, rule: str) -> None: ...

    def denied(self, rule: str) -> None: ...


class MetricsHook:
    """Where call metrics go, once the HTTP front has set up `/metrics` (stdio gateways have none)."""

    metrics: CallMetrics | None = None

    def denied(self, rule: str) -> None:
        if self.metrics is not None:
            self.metrics.denied(rule)


class WatchStage:
    name = "watch"

    def __init__(self, watcher: Watcher | None, hook: MetricsHook) -> None:
        self._watcher = watcher
        self._hook = hook
        self._tracing = _Tracing()

    async def __call__(self, call: Call, call_next: CallNext) -> Reply:
        if call.method != "tools/call" or call.tool is None:
            return await call_next(call)
        spanning = _NO_SPAN
        if self._tracing():
            attributes = {"mcp.server": call.server, "mcp.tool": call.tool, "mcp.client": call.client.client_id}
            spanning = _tracer().start_as_current_span("tools/call", attributes=attributes)
        with spanning as span:
            started = time.perf_counter()
            reply = await call_next(call)
            latency = (time.perf_counter() - started) * 1000
            outcome = "error" if isinstance(reply, RpcError) else ("tool_error" if reply.get("isError") else "ok")
            if span is not None:
                span.set_attribute("mcp.outcome", outcome)
        decision = call.decision
        if self._watcher is not None:
            risk = decision.risk if decision is not None and decision.risk else "write"
            event = CallEvent(time.time(), call.client.client_id, call.server, call.tool, risk, outcome, latency)
            self._watcher.observe_call(event)
        if self._hook.metrics is not None:
            action, rule = (decision.action.value, decision.rule) if decision is not None else ("allow", "default")
            self._hook.metrics.call(call.server, call.tool, outcome, latency / 1000, action, rule)
        return reply

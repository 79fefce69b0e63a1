"""Prometheus metrics for `bastion serve`'s `/metrics`: calls, decisions, latency, pending approvals,
alert states, and the audit log's size and checkpoint age.

Counters are updated on the hot path (a dictionary lookup and an add); gauges are read when
Prometheus scrapes. Only the HTTP front loads this module (stdio gateways have no endpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Metrics"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class Metrics:
    def __init__(
        self,
        approvals_pending: Callable[[], int],
        alert_states: Callable[[], Mapping[str, int]],
        audit_size: Callable[[], int],
        checkpoint_age: Callable[[], float],
    ) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "bastion_calls", "Tool calls forwarded, by outcome.", ["server", "tool", "outcome"], registry=self.registry
        )
        self.decisions = Counter(
            "bastion_decisions", "Policy decisions, by action and rule.", ["action", "rule"], registry=self.registry
        )
        self.latency = Histogram(
            "bastion_call_seconds",
            "Tool call latency through Bastion.",
            ["server"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._calls, self._latency, self._decisions = (
            _Children(self.calls),
            _Children(self.latency),
            _Children(self.decisions),
        )
        Gauge("bastion_approvals_pending", "Calls waiting for a person.", registry=self.registry).set_function(
            lambda: float(approvals_pending())
        )
        alerts = Gauge("bastion_alerts", "Alerts by state.", ["state"], registry=self.registry)
        for state in ("open", "acknowledged", "snoozed"):
            alerts.labels(state).set_function(lambda state=state: float(alert_states().get(state, 0)))
        Gauge("bastion_audit_entries", "Entries in this gateway's audit log.", registry=self.registry).set_function(
            lambda: float(audit_size())
        )
        Gauge(
            "bastion_audit_checkpoint_age_seconds", "Seconds since the last signed checkpoint.", registry=self.registry
        ).set_function(checkpoint_age)

    def call(self, server: str, tool: str, outcome: str, seconds: float, action: str, rule: str) -> None:
        self._calls(server, tool, outcome).inc()
        self._latency(server).observe(seconds)
        self._decisions(action, rule).inc()

    def denied(self, rule: str) -> None:
        self._decisions("deny", rule).inc()

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class _Children:
    """`metric.labels(*values)`, kept: `labels` checks its arguments and takes a lock on every call."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self._metric = metric
        self._kept: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._kept.get(values)
        if child is None:
            child = self._kept[values] = self._metric.labels(*values)
        return child

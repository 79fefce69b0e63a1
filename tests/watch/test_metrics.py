"""`/metrics`: counters updated by calls and refusals, gauges read from the gateway when scraped."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from bastion.watch.metrics import Metrics


def metrics(pending: int = 0, alerts: dict[str, int] | None = None, size: int = 0, age: float = 0.0) -> Metrics:
    return Metrics(lambda: pending, lambda: alerts or {}, lambda: size, lambda: age)


def samples(subject: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    text = generate_latest(subject.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_call_counts_its_outcome_decision_and_latency() -> None:
    subject = metrics()
    subject.call("fs", "read_file", "ok", 0.003, "allow", "tools.read")
    subject.call("fs", "read_file", "ok", 0.2, "allow", "tools.read")
    found = samples(subject)
    assert found["bastion_calls_total", (("outcome", "ok"), ("server", "fs"), ("tool", "read_file"))] == 2.0
    assert found["bastion_decisions_total", (("action", "allow"), ("rule", "tools.read"))] == 2.0
    assert found["bastion_call_seconds_count", (("server", "fs"),)] == 2.0
    assert found["bastion_call_seconds_bucket", (("le", "0.005"), ("server", "fs"))] == 1.0


def test_a_refusal_counts_as_a_deny_decision_without_a_call() -> None:
    subject = metrics()
    subject.denied("paths.outside")
    found = samples(subject)
    assert found["bastion_decisions_total", (("action", "deny"), ("rule", "paths.outside"))] == 1.0
    assert not any(name == "bastion_calls_total" for name, _ in found)


def test_gauges_are_read_from_the_gateway_at_scrape_time() -> None:
    states = {"open": 2, "snoozed": 1}
    subject = metrics(pending=3, alerts=states, size=120, age=42.5)
    found = samples(subject)
    assert found["bastion_approvals_pending", ()] == 3.0
    assert found["bastion_audit_entries", ()] == 120.0
    assert found["bastion_audit_checkpoint_age_seconds", ()] == 42.5
    assert found["bastion_alerts", (("state", "open"),)] == 2.0
    assert found["bastion_alerts", (("state", "acknowledged"),)] == 0.0
    states["open"] = 0
    assert samples(subject)["bastion_alerts", (("state", "open"),)] == 0.0


def test_the_endpoint_serves_the_prometheus_text_format() -> None:
    subject = metrics(pending=1)
    app = Starlette(routes=[Route("/metrics", subject.endpoint)])
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "bastion_approvals_pending 1.0" in response.text

"""The watch stage: a call is timed and counted, and wrapped in an OpenTelemetry span only once an
SDK has set a tracer provider (until then a span would be a no-op paid on every call); while nothing
could have set one, OpenTelemetry is not even asked."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Generator
from typing import Any

import pytest
from opentelemetry import trace

import bastion.watch.stage as stage_module
from bastion.proxy.pipeline import Call, ClientInfo
from bastion.types import Reply, RpcError
from bastion.watch.stage import MetricsHook, WatchStage, _Tracing  # pyright: ignore[reportPrivateUsage]

pytestmark = pytest.mark.anyio


class Span:
    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = attributes

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value


class Recorder(trace.NoOpTracer):
    """A tracer that keeps its spans, standing in for an SDK's."""

    def __init__(self) -> None:
        self.spans: list[Span] = []

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Generator[Span]:  # pyright: ignore[reportIncompatibleMethodOverride]
        span = Span(name, dict(kwargs.get("attributes") or {}))
        self.spans.append(span)
        yield span


class Provider(trace.TracerProvider):
    """What an SDK installs (its own tracers are not needed here: the stage's tracer is the recorder)."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return trace.NoOpTracer()


class Metrics:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str, str]] = []

    def call(self, server: str, tool: str, outcome: str, seconds: float, action: str, rule: str) -> None:
        assert seconds >= 0
        self.calls.append((server, tool, outcome, action, rule))

    def denied(self, rule: str) -> None:
        raise AssertionError("not a denial")


def echo_call() -> Call:
    return Call(ClientInfo("alice", "s1"), "files", "tools/call", {"name": "read"}, "read", 1)


async def answer_ok(call: Call) -> Reply:
    return {"content": []}


async def answer_error(call: Call) -> Reply:
    return RpcError(-32603, "boom")


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(stage_module, "_tracer", lambda: recorder)
    return recorder


async def test_without_a_tracer_provider_no_span_is_made_and_the_call_is_still_counted(recorder: Recorder) -> None:
    hook = MetricsHook()
    hook.metrics = metrics = Metrics()
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert await WatchStage(None, hook)(echo_call(), answer_ok) == {"content": []}
    assert recorder.spans == []
    assert metrics.calls == [("files", "read", "ok", "allow", "default")]


async def test_once_an_sdk_sets_a_provider_every_call_is_a_span_with_its_outcome(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = Provider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    stage = WatchStage(None, MetricsHook())
    await stage(echo_call(), answer_ok)
    await stage(echo_call(), answer_error)
    assert [(span.name, span.attributes) for span in recorder.spans] == [
        ("tools/call", {"mcp.server": "files", "mcp.tool": "read", "mcp.client": "alice", "mcp.outcome": outcome})
        for outcome in ("ok", "error")
    ]


def test_a_provider_set_later_is_seen_within_a_second_and_then_for_good(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    tracing = _Tracing(lambda: now[0])
    assert not tracing()
    provider = Provider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    now[0] += 0.5
    assert not tracing()  # asked again at most once a second
    now[0] += 0.5
    assert tracing()
    monkeypatch.setattr(trace, "get_tracer_provider", trace.ProxyTracerProvider)
    now[0] += 5
    assert tracing()


def test_while_nothing_imported_the_api_and_no_provider_is_named_opentelemetry_is_not_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only code that imported opentelemetry.trace can have set a provider (a `bastion wrap` never loads it)
    monkeypatch.delitem(sys.modules, "opentelemetry.trace")
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    provider = Provider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert not _Tracing()()


def test_a_provider_named_in_the_environment_is_seen_before_anything_imports_the_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "opentelemetry.trace")
    monkeypatch.setenv("OTEL_PYTHON_TRACER_PROVIDER", "sdk_tracer_provider")  # the API loads it when asked
    provider = Provider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    assert _Tracing()()

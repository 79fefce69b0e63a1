"""Alert sinks: what each sends, which failures are retried and which are reported at once."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bastion.config.model import SinkConfig
from bastion.watch.alerts import Channel, Notification, NotificationKind
from bastion.watch.events import Severity
from bastion.watch.sinks import Delivery, Outbox, make_sink

NOTE = Notification(NotificationKind.ALERT, "volume:server=fs", Channel.PRIMARY, "fs is busy", 0.0, Severity.CRITICAL)


@dataclass
class Receiver:
    """A loopback HTTP endpoint that records the JSON bodies posted to it and answers `status`."""

    url: str
    bodies: list[Any] = field(default_factory=list[Any])
    status: int = 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_webhook_fills_its_template_at_any_depth(receiver: Receiver) -> None:
    template = {"title": "[$severity] $summary", "tags": ["$server", "fixed"], "n": 1, "missing": "$nothing"}
    sink = make_sink(SinkConfig(kind="webhook", url=receiver.url, template=template), {})
    assert sink.send(NOTE, {"server": "fs", "state": "open"}) == Delivery(True)
    assert receiver.bodies == [
        {"title": "[critical] fs is busy", "tags": ["fs", "fixed"], "n": 1, "missing": "$nothing"}
    ]


def test_a_webhook_without_a_template_sends_the_standard_fields(receiver: Receiver) -> None:
    make_sink(SinkConfig(kind="webhook", url=receiver.url), {}).send(NOTE, {"state": "open", "server": "fs"})
    assert receiver.bodies == [
        {
            "alert": "volume:server=fs",
            "summary": "fs is busy",
            "severity": "critical",
            "kind": "alert",
            "state": "open",
            "server": "fs",
            "at": "1970-01-01T00:00:00Z",
        }
    ]


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (404, True), (429, False), (408, False), (503, False)])
def test_client_errors_are_permanent_but_timeouts_throttling_and_server_errors_are_retried(
    receiver: Receiver, status: int, permanent: bool
) -> None:
    receiver.status = status
    delivery = make_sink(SinkConfig(kind="slack", url=receiver.url), {}).send(NOTE, {})
    assert delivery == Delivery(False, permanent, f"HTTP {status}")
    assert receiver.bodies[0]["text"] == ":rotating_light: *alert* [critical] fs is busy"


def test_a_pagerduty_sink_without_its_routing_key_fails_for_good_without_sending() -> None:
    sink = make_sink(SinkConfig(kind="pagerduty", routing_key_env="PD_KEY", url="http://127.0.0.1:9/"), {})
    delivery = sink.send(NOTE, {})
    assert delivery.ok is False
    assert delivery.permanent is True


def test_a_pagerduty_resolution_carries_only_the_dedup_key(receiver: Receiver) -> None:
    sink = make_sink(SinkConfig(kind="pagerduty", routing_key_env="PD_KEY", url=receiver.url), {"PD_KEY": "rk"})
    resolved = Notification(NotificationKind.RESOLVED, "k", Channel.PRIMARY, "ok again", 0.0, Severity.INFO)
    assert sink.send(resolved, {}).ok
    assert receiver.bodies == [{"routing_key": "rk", "event_action": "resolve", "dedup_key": "k"}]


def test_a_command_sink_passes_the_alert_in_its_environment() -> None:
    check = "import os, sys; sys.exit(0 if os.environ['ALERT_KEY'] == 'volume:server=fs' else 3)"
    assert make_sink(SinkConfig(kind="command", command=(sys.executable, "-c", check)), {}).send(NOTE, {}).ok
    missing = make_sink(SinkConfig(kind="command", command=("/nonexistent/notify",)), {}).send(NOTE, {})
    assert (missing.ok, missing.permanent) == (False, True)


@dataclass
class Recorded:
    channel: str
    kind: str
    answer: Delivery
    sent: list[str] = field(default_factory=list[str])

    def send(self, note: Notification, fields: Mapping[str, str]) -> Delivery:
        self.sent.append(note.alert_key)
        return self.answer


@pytest.mark.anyio
async def test_the_outbox_sends_to_the_notes_channel_and_reports_a_permanent_failure_once() -> None:
    primary = Recorded("primary", "webhook", Delivery(True))
    broken = Recorded("primary", "email", Delivery(False, True, "recipients refused"))
    secondary = Recorded("secondary", "slack", Delivery(True))
    reports: list[tuple[str, Delivery]] = []

    async def report(kind: str, note: Notification, delivery: Delivery) -> None:
        reports.append((kind, delivery))

    await Outbox([primary, broken, secondary], report).send(NOTE, {})
    assert (primary.sent, broken.sent, secondary.sent) == (["volume:server=fs"], ["volume:server=fs"], [])
    assert sorted(reports, key=lambda r: r[0]) == [
        ("email", Delivery(False, True, "recipients refused")),
        ("webhook", Delivery(True)),
    ]


@pytest.mark.anyio
async def test_an_escalation_goes_to_the_primary_channel_when_there_is_no_secondary() -> None:
    primary = Recorded("primary", "webhook", Delivery(True))
    escalation = Notification(NotificationKind.ESCALATION, "k", Channel.SECONDARY, "still open", 0.0, Severity.WARNING)
    await Outbox([primary]).send(escalation, {})
    assert primary.sent == ["k"]

"""Where alerts go: a generic webhook (templated JSON), a Slack-compatible webhook, email over
SMTP, PagerDuty Events v2, or a local command.

A sink sends one notification and says how it went: delivered, failed for now (retry with
backoff: a timeout, a refused connection, a 5xx, a 429), or failed for good (a 4xx, a bad
address, a missing routing key), which is reported instead of retried. The `Outbox` retries
at 1, 2, 4, 8 and 16 seconds, then gives up and reports it.
"""

from __future__ import annotations

import json
import logging
import os
import string
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from bastion.config.model import SinkConfig
from bastion.watch.alerts import Notification

__all__ = ["Delivery", "Outbox", "Sink", "make_sink"]

logger = logging.getLogger(__name__)

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
RETRIES = (1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    permanent: bool = False
    detail: str = ""


class Sink(Protocol):
    channel: str
    kind: str

    def send(self, note: Notification, fields: Mapping[str, str]) -> Delivery: ...


def _fields(note: Notification, extra: Mapping[str, str]) -> dict[str, str]:
    return {
        "key": note.alert_key,
        "summary": note.summary,
        "severity": note.severity.value,
        "kind": note.kind.value,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(note.at)),
        **extra,
    }


def _post(url: str, body: Mapping[str, Any]) -> Delivery:
    # With http.client, ~0.8 MB: loaded by the first webhook sent, not by every gateway.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (a configured http(s) URL)
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()
            return Delivery(True)
    except urllib.error.HTTPError as exc:
        permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
        return Delivery(False, permanent, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        return Delivery(False, False, str(getattr(exc, "reason", exc)))


class WebhookSink:
    kind = "webhook"

    def __init__(self, url: str, template: Mapping[str, Any] | None, channel: str) -> None:
        self.url, self.channel = url, channel
        self._template = template or {
            "alert": "$key",
            "summary": "$summary",
            "severity": "$severity",
            "kind": "$kind",
            "state": "$state",
            "server": "$server",
            "at": "$at",
        }

    def send(self, note: Notification, fields: Mapping[str, str]) -> Delivery:
        return _post(self.url, _fill(self._template, _fields(note, fields)))


class SlackSink:
    kind = "slack"

    def __init__(self, url: str, channel: str) -> None:
        self.url, self.channel = url, channel

    def send(self, note: Notification, fields: Mapping[str, str]) -> Delivery:
        values = _fields(note, fields)
        icon = {"critical": ":rotating_light:", "warning": ":warning:"}.get(values["severity"], ":information_source:")
        text = f"{icon} *{values['kind']}* [{values['severity']}] {values['summary']}"
        return _post(
            self.url, {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
        )


class PagerDutySink:
    kind = "pagerduty"

    def __init__(self, url: str, routing_key: str | None, channel: str) -> None:
        self.url, self._key, self.channel = url, routing_key, channel

    def send(self, note: Notification, fields: Mapping[str, str]) -> Delivery:
        if not self._key:
            return Delivery(False, True, "no routing key in the configured environment variable")
        action = "resolve" if note.kind.value == "resolved" else "trigger"
        severity = {"critical": "critical", "warning": "warning"}.get(note.severity.value, "info")
        body: dict[str, Any] = {"routing_key": self._key, "event_action": action, "dedup_key": note.alert_key}
        if action == "trigger":
            body["payload"] = {
                "summary": note.summary[:1000],
                "source": fields.get("server") or "bastion",
                "severity": severity,
                "custom_details": {"kind": note.kind.value, "key": note.alert_key},
            }
        return _post(self.url, body)


class EmailSink:
    kind = "email"

    def __init__(self, smtp: str, sender: str, to: Sequence[str], channel: str) -> None:
        host, _, port = smtp.rpartition(":")
        self._host, self._port = host or smtp, int(port or 25)
        self._sender, self._to, self.channel = sender, list(to), channel

    def send(self, note: Notification, fields: Mapping[str, str]) -> Delivery:
        # The mail modules cost ~9 MB: loaded by the first e-mail, not by every gateway.
        import smtplib
        from email.message import EmailMessage

        values = _fields(note, fields)
        message = EmailMessage()
        message["Subject"] = f"[bastion {values['severity']}] {values['kind']}: {values['summary'][:120]}"
        message["From"] = self._sender
        message["To"] = ", ".join(self._to)
        message.set_content("\n".join(f"{name}: {value}" for name, value in values.items()))
        try:
            with smtplib.SMTP(self._host, self._port, timeout=10) as smtp:
                smtp.send_message(message)
            return Delivery(True)
        except smtplib.SMTPRecipientsRefused as exc:
            return Delivery(False, True, f"recipients refused: {exc.recipients}")
        except (smtplib.SMTPException, OSError) as exc:
            return Delivery(False, False, str(exc))


class CommandSink:
    kind = "command"

    def __init__(self, argv: Sequence[str], channel: str) -> None:
        self._argv, self.channel = list(argv), channel

    def send(self, note: Notification, fields: Mapping[str, str]) -> Delivery:
        env = {**os.environ, **{f"ALERT_{k.upper()}": v for k, v in _fields(note, fields).items()}}
        try:
            done = subprocess.run(self._argv, env=env, capture_output=True, timeout=30, check=False)
        except FileNotFoundError as exc:
            return Delivery(False, True, str(exc))
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Delivery(False, False, str(exc))
        return Delivery(done.returncode == 0, False, done.stderr.decode(errors="replace")[-200:])


def make_sink(config: SinkConfig, environ: Mapping[str, str]) -> Sink:
    if config.kind == "webhook":
        assert config.url is not None
        return WebhookSink(config.url, config.template, config.channel)
    if config.kind == "slack":
        assert config.url is not None
        return SlackSink(config.url, config.channel)
    if config.kind == "pagerduty":
        key = environ.get(config.routing_key_env or "")
        return PagerDutySink(config.url or PAGERDUTY_URL, key, config.channel)
    if config.kind == "email":
        assert config.smtp is not None
        assert config.sender is not None
        return EmailSink(config.smtp, config.sender, config.to, config.channel)
    return CommandSink(config.command, config.channel)


class Outbox:
    """Sends notifications to every sink of their channel, retrying transient failures with backoff."""

    def __init__(self, sinks: Sequence[Sink], report: Any = None) -> None:
        self._sinks = list(sinks)
        self._report = report
        """Called with (sink kind, notification, Delivery) after the last attempt: the audit record."""

    async def send(self, note: Notification, fields: Mapping[str, str]) -> None:
        targets = [s for s in self._sinks if s.channel == note.channel.value] or (
            [s for s in self._sinks if s.channel == "primary"] if note.channel.value == "secondary" else []
        )
        async with anyio.create_task_group() as tasks:
            for sink in targets:
                tasks.start_soon(self._deliver, sink, note, fields)

    async def _deliver(self, sink: Sink, note: Notification, fields: Mapping[str, str]) -> None:
        delivery = Delivery(False, False, "not tried")
        for pause in (0.0, *RETRIES):
            await anyio.sleep(pause)
            delivery = await anyio.to_thread.run_sync(sink.send, note, fields)
            if delivery.ok or delivery.permanent:
                break
            logger.warning("alert sink %s failed (%s); retrying", sink.kind, delivery.detail)
        if not delivery.ok:
            logger.error(
                "alert sink %s gave up on %s: %s (%s)",
                sink.kind,
                note.alert_key,
                delivery.detail,
                "permanent" if delivery.permanent else "after retries",
            )
        if self._report is not None:
            await self._report(sink.kind, note, delivery)


def _fill(template: Any, values: Mapping[str, str]) -> Any:
    if isinstance(template, str):
        return string.Template(template).safe_substitute(values)
    if isinstance(template, Mapping):
        return {key: _fill(value, values) for key, value in template.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(template, list):
        return [_fill(value, values) for value in template]  # pyright: ignore[reportUnknownVariableType]
    return template

"""Watch end to end: a real call's first use reaches a real webhook receiver and a real SMTP
server within a second; a heartbeat check that stops being pinged alerts and then recovers;
triage from the CLI is applied and recorded; /metrics reports calls."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import (
    JsonPosts,
    free_port,
    json_receiver,
    serving,
    through_stdio,
    wait_until,
    wait_until_blocking,
)

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def hook() -> Iterator[JsonPosts]:
    with json_receiver("/alerts") as posts:
        yield posts


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Mailbox]]:
    mailbox = _Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


@pytest.mark.anyio
async def test_a_first_use_alert_reaches_a_webhook_and_a_mailbox_within_a_second(
    home: Path, tmp_path: Path, hook: JsonPosts, smtp: tuple[int, _Mailbox]
) -> None:
    port, mailbox = smtp
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n'
        f'[[watch.sinks]]\nkind = "webhook"\nurl = "{hook.url}"\n'
        f'[[watch.sinks]]\nkind = "email"\nsmtp = "127.0.0.1:{port}"\nsender = "bastion@example.com"\n'
        'to = ["oncall@example.com"]\n',
        encoding="utf-8",
    )
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        await client.call_tool("echo", {"text": "hello"})
        called = time.time()
        await wait_until(
            lambda: hook.received and mailbox.messages,
            timeout=10,
            what="the alert at the webhook and in the mailbox",
            every=0.02,
        )
    arrived, body = hook.received[0]
    assert body["alert"].startswith("first_use:")
    assert "echo" in body["summary"]
    assert arrived - called < 1.0
    mail = message_from_bytes(mailbox.messages[0])
    assert mail["To"] == "oncall@example.com"
    assert "first" in str(mail["Subject"]).lower()
    listed = await anyio.run_process([*BASTION, "alerts", "list", "--json"], env=child_env(home))
    [alert] = json.loads(listed.stdout)
    assert alert["state"] == "open"
    resolved = await anyio.run_process(
        [*BASTION, "alerts", "resolve", alert["key"], "--note", "expected: the demo's echo"], env=child_env(home)
    )
    assert resolved.returncode == 0
    triage = await anyio.run_process(
        [*BASTION, "audit", "search", "--kind", "alert.triage", "--json"], env=child_env(home)
    )
    [entry] = [json.loads(line) for line in triage.stdout.splitlines()]
    assert entry["note"] == "expected: the demo's echo"
    exported = await anyio.run_process([*BASTION, "audit", "export", "--format", "ocsf"], env=child_env(home))
    findings = [e for e in map(json.loads, exported.stdout.splitlines()) if e["class_uid"] == 2004]
    assert findings[0]["finding_info"]["uid"] == alert["key"]
    assert findings[0]["status"] == "open"


def test_a_heartbeat_check_that_stops_alerts_and_then_recovers(home: Path, tmp_path: Path, hook: JsonPosts) -> None:
    port = free_port()
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n'
        "[watch.checks.nightly]\nperiod = 2\ngrace = 1\n"
        f'[[watch.sinks]]\nkind = "webhook"\nurl = "{hook.url}"\n',
        encoding="utf-8",
    )
    with serving(home, config, port) as token:
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx2.post(f"{base}/hb/nightly", headers={}).status_code == 401
        assert httpx2.post(f"{base}/hb/unknown", headers=auth).status_code == 404
        started = httpx2.post(f"{base}/hb/nightly/start?rid=run-1", headers=auth)
        assert started.json()["status"] == "started"
        done = httpx2.post(f"{base}/hb/nightly?rid=run-1", headers=auth).json()
        assert done["status"] == "up"
        assert done["duration_s"] is not None
        last_ping = time.time()
        wait_until_blocking(
            lambda: any(b["alert"].startswith("silence") for _, b in hook.received),
            timeout=15,
            what="the silence alert at the webhook",
            every=0.02,
        )
        alerted = next(t for t, b in hook.received if b["alert"].startswith("silence"))
        assert alerted - last_ping < 2 + 1 + 5  # period + grace + 5 s
        httpx2.post(f"{base}/hb/nightly", headers=auth)
        wait_until_blocking(
            lambda: any(b["kind"] == "resolved" for _, b in hook.received),
            timeout=10,
            what="the resolution at the webhook",
            every=0.02,
        )
        metrics = httpx2.get(f"{base}/metrics", headers=auth).text
        assert "bastion_audit_entries" in metrics
    found = subprocess.run(
        [*BASTION, "audit", "search", "--kind", "heartbeat", "--json"],
        capture_output=True,
        text=True,
        env=child_env(home),
        check=True,
    )
    beats = [json.loads(line) for line in found.stdout.splitlines()]
    assert {(b["ping"], b["run"]) for b in beats} >= {("start", "run-1"), ("success", "run-1")}

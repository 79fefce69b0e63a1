"""The audit log under real processes: many gateways at once on one BASTION_HOME, and
`kill -9` of a gateway under load, many times. No call answered without its intent entry."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import BASTION, PYTHON, child_env

pytestmark = [pytest.mark.e2e]

ECHO = [PYTHON, str(Path(__file__).parents[2] / "bench" / "echo_server.py")]
INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "load", "version": "1"}}


class RawClient:
    """A JSON-RPC client over a `bastion wrap` process's pipes, with many calls in flight."""

    def __init__(self, home: Path, server: list[str] = ECHO, options: list[str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*BASTION, "wrap", "--name", "echo", *(options or []), "--", *server],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=child_env(home),
        )
        self.answered: set[str] = set()
        self.ready = threading.Event()
        self._replied = threading.Condition()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.send({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": INIT})

    def send(self, frame: dict[str, Any]) -> bool:
        assert self.process.stdin is not None
        try:
            with self._lock:
                self.process.stdin.write(orjson.dumps(frame) + b"\n")
                self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            frame = orjson.loads(line)
            if frame.get("id") == "init":
                self.ready.set()
            if "result" in frame and isinstance(frame.get("id"), str) and frame["id"].startswith("call-"):
                with self._lock:
                    self.answered.add(frame["id"])
                with self._replied:
                    self._replied.notify_all()

    def close(self) -> None:
        """Close our side, wait for the gateway to finish (it answers calls in flight first), reap it."""
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def call_and_wait(self, request_id: str) -> None:
        """One call at a time: send it and wait (bounded) for its answer."""
        if self.call(request_id):
            with self._replied:
                self._replied.wait_for(lambda: request_id in self.answered, timeout=10)

    def wait_answered(self, count: int, timeout: float) -> None:
        """Wait (bounded) until `count` calls have been answered; the caller asserts how many were."""
        with self._replied:
            self._replied.wait_for(lambda: len(self.answered) >= count, timeout=timeout)

    def call(self, request_id: str) -> bool:
        return self.send(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": request_id}},
            }
        )


def intents(home: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [*BASTION, "audit", "search", "--kind", "call.intent", "--limit", "1000000", "--json"],
        capture_output=True,
        env=child_env(home),
        check=True,
        timeout=120,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


def run(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*BASTION, "audit", *args], capture_output=True, env=child_env(home), check=False, timeout=300
    )


def test_killing_the_gateway_under_load_never_loses_an_answered_call(home: Path) -> None:
    rng = random.Random(1234)
    answered: set[str] = set()
    for round_number in range(6):
        client = RawClient(home)
        assert client.ready.wait(60), "the gateway answered initialize"
        stop = time.monotonic() + 0.2 + rng.random() * 0.8
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while time.monotonic() < stop:
                pool.submit(client.call, f"call-{round_number}-{sent}")
                sent += 1
                time.sleep(0.001)  # pacing: the load is spread over the window, not queued at once
            os.kill(client.process.pid, signal.SIGKILL)
        client.close()
        answered |= client.answered
    assert len(answered) > 100, f"the load produced only {len(answered)} answered calls"
    assert run(home, "seal").returncode == 0
    verified = run(home, "verify")
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    recorded = {entry["request"] for entry in intents(home)}
    missing = {request for request in answered if request not in recorded}
    assert not missing, f"{len(missing)} answered calls have no intent entry"


def test_several_gateways_share_one_home_without_breaking_the_log(home: Path) -> None:
    def one(number: int) -> set[str]:
        client = RawClient(home)
        for i in range(40):
            client.call(f"call-{number}-{i}")
        client.wait_answered(40, timeout=30)
        client.close()
        return client.answered

    with ThreadPoolExecutor(4) as pool:
        answered = set().union(*pool.map(one, range(4)))
    assert len(answered) == 160
    verified = run(home, "verify", "--json")
    assert verified.returncode == 0, verified.stdout.decode()
    report = json.loads(verified.stdout)
    assert len(report["logs"]) == 4
    assert {entry["request"] for entry in intents(home)} >= answered


RECORDER = """
import os, sys
import orjson

record = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
schema = {"type": "object", "properties": {"text": {"type": "string"}}}
tools = [{"name": "echo", "description": "Echo the text.", "inputSchema": schema}]
for line in sys.stdin.buffer:
    message = orjson.loads(line)
    ident, method = message.get("id"), message.get("method")
    if ident is None or method is None:
        continue
    if method == "initialize":
        result = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}, "serverInfo": {"name": "rec", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": tools}
    else:
        text = message["params"]["arguments"]["text"]
        os.write(record, text.encode() + b"\\n")  # what reached the server, before it answers
        result = {"content": [{"type": "text", "text": text}]}
    sys.stdout.buffer.write(orjson.dumps({"jsonrpc": "2.0", "id": ident, "result": result}) + b"\\n")
    sys.stdout.buffer.flush()
"""


@pytest.mark.parametrize("in_flight", [1, 8])
def test_killing_the_gateway_mid_traffic_never_leaves_a_forwarded_call_without_its_intent(
    home: Path, tmp_path: Path, in_flight: int
) -> None:
    """Stronger than answered: every call the server received had its intent entry durable first,
    whether the caller is sequential (small batches committed on the event loop) or has calls in flight."""
    server = tmp_path / "server"
    server.mkdir()
    (server / "recorder.py").write_text(RECORDER, encoding="utf-8")
    received = tmp_path / "received"
    received.mkdir()
    record = received / "calls.txt"
    command = [PYTHON, str(server / "recorder.py"), str(record)]
    grants = ["--fs-read", str(server), "--fs-write", str(received)]
    rng = random.Random(4321 + in_flight)
    for round_number in range(4):
        client = RawClient(home, command, grants)
        assert client.ready.wait(60), "the gateway answered initialize"
        stop = time.monotonic() + 0.3 + rng.random() * 0.7
        sent = 0
        with ThreadPoolExecutor(in_flight) as pool:
            while time.monotonic() < stop:
                if in_flight == 1:
                    client.call_and_wait(f"call-{round_number}-{sent}")
                else:
                    pool.submit(client.call, f"call-{round_number}-{sent}")
                    time.sleep(0.001)  # pacing, as above
                sent += 1
            os.kill(client.process.pid, signal.SIGKILL)
        client.close()
    forwarded = set(record.read_text(encoding="utf-8").split())
    assert len(forwarded) > 20, f"the traffic reached the server only {len(forwarded)} times"
    assert run(home, "seal").returncode == 0
    verified = run(home, "verify")
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    recorded = {entry["request"] for entry in intents(home)}
    missing = forwarded - recorded
    assert not missing, f"{len(missing)} calls reached the server without a durable intent entry: {sorted(missing)[:5]}"

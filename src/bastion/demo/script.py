"""`bastion demo`: a demo server behind Bastion, driven by a scripted client session.

Everything here is real: the demo server is a subprocess, Bastion is a subprocess
(`bastion wrap`), and the client is the official SDK client speaking MCP over stdio.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import anyio
import mcp_types as mt
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from bastion.audit.keys import Keyring
from bastion.audit.proofs import check_bundle, make_bundle
from bastion.audit.verify import verify_log
from bastion.store.audit import SearchFilter
from bastion.store.audit_sqlite import SqliteAuditStore

__all__ = ["run_demo"]

Say = Callable[[str], None]


def _text(result: mt.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, mt.TextContent))


async def run_demo(workdir: Path, home: Path, say: Say) -> dict[str, Any]:
    """Run the scripted session; returns what happened, for the caller (and the tests) to check."""
    notes = workdir / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "welcome.txt").write_text("Bastion sits between MCP clients and servers.\n", encoding="utf-8")
    (notes / "notes..v2.txt").write_text("A second version, with two dots in its name.\n", encoding="utf-8")
    (workdir / "secret.txt").write_text("outside the notes directory\n", encoding="utf-8")
    env = {**os.environ, "BASTION_HOME": str(home)}
    bastion = [sys.executable, "-m", "bastion", "wrap", "--name", "notes", "--fs-read", str(notes), "--deny", "crash"]
    bastion.append("--")
    server = [sys.executable, "-m", "bastion.demo.server", str(notes)]
    params = StdioServerParameters(command=bastion[0], args=[*bastion[1:], *server], env=env)
    seen: dict[str, Any] = {}
    say(f"Starting Bastion wrapping the demo notes server (state in {home})")
    say("  $ " + " ".join(["bastion", *bastion[3:], "python -m bastion.demo.server", str(notes)]))
    seen_progress: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen_progress.append(progress)

    async with Client(params, mode="legacy") as client:
        info = client.server_info
        say(
            f"Connected through Bastion: server {info.name if info else '?'} {info.version if info else ''}, "
            f"protocol {client.protocol_version}"
        )
        tools = (await client.list_tools()).tools
        seen["tools"] = [tool.name for tool in tools]
        say(f"tools/list -> {', '.join(seen['tools'])}")
        say("  (crash is denied and write_note is a write tool on a read-only server: neither is even listed)")
        echo = await client.call_tool("echo", {"text": "hello through Bastion"})
        seen["echo"] = _text(echo)
        say(f"tools/call echo -> {seen['echo']!r}")
        note = await client.call_tool("read_note", {"path": "welcome.txt"})
        seen["read_note"] = _text(note)
        say(f"tools/call read_note welcome.txt -> {seen['read_note'].strip()!r}")
        await _path_escape(client, say, seen)
        countdown = await client.call_tool("countdown", {"start": 5}, progress_callback=on_progress)
        seen["countdown"] = _text(countdown)
        seen["progress"] = seen_progress
        say(f"tools/call countdown 5 -> {seen['countdown']!r} with {len(seen_progress)} progress notifications relayed")
        try:
            await client.call_tool("crash", {})
            seen["crash"] = "allowed"
        except MCPError as exc:
            seen["crash"] = exc.error.code
            say(f"tools/call crash -> refused: {exc.error.message} (JSON-RPC {exc.error.code})")
        prompt = await client.get_prompt("summarize_note", {"name": "welcome.txt"})
        seen["prompt"] = len(prompt.messages)
        say(f"prompts/get summarize_note -> {len(prompt.messages)} message(s)")
    say("Session closed; Bastion stopped the server (it ran inside a bubblewrap sandbox: only the notes")
    say("  directory and its own runtime were visible, no network, no home directory, no other secrets).")
    seen |= await _governance(workdir, notes, home, env, say)
    return seen


async def _governance(workdir: Path, notes: Path, home: Path, env: dict[str, str], say: Say) -> dict[str, Any]:
    """Pins, approvals and alerts, then the record: the log verified and the evidence pack built."""
    return {
        "rug_pull": await rug_pull(workdir, notes, env, say),
        "approval": await approval(workdir, notes, env, say),
        "alerts": await watching(workdir, notes, env, say),
        "audit": show_audit(home, say),
        "evidence": await evidence(workdir, home, env, say),
    }


async def evidence(workdir: Path, home: Path, env: dict[str, str], say: Say) -> Path:
    """The evidence pack for today's activity: what an auditor receives and can re-verify offline."""
    today = time.strftime("%Y-%m-%d", time.gmtime())
    out = workdir / "evidence"
    await _bastion(env, "report", "--period", f"{today}..{today}", "--framework", "all", "--out", str(out))
    say("")
    say(f"Evidence pack (SOC 2 and HIPAA) for {today}: {out / 'index.html'}")
    if (out / "report.pdf").exists():
        say(f"  and its PDF: {out / 'report.pdf'}")
    say(f'  an auditor re-checks it offline: bastion report verify {out} --key "$(cat keys/audit-verifiers.txt)"')
    return out


async def rug_pull(workdir: Path, notes: Path, env: dict[str, str], say: Say) -> dict[str, Any]:
    """Pin the server, let it change a tool's description behind our back, and watch it be blocked."""
    config = workdir / "bastion.toml"
    body = f'[servers.notes]\ncommand = "{sys.executable}"\nargs = ["-m", "bastion.demo.server", "{notes}"]\n'
    body += f'fs_read = ["{notes}"]\n'
    config.write_text(body, encoding="utf-8")
    say("")
    say("Pinning: `bastion pin` records a hash of every tool definition in bastion.lock.")
    pinned = await _bastion(env, "pin", "--config", str(config))
    say("  " + pinned.splitlines()[0])
    say("The server now changes echo's description to carry hidden instructions (a rug pull).")
    config.write_text(body + 'env = { DEMO_RUGPULL = "1" }\n', encoding="utf-8")
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "bastion", "run", "--config", str(config), "--log-level", "error"], env=env
    )
    async with Client(params, mode="legacy") as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
    say(f"tools/list -> {', '.join(names)}  (echo is hidden: it changed since it was pinned)")
    review = await _bastion(env, "review", "--reject", "--reason", "poisoned description", "--config", str(config))
    say("`bastion review --reject` shows the change, and it stays blocked:")
    for line in review.splitlines():
        if line.startswith(("server ", "+", "-")) and not line.startswith(("+++", "---")):
            say(f"    {line}")
    return {"tools": names, "review": review}


async def approval(workdir: Path, notes: Path, env: dict[str, str], say: Say) -> dict[str, Any]:
    """A write that waits for a person, approved from "another terminal" (the CLI, run here)."""
    config = workdir / "approvals.toml"
    config.write_text(
        f'[approvals]\nchannels = ["cli", "dashboard"]\ntimeout = 60\n'
        f'[servers.notes]\ncommand = "{sys.executable}"\nargs = ["-m", "bastion.demo.server", "{notes}"]\n'
        f'fs_write = ["{notes}"]\ngrants = ["write"]\n[servers.notes.tools]\napprove = ["write_note"]\n',
        encoding="utf-8",
    )
    say("")
    say("Approval: write_note is granted but must wait for a person (tools.approve).")
    run = ["-m", "bastion", "run", "--config", str(config), "--log-level", "error"]
    written: list[str] = []
    approval_id = ""
    async with Client(StdioServerParameters(command=sys.executable, args=run, env=env), mode="legacy") as client:
        async with anyio.create_task_group() as tasks:

            async def write() -> None:
                result = await client.call_tool("write_note", {"path": "todo.txt", "content": "ship it"})
                written.append(_text(result))

            tasks.start_soon(write)
            pending: list[dict[str, Any]] = []
            with anyio.fail_after(30):
                while not pending:
                    await anyio.sleep(0.2)
                    pending = json.loads(await _bastion(env, "approvals", "list", "--json") or "[]")
            approval_id = str(pending[0]["id"])
            say(f"  the call waits; `bastion approvals list` shows {approval_id}: {pending[0]['why']}")
            say(f"  from another terminal: bastion approvals approve {approval_id} --reason 'planned change'")
            say("  (or sign in to the dashboard: bastion dashboard, with a token from")
            say("   bastion tokens create --client NAME --role approver)")
            await _bastion(env, "approvals", "approve", approval_id, "--reason", "planned change")
    say(f"tools/call write_note -> {written[0]!r} once approved")
    return {"written": written, "id": approval_id}


class _Receiver(BaseHTTPRequestHandler):
    """The demo's stand-in for Slack or a pager: it prints what arrives."""

    received: list[dict[str, Any]] = []  # noqa: RUF012 (one receiver per demo run)

    def do_POST(self) -> None:
        _Receiver.received.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0")))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


async def watching(workdir: Path, notes: Path, env: dict[str, str], say: Say) -> list[dict[str, Any]]:
    """A first-use alert, then a silence alert, arriving at a local webhook the demo starts."""
    _Receiver.received = []
    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/alerts"
    config = workdir / "watch.toml"
    config.write_text(
        f'[servers.notes]\ncommand = "{sys.executable}"\nargs = ["-m", "bastion.demo.server", "{notes}"]\n'
        '[watch.checks.notes-agent]\nperiod = 2\ngrace = 1\nserver = "notes"\n'
        f'[[watch.sinks]]\nkind = "webhook"\nurl = "{url}"\n',
        encoding="utf-8",
    )
    say("")
    say(f"Watch: alerts go to a webhook the demo listens on ({url}); the agent is expected every 2 s.")
    run = ["-m", "bastion", "run", "--config", str(config), "--log-level", "error"]
    try:
        async with Client(StdioServerParameters(command=sys.executable, args=run, env=env), mode="legacy") as client:
            await client.call_tool("add", {"a": 2, "b": 3})
            with anyio.fail_after(30):
                while len(_Receiver.received) < 2:  # noqa: ASYNC110 (the receiver runs in its own thread)
                    await anyio.sleep(0.1)
    finally:
        receiver.shutdown()
        thread.join(timeout=5)
        receiver.server_close()
    for alert in _Receiver.received[:2]:
        say(f"  webhook <- [{alert['severity']}] {alert['summary']}")
    say("  (see them with `bastion alerts list`; triage with `bastion alerts ack KEY --note …`)")
    return _Receiver.received


async def _bastion(env: dict[str, str], *args: str) -> str:
    done = await anyio.run_process([sys.executable, "-m", "bastion", *args], env=env, check=False)
    return done.stdout.decode("utf-8", "replace")


async def _path_escape(client: Client, say: Say, seen: dict[str, Any]) -> None:
    """Policy at work: a path that leaves the notes directory is refused, its look-alike is not."""
    try:
        await client.call_tool("read_note", {"path": "../secret.txt"})
        seen["escape"] = "allowed"
    except MCPError as exc:
        seen["escape"] = exc.error.code
        say(f"tools/call read_note ../secret.txt -> refused: {exc.error.message}")
    neighbour = await client.call_tool("read_note", {"path": "notes..v2.txt"})
    seen["neighbour"] = _text(neighbour)
    say(f"tools/call read_note notes..v2.txt -> {seen['neighbour'].strip()!r}  (its look-alike neighbour is fine)")


def show_audit(home: Path, say: Say) -> dict[str, Any]:
    """Verify the log the session wrote, print its checkpoint and prove one entry's inclusion."""
    store = SqliteAuditStore.open(home)
    verifiers = Keyring(home, "").verifiers()
    reports = [
        verify_log(log, store.raw_entries(log.log_id), store.checkpoints(log.log_id), verifiers) for log in store.logs()
    ]
    entries = sum(report.size for report in reports)
    ok = all(report.ok for report in reports)
    say(f"Audit log: {entries} entries verified against their signed checkpoints: {'ok' if ok else 'FAILED'}")
    [(log_id, echo)] = store.search(SearchFilter(kind="call.intent", tool="echo", limit=1))
    latest = store.latest_checkpoint(log_id)
    assert latest is not None
    say("Latest signed checkpoint (C2SP tlog-checkpoint, Ed25519):")
    for line in latest.note.rstrip("\n").split("\n"):
        say(f"    {line}")
    bundle = make_bundle(store, log_id, echo.idx, latest)
    check_bundle(bundle, verifiers)
    say(f"Inclusion proof of entry {echo.idx} (the echo call's intent) under that checkpoint, checked:")
    say(f"    {len(bundle['proof'])} hashes: " + " ".join(node[:12] + "…" for node in bundle["proof"]))
    say(
        f"    check it yourself: bastion audit prove {echo.idx} --log {log_id} > proof.json && bastion audit check-proof proof.json"
    )
    store.close()
    return {"ok": ok, "entries": entries, "proof": bundle}

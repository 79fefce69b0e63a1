"""The dashboard in a real browser (Playwright driving the machine's Chromium): a pending call
appears on its own, a click approves it, the client's call completes, and the audit log names
the approver. Screenshots of each page go to test-artifacts/screenshots/."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import mcp_types as mt
import pytest
from mcp.shared.exceptions import MCPError
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bastion.store.sqlite import StateStore
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import free_port, through_http, wait_until_blocking

CHROMIUM = os.environ.get("BASTION_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).parents[2] / "test-artifacts" / "screenshots"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-background-networking"]
        )
        yield launched
        launched.close()


@contextmanager
def gateway(home: Path, config: Path, port: int) -> Iterator[str]:
    """`bastion serve` for this test, with an agent token; waits without an event loop (Playwright's
    sync API holds this thread's)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = StateStore.open(home)
    token = store.create_token("tester", 0.0, None)
    store.close()
    process = subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=child_env(home))
    try:
        wait_until_blocking(lambda: accepting(port), timeout=30, what="bastion serve to listen")
        yield token
    finally:
        process.terminate()
        process.wait(timeout=15)


def accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_pending_call_is_approved_by_clicking_and_the_call_completes(
    browser: Browser, home: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n[approvals]\nchannels = ["dashboard"]\ntimeout = 60\n'
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n'
        '[servers.notes.tools]\napprove = ["echo"]\n',
        encoding="utf-8",
    )
    with gateway(home, config, port) as agent_token:
        store = StateStore.open(home)
        approver = store.create_token("alice", 0.0, None, role="approver")
        store.close()
        page = browser.new_page()
        page.goto(f"{base}/approvals")
        expect(page).to_have_url(f"{base}/login")
        shot(page, "login")
        page.fill("#token", agent_token)
        page.click("button[type=submit]")
        expect(page.get_by_role("alert")).to_contain_text("not valid for the dashboard")
        page.fill("#token", approver)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Overview")
        page.click("nav >> text=Approvals")
        expect(page.locator("h1")).to_have_text("Approvals")
        expect(page.locator(".empty")).to_have_text("Nothing is waiting.")
        shot(page, "approvals-empty")

        results: list[str] = []

        async def call() -> None:
            async with through_http(f"{base}/mcp", agent_token) as client:
                result = await client.call_tool("echo", {"text": "approved in a browser"})
                results.append("".join(b.text for b in result.content if isinstance(b, mt.TextContent)))

        with anyio.from_thread.start_blocking_portal() as portal:
            pending = portal.start_task_soon(call)
            # The page was loaded before the call: the row arrives through the live update.
            row = page.locator("tr.pending a", has_text="notes.echo")
            expect(row).to_be_visible(timeout=20_000)
            shot(page, "approvals-pending")
            row.click()
            expect(page.locator("#status")).to_have_text("pending")
            expect(page.locator("pre.arguments")).to_contain_text("approved in a browser")
            shot(page, "approval-detail")
            page.fill("#reason", "checked the text")
            page.click("button.approve")
            expect(page.locator("#status")).to_have_text("approved")
            expect(page.locator("#decided-by")).to_contain_text("alice via dashboard")
            shot(page, "approval-decided")
            pending.result(timeout=30)
        assert results == ["approved in a browser"]
    audit = subprocess.run(
        [*BASTION, "audit", "search", "--kind", "approval.decided", "--json"],
        capture_output=True,
        text=True,
        env=child_env(home),
        check=True,
    )
    [entry] = [json.loads(line) for line in audit.stdout.splitlines()]
    assert entry["by"] == "alice"
    assert entry["channel"] == "dashboard"


def test_the_dashboard_refuses_a_forged_form_and_sends_strict_headers(
    browser: Browser, home: Path, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n[servers.notes]\ncommand = "{PYTHON}"\n'
        f'args = ["-m", "bastion.demo.server", "{tmp_path}"]\n',
        encoding="utf-8",
    )
    with gateway(home, config, port):
        page = browser.new_page()
        response = page.goto(f"http://127.0.0.1:{port}/login")
        assert response is not None
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        forged = page.request.post(f"http://127.0.0.1:{port}/approvals/apr_x/decide", form={"action": "approve"})
        assert forged.url.endswith("/login")  # no session: sent to sign in, nothing decided


def test_every_page_renders_real_data_filters_work_and_an_alert_is_acknowledged_by_clicking(
    browser: Browser, home: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    (tmp_path / "n.txt").write_text("note", encoding="utf-8")
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n'
        f'fs_read = ["{tmp_path}"]\n',
        encoding="utf-8",
    )
    with gateway(home, config, port) as agent_token:
        store = StateStore.open(home)
        admin = store.create_token("root-admin", 0.0, None, role="admin")
        store.close()

        async def session() -> None:
            async with through_http(f"{base}/mcp", agent_token) as client:
                await client.call_tool("echo", {"text": "secret-looking payload"})
                await client.call_tool("read_note", {"path": "n.txt"})
                result = await client.call_tool("add", {"a": 1, "b": 2})
                assert not result.is_error
                with pytest.raises(MCPError):  # refused by policy: the denial the pages show
                    await client.call_tool("read_note", {"path": "../../etc/passwd"})

        with anyio.from_thread.start_blocking_portal() as portal:
            portal.call(session)
        page = browser.new_page()
        page.goto(f"{base}/login")
        page.fill("#token", admin)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Overview")
        expect(page.locator("#calls-24h")).to_have_text("3")
        expect(page.locator("#denials-24h")).to_have_text("1")
        expect(page.locator("svg.chart rect.bar-ok")).not_to_have_count(0)
        shot(page, "overview")

        page.click("nav >> text=Inventory")
        expect(page.locator("section.server h2")).to_contain_text("notes")
        expect(page.locator(".finding")).to_contain_text(["not pinned"])
        shot(page, "inventory")

        page.click("nav >> text=Calls")
        expect(page.locator("tr.call")).to_have_count(4)
        page.select_option("#f-decision", "deny")
        page.click("form.filters button")
        expect(page.locator("tr.call")).to_have_count(1)
        expect(page.locator("tr.call")).to_contain_text("paths.outside_roots")
        shot(page, "calls-filtered")
        page.goto(f"{base}/calls?tool=echo")
        expect(page.locator("tr.call")).to_have_count(1)
        page.click("tr.call a")
        expect(page.locator("#payload")).to_contain_text("secret-looking payload")
        expect(page.locator("#decision")).to_contain_text("read")
        expect(page.locator("#proof")).to_contain_text("checkpoint", timeout=10_000)
        shot(page, "call-detail")

        page.click("nav >> text=Alerts")
        row = page.locator("tr.alert", has_text="echo")
        expect(row).to_have_count(1)
        row.locator("input[name=note]").fill("expected: demo traffic")
        row.locator("button[value=ack]").click()

        def acknowledged() -> bool:
            if page.locator("tr.alert", has_text="echo").locator(".alert-state").inner_text() == "acknowledged":
                return True
            page.reload()  # the page shows the state as it was read: ask again
            return False

        wait_until_blocking(acknowledged, timeout=20, what="the alert to show as acknowledged", every=0.2)
        expect(page.locator("tr.alert", has_text="echo").locator(".alert-state")).to_have_text("acknowledged")
        shot(page, "alerts")

        page.click("nav >> text=Integrity")
        page.click("#verify-now")
        expect(page.locator("#verify-state")).to_contain_text("every log verifies", timeout=30_000)
        shot(page, "integrity")
    triage = subprocess.run(
        [*BASTION, "audit", "search", "--kind", "alert.triage", "--json"],
        capture_output=True,
        text=True,
        env=child_env(home),
        check=True,
    )
    [entry] = [json.loads(line) for line in triage.stdout.splitlines()]
    assert (entry["by"], entry["channel"]) == ("root-admin", "dashboard")
    assert entry["note"] == "expected: demo traffic"

"""The dashboard's Shadow page in a real browser: a gateway in monitor mode with a candidate policy
serves real calls, and the page shows, call by call, what the candidate would have refused or
allowed differently, linking each to its evidence; the Calls page marks the monitored refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from bastion.store.sqlite import StateStore
from tests.conftest import PYTHON
from tests.e2e.support import free_port, through_http
from tests.e2e.test_dashboard_browser import CHROMIUM, gateway, shot

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


def test_the_shadow_page_shows_what_the_candidate_would_decide_differently(
    browser: Browser, home: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    notes = f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n'
    notes += f'fs_read = ["{tmp_path}"]\n'
    (tmp_path / "candidate.toml").write_text(
        notes + f'fs_write = ["{tmp_path}"]\ngrants = ["write"]\n[servers.notes.tools]\ndeny = ["add"]\n',
        encoding="utf-8",
    )
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n[policy]\nmode = "monitor"\ncandidate = "candidate.toml"\n' + notes,
        encoding="utf-8",
    )
    with gateway(home, config, port) as agent_token:
        store = StateStore.open(home)
        viewer = store.create_token("vera", 0.0, None, role="auditor")
        store.close()

        async def session() -> None:
            async with through_http(f"{base}/mcp", agent_token) as client:
                assert not (await client.call_tool("add", {"a": 1, "b": 2})).is_error
                assert not (await client.call_tool("echo", {"text": "same under both"})).is_error
                # Refused by the live policy, let through in monitor mode: the server gets the call, but
                # the sandbox still mounts its roots read-only (monitor mode never turns the sandbox off).
                written = await client.call_tool("write_note", {"path": "new.txt", "content": "monitored"})
                assert written.is_error

        with anyio.from_thread.start_blocking_portal() as portal:
            portal.call(session)
        assert not (tmp_path / "new.txt").exists()
        page = browser.new_page()
        page.goto(f"{base}/login")
        page.fill("#token", viewer)
        page.click("button[type=submit]")
        page.click("nav >> text=Shadow")
        expect(page.locator("h1")).to_contain_text("Shadow")
        expect(page.locator("#shadow-summary")).to_contain_text("3 calls decided under both policies; 2 differently")
        rows = page.locator("tr.call")
        expect(rows).to_have_count(2)
        expect(page.locator("tr.decision-deny")).to_contain_text("tools.deny")
        expect(page.locator("tr.decision-allow")).to_contain_text("monitor: not enforced")
        shot(page, "shadow")
        page.click("tr.decision-deny a")
        expect(page.locator("body")).to_contain_text("candidate")

        page.goto(f"{base}/calls?tool=write_note")
        expect(page.locator("tr.call")).to_contain_text("deny (monitor: not enforced)")
        page.close()  # the Calls page holds a live-update stream open; the gateway's shutdown would wait on it

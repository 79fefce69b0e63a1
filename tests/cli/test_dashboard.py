"""`bastion dashboard` says where it is as a plain line on stderr, not as a logged warning."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bastion.web.serve import dashboard_banner
from tests.conftest import BASTION, child_env
from tests.e2e.support import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_the_url_is_announced_on_stderr_as_a_plain_line(home: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    dashboard = await anyio.open_process([*BASTION, "dashboard", "--listen", f"127.0.0.1:{port}"], env=child_env(home))
    assert dashboard.stderr is not None
    received = b""
    try:
        with anyio.fail_after(60):
            while url.encode() not in received:
                received += await dashboard.stderr.receive()
    finally:
        dashboard.terminate()
        await dashboard.wait()
    [line] = [line for line in received.decode().splitlines() if url in line]
    assert line == dashboard_banner("127.0.0.1", port)
    assert line.startswith(f"bastion: dashboard at {url} ")
    assert "WARNING" not in received.decode()


def test_an_ipv6_address_is_bracketed_in_the_url() -> None:
    assert dashboard_banner("::1", 8766).startswith("bastion: dashboard at http://[::1]:8766/ ")

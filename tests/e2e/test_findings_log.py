"""Every screening finding is also a structured line on stderr, so a plain `bastion wrap` in a
client's config shows what it saw in the client's own logs, even when the action is `flag`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.test_first_run import INITIALIZE, exchange
from tests.e2e.test_screening import POISONED, config

pytestmark = [pytest.mark.e2e]


def test_a_flagged_description_is_one_stderr_line_with_rule_server_and_tool(home: Path, tmp_path: Path) -> None:
    path = config(tmp_path, 'listing = "flag"\n')
    frames: list[dict[str, object]] = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    done = exchange(home, ["run", "--config", str(path)], frames)
    replies = {reply["id"]: reply for reply in map(json.loads, done.stdout.splitlines())}
    assert "get_weather" in {tool["name"] for tool in replies[2]["result"]["tools"]}  # flagged, not removed
    lines = [line for line in done.stderr.splitlines() if " finding " in line or line.startswith("finding ")]
    assert any(
        re.search(r"finding \S+ server=weather tool=get_weather in=tool severity=high", line) for line in lines
    ), lines
    assert str(POISONED) not in "\n".join(lines)

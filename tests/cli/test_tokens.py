"""`bastion tokens list` in an 80-column terminal: the client `revoke CLIENT` takes, and the times, whole."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.cli.conftest import bastion, on_one_line, too_wide

CLIENT = "claude-desktop"
LONG_CLIENT = "claude-desktop-on-the-laptop-of-alice-in-accounting"


def parts(moment: float) -> tuple[str, str]:
    """The date and the time of day as `tokens list` writes them (they may wrap at the space between)."""
    return time.strftime("%Y-%m-%d", time.gmtime(moment)), time.strftime("%H:%M:%SZ", time.gmtime(moment))


def create(home: Path, client: str, *args: str) -> None:
    done = bastion(home, "tokens", "create", "--client", client, *args)
    assert done.returncode == 0, done.stderr


def test_the_list_shows_clients_and_times_whole_within_80_columns(home: Path) -> None:
    create(home, CLIENT, "--servers", "filesystem,github,postgres", "--expires", "90d", "--role", "approver")
    create(home, "ci")
    listed = bastion(home, "tokens", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    times = [part for row in rows for moment in (row["created"], row["expires"]) if moment for part in parts(moment)]
    done = bastion(home, "tokens", "list")
    assert done.returncode == 0, done.stderr
    assert on_one_line(done.stdout, CLIENT, "ci", "postgres", *times) == []
    assert "…" not in done.stdout
    assert too_wide(done.stdout) == []


def test_a_client_too_long_for_a_row_is_still_printed_whole(home: Path) -> None:
    create(home, LONG_CLIENT, "--servers", "filesystem,github,postgres", "--expires", "90d")
    done = bastion(home, "tokens", "list")
    assert done.returncode == 0, done.stderr
    assert on_one_line(done.stdout, LONG_CLIENT) == []
    assert "…" not in done.stdout
    assert too_wide(done.stdout) == []


def test_no_tokens_is_an_empty_json_list(home: Path) -> None:
    done = bastion(home, "tokens", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []

"""Long commands show progress on a terminal and stay quiet when piped: `audit verify`, `report`,
`inventory` and `pin` share one helper, which draws on stderr only when it is a terminal."""

from __future__ import annotations

import io
import os
import pty
import select
from pathlib import Path

from rich.console import Console

from bastion.cli._progress import on_terminal, progress
from tests.cli.conftest import bastion
from tests.cli.test_audit import record_some
from tests.conftest import PYTHON
from tests.e2e.test_screening import POISONED

NOISE = ("\x1b", "verifying", "connecting to", "starting 1 servers", "building the evidence pack", "⠋")


def _quiet(text: str) -> bool:
    return not any(mark in text for mark in NOISE)


def test_piped_the_helper_writes_nothing() -> None:
    sink = io.StringIO()
    console = Console(file=sink)
    assert not on_terminal(console)
    with progress("verifying", "entries", console=console) as update:
        update(1, 2)
    assert sink.getvalue() == ""


def test_on_a_terminal_the_helper_draws_a_bar() -> None:
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", encoding="utf-8", closefd=False) as terminal:
            console = Console(file=terminal, width=80)
            assert on_terminal(console)
            with progress("verifying", "entries", console=console) as update:
                update(1, 2)
            terminal.flush()
        drawn = b""
        while select.select([leader], [], [], 0.5)[0]:
            chunk = os.read(leader, 65536)
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
        os.close(follower)
    assert b"verifying" in drawn


def test_audit_verify_and_report_piped_print_no_progress(home: Path, tmp_path: Path) -> None:
    record_some(home, tmp_path)
    verified = bastion(home, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert _quiet(verified.stdout)
    assert verified.stderr == ""
    pack = bastion(home, "report", "--period", "2000-01-01..2100-01-01", "--out", str(tmp_path / "pack"), "--no-pdf")
    assert pack.returncode == 0, pack.stderr
    assert _quiet(pack.stdout)
    assert _quiet(pack.stderr)


def test_inventory_and_pin_piped_print_no_progress(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text(f'[servers.weather]\ncommand = "{PYTHON}"\nargs = ["{POISONED}"]\n', encoding="utf-8")
    listed = bastion(home, "inventory", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    assert _quiet(listed.stdout)
    assert _quiet(listed.stderr)
    pinned = bastion(home, "pin", "--config", str(config))
    assert pinned.returncode == 0, pinned.stderr
    assert _quiet(pinned.stdout)
    assert _quiet(pinned.stderr)

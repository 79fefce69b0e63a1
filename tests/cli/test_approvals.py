"""`bastion approvals` in an 80-column terminal: the id `approve ID` takes is never cut."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bastion.approvals.model import Approval, new_id
from bastion.approvals.store import open_approvals
from bastion.cli._common import who
from bastion.store.home import ensure_home
from tests.cli.conftest import USAGE, bastion, on_one_line, too_wide

WHY = "'write_file' is in servers.filesystem.tools.approve, and the path is outside every granted root"


def waiting(home: Path, count: int = 2) -> list[str]:
    store = open_approvals(ensure_home(home), None)
    now = time.time()
    ids = [new_id() for _ in range(count)]
    try:
        for approval_id in ids:
            store.create(
                Approval(
                    approval_id, now, now + 600, "bastion", "claude-desktop-on-alices-laptop", "stdio",
                    "filesystem", "write_file", "write", '{\n  "path": "/srv/data/report.md"\n}', WHY,
                )
            )  # fmt: skip
    finally:
        store.close()
    return ids


def test_the_list_shows_every_id_whole_within_80_columns(home: Path) -> None:
    ids = waiting(home)
    done = bastion(home, "approvals", "list")
    assert done.returncode == 0, done.stderr
    assert on_one_line(done.stdout, *ids) == []
    assert "…" not in done.stdout
    assert too_wide(done.stdout) == []


def test_the_list_and_one_approval_are_json_documents(home: Path) -> None:
    ids = waiting(home)
    listed = bastion(home, "approvals", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(row["id"] for row in json.loads(listed.stdout)) == sorted(ids)
    shown = bastion(home, "approvals", "show", ids[0], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["why"] == WHY


def test_an_unknown_id_is_refused(home: Path) -> None:
    waiting(home, 1)
    assert bastion(home, "approvals", "show", "apr_0000000000000000").returncode == USAGE


def test_an_approval_names_the_person_plainly_and_the_cli_as_its_channel(home: Path) -> None:
    [approval_id] = waiting(home, 1)
    done = bastion(home, "approvals", "approve", approval_id, "--for", "10m", "--reason", "looks fine")
    assert done.returncode == 0, done.stderr
    store = open_approvals(ensure_home(home), None)
    try:
        decided = store.get(approval_id)
    finally:
        store.close()
    assert decided is not None
    verdict = decided.verdict
    assert verdict is not None
    assert (verdict.by, verdict.channel, verdict.scope.value) == (who(), "cli", "window")
    assert verdict.until == verdict.at + 600


def test_a_window_that_is_not_a_duration_is_refused_naming_the_flag(home: Path) -> None:
    [approval_id] = waiting(home, 1)
    done = bastion(home, "approvals", "approve", approval_id, "--for", "soon")
    assert done.returncode == USAGE
    assert "--for: 'soon' is not a duration" in done.stderr

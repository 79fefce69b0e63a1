"""`bastion alerts` in an 80-column terminal: every key whole, since `ack KEY` takes it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bastion.audit.entry import Kind
from bastion.cli._common import who
from bastion.store.audit import SearchFilter
from bastion.store.audit_open import open_store
from bastion.store.home import ensure_home
from bastion.watch.store import AlertRow, open_watch
from tests.cli.conftest import USAGE, bastion, on_one_line, too_wide

SUMMARY = (
    "first call of write tool 'write_file' on server 'filesystem' (by 'claude-desktop'), "
    "outside the learning window and with arguments nobody has seen before"
)
KEYS = (
    "first_use:server=filesystem,tool=write_file",
    "screen:server=filesystem,what=tool,name=move_file",
    "silence:check=nightly-report-agent",
)


def raise_alerts(home: Path) -> None:
    store = open_watch(ensure_home(home), None)
    now = time.time()
    try:
        for number, key in enumerate(KEYS):
            state = "acknowledged" if number == 1 else "open"
            store.save_alert(
                AlertRow(key, state, "critical", key.split(":")[0], "filesystem", SUMMARY, now, now, 3, {})
            )
    finally:
        store.close()


def test_the_list_shows_every_key_whole_within_80_columns(home: Path) -> None:
    raise_alerts(home)
    done = bastion(home, "alerts", "list")
    assert done.returncode == 0, done.stderr
    assert on_one_line(done.stdout, *KEYS) == []
    assert "…" not in done.stdout
    assert too_wide(done.stdout) == []


def test_the_list_and_one_alert_are_json_documents(home: Path) -> None:
    raise_alerts(home)
    listed = bastion(home, "alerts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(row["key"] for row in json.loads(listed.stdout)) == sorted(KEYS)
    shown = bastion(home, "alerts", "show", KEYS[1], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "acknowledged"


def test_show_prints_the_alert_for_a_person_with_its_key_whole(home: Path) -> None:
    raise_alerts(home)
    shown = bastion(home, "alerts", "show", KEYS[1])
    assert shown.returncode == 0, shown.stderr
    assert on_one_line(shown.stdout, KEYS[1]) == []


def test_an_unknown_key_is_refused(home: Path) -> None:
    raise_alerts(home)
    assert bastion(home, "alerts", "show", "first_use:server=nope").returncode == USAGE
    assert bastion(home, "alerts", "ack", "first_use:server=nope").returncode == USAGE


def test_a_triage_names_the_person_plainly_and_records_the_cli_as_its_channel(home: Path) -> None:
    raise_alerts(home)
    done = bastion(home, "alerts", "ack", KEYS[0], "--note", "on it")
    assert done.returncode == 0, done.stderr
    watch = open_watch(ensure_home(home), None)
    try:
        [triage] = watch.pending_triage()
    finally:
        watch.close()
    assert (triage.key, triage.action, triage.by) == (KEYS[0], "ack", who())
    audit = open_store(home, None)
    try:
        [(_, row)] = audit.search(SearchFilter(kind=Kind.ALERT_TRIAGE.value))
    finally:
        audit.close()
    entry = json.loads(row.entry)
    assert (entry["alert"], entry["by"], entry["channel"], entry["note"]) == (KEYS[0], who(), "cli", "on it")

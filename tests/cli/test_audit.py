"""`bastion audit tail` and `search` in an 80-column terminal: each entry's time and address
(`LOG/INDEX`, what `audit prove INDEX --log LOG` takes) whole."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import bastion, on_one_line, too_wide


def record_some(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text('[servers.filesystem]\ncommand = "x"\n', encoding="utf-8")
    for args in (
        ("tokens", "create", "--client", "claude-desktop-on-alices-laptop"),
        ("policy", "kill", "filesystem", "write_file", "--reason", "incident 42", "--config", str(config)),
    ):
        done = bastion(home, *args)
        assert done.returncode == 0, done.stderr


def entries(home: Path, *args: str) -> list[dict[str, object]]:
    done = bastion(home, "audit", *args, "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_tail_shows_every_time_and_address_whole_within_80_columns(home: Path, tmp_path: Path) -> None:
    record_some(home, tmp_path)
    recorded = entries(home, "tail")
    assert len(recorded) >= 2
    done = bastion(home, "audit", "tail")
    assert done.returncode == 0, done.stderr
    wanted = [str(entry["time"]) for entry in recorded] + [f"{entry['log']}/{entry['index']}" for entry in recorded]
    assert on_one_line(done.stdout, *wanted, "policy.change", "filesystem.write_file") == []
    assert "…" not in done.stdout
    assert too_wide(done.stdout) == []


def test_search_prints_the_same_table(home: Path, tmp_path: Path) -> None:
    record_some(home, tmp_path)
    [killed] = entries(home, "search", "--kind", "policy.change")
    done = bastion(home, "audit", "search", "--kind", "policy.change")
    assert done.returncode == 0, done.stderr
    assert on_one_line(done.stdout, str(killed["time"]), f"{killed['log']}/{killed['index']}") == []
    assert too_wide(done.stdout) == []

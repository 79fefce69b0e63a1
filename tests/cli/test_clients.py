"""`bastion init` and `bastion import` write a bastion.toml whole or not at all: a new one is
private, one replaced with --force keeps its mode, and an existing one is never overwritten
without --force."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from bastion.config.load import parse_config
from bastion.config.starter import starter_toml
from tests.cli.conftest import bastion


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_a_private_starter_and_refuses_to_overwrite_it(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    assert bastion(home, "init", "--path", str(config)).returncode == 0
    assert config.read_text(encoding="utf-8") == starter_toml()
    assert mode(config) == 0o600
    config.write_text("# mine\n", encoding="utf-8")
    again = bastion(home, "init", "--path", str(config))
    assert again.returncode != 0
    assert "--force" in again.stderr
    assert config.read_text(encoding="utf-8") == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bastion.schema.json", "bastion.toml"]  # no temporary left


def test_init_with_force_replaces_the_file_and_keeps_its_mode(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text("# shared with the team\n", encoding="utf-8")
    config.chmod(0o640)
    assert bastion(home, "init", "--path", str(config), "--force").returncode == 0
    assert config.read_text(encoding="utf-8") == starter_toml()
    assert mode(config) == 0o640


def test_import_writes_a_config_that_loads(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "claude_desktop_config.json"
    servers = {"notes": {"command": "/usr/bin/true", "args": ["--root", str(tmp_path)]}}
    source.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    out = tmp_path / "bastion.toml"
    done = bastion(home, "import", str(source), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "notes" in done.stdout
    assert mode(out) == 0o600
    assert list(parse_config(out.read_text(encoding="utf-8"), out).servers) == ["notes"]

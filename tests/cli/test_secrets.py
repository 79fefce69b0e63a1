"""`bastion secrets list` and `identity show` in an 80-column terminal: server and secret names whole."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import USAGE, bastion, on_one_line, too_wide

NAMES = ("GITHUB_PERSONAL_ACCESS_TOKEN", "OPENAI_API_KEY")


def set_secrets(home: Path, cwd: Path) -> None:
    for name in NAMES:
        done = bastion(home, "secrets", "set", "filesystem", name, stdin="s3cret-value\n", cwd=cwd)
        assert done.returncode == 0, done.stderr


def test_the_list_shows_server_and_secret_names_whole_within_80_columns(home: Path, tmp_path: Path) -> None:
    set_secrets(home, tmp_path)
    done = bastion(home, "secrets", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert on_one_line(done.stdout, "filesystem", *NAMES) == []
    assert "…" not in done.stdout
    assert too_wide(done.stdout) == []
    assert "s3cret-value" not in done.stdout


def test_the_list_and_an_identity_are_json_documents(home: Path, tmp_path: Path) -> None:
    set_secrets(home, tmp_path)
    listed = bastion(home, "secrets", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert sorted(row["name"] for row in json.loads(listed.stdout)) == sorted(NAMES)
    identity = bastion(home, "identity", "show", "filesystem", "--json", cwd=tmp_path)
    assert identity.returncode == 0, identity.stderr
    assert json.loads(identity.stdout)["server"] == "filesystem"


def test_a_server_missing_from_the_config_is_refused(home: Path, tmp_path: Path) -> None:
    (tmp_path / "bastion.toml").write_text('[servers.filesystem]\ncommand = "x"\n', encoding="utf-8")
    assert bastion(home, "secrets", "list", "nope", cwd=tmp_path).returncode == USAGE
    assert bastion(home, "identity", "show", "nope", cwd=tmp_path).returncode == USAGE

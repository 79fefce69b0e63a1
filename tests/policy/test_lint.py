"""`bastion policy check`: a valid config that still says something unwise gets named findings."""

from __future__ import annotations

from pathlib import Path

from bastion.config.load import parse_config
from bastion.policy.lint import Finding, lint


def findings(toml: str, home: str = "/nonexistent-home") -> list[tuple[str, str]]:
    return [(found.severity, found.where) for found in lint(parse_config(toml), home)]


def test_a_narrow_read_only_server_has_no_findings(tmp_path: Path) -> None:
    assert findings(f'[servers.fs]\ncommand = "x"\nfs_read = ["{tmp_path}"]\n') == []


def test_turning_read_only_off_is_a_warning_with_a_fix_and_its_consequences_follow() -> None:
    found = lint(parse_config('[servers.fs]\ncommand = "x"\nread_only = false\n'), "/h")
    assert [(f.severity, f.where) for f in found] == [
        ("warning", "servers.fs.read_only"),
        ("warning", "servers.fs.grants"),
        ("info", "servers.fs.fs_write"),
    ]
    assert found[0].fix.startswith("remove it")
    assert found[0].to_dict() == {
        "severity": "warning",
        "where": "servers.fs.read_only",
        "message": found[0].message,
        "fix": found[0].fix,
    }


def test_exec_without_a_command_allowlist_is_a_warning() -> None:
    assert ("warning", "servers.sh.grants") in findings('[servers.sh]\ncommand = "x"\ngrants = ["exec"]\n')
    allowed = '[servers.sh]\ncommand = "x"\ngrants = ["exec"]\n[servers.sh.commands]\nallow = {git = ["status"]}\n'
    assert ("warning", "servers.sh.grants") not in findings(allowed)


def test_a_root_that_is_not_a_directory_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    [found] = lint(parse_config(f'[servers.fs]\ncommand = "x"\nfs_read = ["{missing}"]\n'), "/h")
    assert found == Finding(
        "error", "servers.fs.fs_read", f"{str(missing)!r} is not a directory", "create it or fix the path"
    )


def test_a_root_that_exposes_a_whole_system_or_home_is_a_warning(tmp_path: Path) -> None:
    assert findings('[servers.fs]\ncommand = "x"\nfs_read = ["/etc"]\n') == [("warning", "servers.fs.fs_read")]
    assert findings(f'[servers.fs]\ncommand = "x"\nfs_read = ["{tmp_path}/"]\n', home=str(tmp_path)) == [
        ("warning", "servers.fs.fs_read")
    ]


def test_tool_rules_that_can_never_apply_are_named() -> None:
    toml = (
        '[servers.fs]\ncommand = "x"\n[servers.fs.tools]\nallow = ["read"]\ndisabled = ["write"]\napprove = ["write"]\n'
    )
    assert findings(toml) == [("warning", "servers.fs.tools.approve"), ("warning", "servers.fs.tools.approve")]


def test_client_grants_that_are_unreachable_or_redundant_are_named() -> None:
    toml = """
[servers.a]
command = "x"
grants = ["write"]
[servers.b]
command = "x"
[clients.alice]
servers = ["a"]
grants = { a = ["write"], b = ["write"] }
[clients.nobody]
servers = []
"""
    assert findings(toml) == [
        ("info", "servers.a.fs_write"),
        ("info", "clients.alice.grants.a"),
        ("warning", "clients.alice.grants.b"),
        ("warning", "clients.nobody.servers"),
    ]

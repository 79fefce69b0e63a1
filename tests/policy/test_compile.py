"""From `bastion.toml` to a `Policy`: enabled servers only, roots resolved once, clients' limits as sets."""

from __future__ import annotations

import os
from pathlib import Path

from bastion.config.load import parse_config
from bastion.policy.compile import compile_policy, server_policy
from bastion.types import RiskClass


def test_only_enabled_servers_get_rules() -> None:
    config = parse_config('[servers.on]\ncommand = "x"\n[servers.off]\ncommand = "x"\nenabled = false\n')
    assert set(compile_policy(config, {}).servers) == {"on"}


def test_a_tilde_root_resolves_against_the_given_home(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    config = parse_config('[servers.fs]\ncommand = "x"\nfs_read = ["~/notes"]\nfs_write = ["~/notes/out"]\n')
    rules = compile_policy(config, {"HOME": str(tmp_path)}).servers["fs"]
    assert rules.paths.read_roots == (str(tmp_path / "notes"),)
    assert rules.paths.write_roots == (str(tmp_path / "notes" / "out"),)
    assert rules.paths.base == str(tmp_path / "notes")
    assert rules.paths.home == str(tmp_path)
    assert rules.paths.section == "servers.fs"


def test_relative_paths_fall_back_to_the_servers_cwd_when_it_has_no_roots(tmp_path: Path) -> None:
    server = parse_config(f'[servers.fs]\ncommand = "x"\ncwd = "{tmp_path}"\n').servers["fs"]
    assert server_policy("fs", server, None).paths.base == str(tmp_path)
    bare = parse_config('[servers.fs]\ncommand = "x"\n').servers["fs"]
    assert server_policy("fs", bare, None).paths.base == os.path.realpath(os.getcwd())


def test_url_schemes_are_lowercased_and_the_servers_choices_carried_over() -> None:
    toml = """
[servers.web]
command = "x"
grants = ["network"]
outbound_secrets = "approve"
sampling = "deny"
strict_arguments = false
[servers.web.urls]
schemes = ["HTTPS"]
deny_hosts = ["evil.example"]
[servers.web.approval]
classes = ["destructive"]
"""
    rules = compile_policy(parse_config(toml), {}).servers["web"]
    assert rules.urls.schemes == ("https",)
    assert rules.urls.deny_hosts == ("evil.example",)
    assert (rules.outbound_secrets, rules.sampling, rules.strict_arguments) == ("approve", "deny", False)
    assert rules.approve_classes == frozenset({RiskClass.DESTRUCTIVE})


def test_clients_limits_become_sets_and_an_unset_server_list_stays_open() -> None:
    toml = """
[servers.a]
command = "x"
[clients.alice]
servers = ["a"]
grants = { a = ["write", "write"] }
deny_tools = ["a.rm"]
[clients.bob]
"""
    clients = compile_policy(parse_config(toml), {}).clients
    assert clients["alice"].servers == frozenset({"a"})
    assert clients["alice"].grants == {"a": frozenset({"write"})}
    assert clients["alice"].deny_tools == frozenset({"a.rm"})
    assert clients["bob"].servers is None

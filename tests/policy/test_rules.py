"""A server's compiled rules as values: approval conditions, write access by risk, a tool's profile."""

from __future__ import annotations

from pathlib import Path

from bastion.config.load import parse_config
from bastion.policy.compile import server_policy
from bastion.policy.rules import OPEN_CLIENT, ServerPolicy, write_access
from bastion.types import RiskClass


def rules(toml: str) -> ServerPolicy:
    return server_policy("s", parse_config('[servers.s]\ncommand = "x"\n' + toml).servers["s"], None)


def test_write_access_is_for_tools_that_change_or_run_something() -> None:
    assert {risk for risk in RiskClass if write_access(risk)} == {
        RiskClass.WRITE,
        RiskClass.DESTRUCTIVE,
        RiskClass.EXEC,
    }


def test_a_matching_condition_searches_anywhere_in_the_arguments_text() -> None:
    [rule] = rules('[[servers.s.approval.when]]\nargument = "branch"\nmatching = "main|release"\n').approve_when
    assert rule.applies("push", {"branch": "refs/heads/main"})
    assert not rule.applies("push", {"branch": "feature"})
    assert not rule.applies("push", {"other": "main"})


def test_a_not_matching_condition_needs_the_whole_text_to_match() -> None:
    toml = '[[servers.s.approval.when]]\ntool = "send"\nargument = "to"\nnot_matching = ".*@example\\\\.com"\n'
    [rule] = rules(toml).approve_when
    assert not rule.applies("send", {"to": "bob@example.com"})
    assert rule.applies("send", {"to": "bob@example.com.evil"})
    assert not rule.applies("draft", {"to": "eve@evil.example"})


def test_a_non_text_value_is_judged_by_its_text() -> None:
    [rule] = rules('[[servers.s.approval.when]]\nargument = "count"\nmatching = "^1000"\n').approve_when
    assert rule.applies("t", {"count": 100000})
    assert not rule.applies("t", {"count": 5})


def test_an_outside_condition_asks_for_paths_outside_its_directories(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    toml = f'fs_write = ["{tmp_path}"]\n[[servers.s.approval.when]]\nargument = "path"\noutside = ["{scratch}"]\n'
    [rule] = rules(toml).approve_when
    assert rule.index == 0
    assert not rule.applies("write_file", {"path": str(scratch / "a.txt")})
    assert rule.applies("write_file", {"path": str(tmp_path / "a.txt")})


def test_a_tools_profile_takes_the_servers_risk_override_and_sql_setting() -> None:
    definition = {"name": "lookup", "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}}}}
    plain = rules("").profile(definition)
    assert plain.risk is RiskClass.READ
    assert not plain.speaks_sql
    configured = rules('[servers.s.tools]\nrisk = { lookup = "destructive" }\n[servers.s.sql]\ntables = ["users"]\n')
    tuned = configured.profile(definition)
    assert tuned.risk is RiskClass.DESTRUCTIVE
    assert tuned.speaks_sql


def test_the_open_client_has_no_limits() -> None:
    assert (OPEN_CLIENT.servers, OPEN_CLIENT.grants, OPEN_CLIENT.deny_tools) == (None, None, frozenset())

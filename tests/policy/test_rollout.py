"""Watching before blocking: a monitored server's refusals are recorded with `enforced: false` and the
call goes on; a kill switch still stops it; a candidate policy is decided beside the live one and
travels in the same record; the shadow report reads the difference back; an invalid candidate stops
start-up with its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bastion.clock import FakeClock
from bastion.codes import INVALID_PARAMS
from bastion.config.load import parse_config
from bastion.errors import ConfigError
from bastion.policy.compile import compile_policy
from bastion.policy.lint import lint
from bastion.policy.rollout import (
    load_candidate,
    monitored,
    screen_as_monitored,
    with_candidate,
    write_promoted,
)
from bastion.policy.shadow import difference
from bastion.policy.stage import Candidate, Limits, PolicyStage
from bastion.proxy.pipeline import Call
from bastion.types import Reply, RpcError
from tests.policy.test_stage import ECHO, Events, call, record

pytestmark = pytest.mark.anyio

WIPE: dict[str, Any] = {"name": "wipe_disk", "inputSchema": {"type": "object", "properties": {}}}
LIVE = """
[policy]
mode = "monitor"
[servers.s]
command = "x"
[servers.s.screen]
listing = "block"
injections = "block"
[servers.t]
command = "x"
mode = "enforce"
"""
CANDIDATE = """
[servers.s]
command = "x"
[servers.s.tools]
deny = ["echo"]
grant = ["wipe_disk"]
[servers.t]
command = "x"
"""


def stage_for(
    live: str = LIVE, candidate: str | None = CANDIDATE, kills: frozenset[tuple[str, str]] = frozenset()
) -> tuple[PolicyStage, Events]:
    config = parse_config(live)
    shadow = None
    if candidate is not None:
        other = parse_config(candidate)
        shadow = Candidate(compile_policy(other), Limits(other))
    events = Events()
    stage = PolicyStage(
        compile_policy(config), Limits(config), FakeClock(), events, lambda: kills,
        monitor=monitored(config), candidate=shadow,
    )  # fmt: skip
    return stage, events


async def through(stage: PolicyStage, made: Call) -> tuple[Reply, list[Call]]:
    forwarded: list[Call] = []

    async def forward(c: Call) -> Reply:
        forwarded.append(c)
        return {"content": []}

    return await stage(made, forward), forwarded


def on(server: str, tool: dict[str, Any], arguments: dict[str, Any]) -> Call:
    made = call(tool, arguments)
    made.server = server
    return made


def test_the_mode_is_per_server_with_a_global_default() -> None:
    assert monitored(parse_config(LIVE)) == frozenset({"s"})
    assert monitored(parse_config(CANDIDATE)) == frozenset()


async def test_a_monitored_refusal_is_recorded_as_not_enforced_and_the_call_goes_on() -> None:
    stage, events = stage_for(candidate=None)
    made = on("s", WIPE, {})
    reply, forwarded = await through(stage, made)
    assert reply == {"content": []}
    assert forwarded == [made]
    decision = record(made)
    assert (decision["action"], decision["rule"], decision["enforced"]) == ("deny", "capability.destructive", False)
    assert events.seen == []  # not a refusal: no call.denied entry; the intent entry carries the decision


async def test_an_enforced_server_beside_it_still_refuses() -> None:
    stage, events = stage_for(candidate=None)
    reply, forwarded = await through(stage, on("t", WIPE, {}))
    assert isinstance(reply, RpcError)
    assert forwarded == []
    assert len(events.seen) == 1


async def test_a_kill_switch_applies_in_monitor_mode() -> None:
    stage, _events = stage_for(candidate=None, kills=frozenset({("s", "echo")}))
    reply, forwarded = await through(stage, on("s", ECHO, {"text": "hi"}))
    assert isinstance(reply, RpcError)
    assert forwarded == []
    assert stage.hide("local", "s", ECHO) is not None


async def test_a_monitored_server_lists_the_tools_policy_would_hide() -> None:
    stage, _events = stage_for(candidate=None)
    assert stage.hide("local", "s", WIPE) is None
    assert stage.hide("local", "t", WIPE) is not None


async def test_an_allowed_call_carries_no_enforced_flag() -> None:
    stage, _events = stage_for(candidate=None)
    made = on("s", ECHO, {"text": "hi"})
    await through(stage, made)
    assert "enforced" not in record(made)


async def test_the_candidate_is_decided_beside_the_live_policy_and_recorded_with_it() -> None:
    stage, _events = stage_for()
    allowed = on("s", ECHO, {"text": "hi"})
    await through(stage, allowed)
    assert record(allowed)["action"] == "allow"
    candidate = record(allowed)["candidate"]
    assert (candidate["action"], candidate["rule"]) == ("deny", "tools.deny")
    wiped = on("s", WIPE, {})
    await through(stage, wiped)
    assert record(wiped)["action"] == "deny"
    assert record(wiped)["candidate"]["action"] == "allow"


async def test_a_refusal_carries_the_candidates_decision_too() -> None:
    stage, events = stage_for()
    reply, _forwarded = await through(stage, on("t", WIPE, {}))
    assert isinstance(reply, RpcError)
    assert reply.code == INVALID_PARAMS  # a tool-level denial: the tool looks unknown
    [(refused, _reply)] = events.seen
    assert record(refused)["candidate"]["rule"] == "capability.destructive"


def test_the_shadow_row_names_both_decisions() -> None:
    entry = {
        "kind": "call.intent",
        "t": 1_000,
        "client": "local",
        "server": {"name": "s"},
        "tool": "wipe_disk",
        "decision": {
            "action": "deny",
            "rule": "capability.destructive",
            "reason": "r",
            "enforced": False,
            "candidate": {"action": "allow", "rule": "tools.grant", "reason": "granted"},
        },
    }
    row = difference("log", 7, entry)
    assert row is not None
    assert (row.live, row.candidate, row.candidate_rule, row.enforced, row.time) == (
        "deny", "allow", "tools.grant", False, 1.0,
    )  # fmt: skip
    same = {**entry, "decision": {"action": "allow", "candidate": {"action": "allow"}}}
    assert difference("log", 8, same) is None
    assert difference("log", 9, {**entry, "decision": {"action": "allow"}}) is None
    assert difference("log", 9, {"kind": "call.outcome", "decision": entry["decision"]}) is None
    denied = {**entry, "kind": "call.denied", "decision": {"action": "deny", "candidate": {"action": "allow"}}}
    assert difference("log", 10, denied) is not None


def test_screening_blocks_become_flags_on_a_monitored_server_only() -> None:
    config = parse_config(LIVE)
    screened = screen_as_monitored(config.servers, monitored(config))
    assert (screened["s"].screen.listing, screened["s"].screen.injections) == ("flag", "flag")
    assert screened["s"].screen.secrets == "strip"  # strip is not a block: it still applies
    assert screened["t"] is config.servers["t"]


def test_an_invalid_candidate_stops_with_its_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "candidate.toml"
    bad.write_text('[servers.s]\ncommand = "x"\ngrants = ["fly"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_candidate(bad)
    assert caught.value.path == bad
    assert caught.value.problems[0].line == 3
    with pytest.raises(ConfigError) as missing:
        load_candidate(tmp_path / "nowhere.toml")
    assert missing.value.problems[0].location == "policy.candidate"


def test_a_relative_candidate_is_read_beside_the_config(tmp_path: Path) -> None:
    config = parse_config('[policy]\ncandidate = "next.toml"\n')
    named = with_candidate(config, tmp_path / "bastion.toml", None)
    assert named.policy.candidate == str(tmp_path / "next.toml")
    given = with_candidate(config, tmp_path / "bastion.toml", Path("/elsewhere/c.toml"))
    assert given.policy.candidate == "/elsewhere/c.toml"


def test_promotion_replaces_the_file_and_keeps_the_previous(tmp_path: Path) -> None:
    path = tmp_path / "bastion.toml"
    path.write_text("old = 1\n", encoding="utf-8")
    path.chmod(0o640)
    previous = write_promoted(path, "new = 2\n")
    assert path.read_text(encoding="utf-8") == "new = 2\n"
    assert previous.read_text(encoding="utf-8") == "old = 1\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_policy_check_warns_about_every_monitored_server() -> None:
    found = [f for f in lint(parse_config(LIVE)) if "monitor mode" in f.message]
    assert [(f.severity, f.where) for f in found] == [("warning", "policy.mode")]


async def test_where_the_candidates_rules_are_the_live_ones_its_decision_is_the_live_one() -> None:
    stage, _events = stage_for()  # server t: the same rules in both (its mode is no rule)
    made = on("t", ECHO, {"text": "hi"})
    reply, _forwarded = await through(stage, made)
    assert reply == {"content": []}
    decision = record(made)
    assert decision["candidate"] == {key: value for key, value in decision.items() if key != "candidate"}

"""Why a tool is hidden, told once to the person running the gateway and never to the client."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from bastion.policy.hiding import told_once

WRITE = {"name": "write_file"}
READ = {"name": "read_file"}


def hide(server: str, item: Mapping[str, Any]) -> Mapping[str, str] | None:
    if item["name"] == "write_file":
        return {"rule": "capability.write", "reason": "a write tool on a read-only server"}
    if item["name"] == "rm":
        return {"rule": "tools.deny", "reason": "denied in the config"}
    return None


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_the_decision_is_passed_on_unchanged() -> None:
    tell = told_once(hide, set())
    assert tell("fs", WRITE) == hide("fs", WRITE)
    assert tell("fs", READ) is None


def test_a_tool_hidden_for_a_missing_grant_is_named_with_the_flag_that_shows_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    told: set[tuple[str, str]] = set()
    tell = told_once(hide, told)
    with caplog.at_level(logging.WARNING, logger="bastion.policy.hiding"):
        tell("fs", WRITE)
    [message] = warnings(caplog)
    assert message.startswith("server fs: tool 'write_file' is hidden: a write tool on a read-only server")
    assert "--grant write, or --grant-tool write_file" in message
    assert told == {("fs", "write_file")}


def test_each_tool_is_named_once_across_every_session_sharing_the_set(caplog: pytest.LogCaptureFixture) -> None:
    told: set[tuple[str, str]] = set()
    first, second = told_once(hide, told), told_once(hide, told)
    with caplog.at_level(logging.WARNING, logger="bastion.policy.hiding"):
        first("fs", WRITE)
        second("fs", WRITE)
        first("other", WRITE)
    assert len(warnings(caplog)) == 2


def test_a_tool_hidden_by_a_rule_other_than_a_grant_is_not_announced(caplog: pytest.LogCaptureFixture) -> None:
    told: set[tuple[str, str]] = set()
    with caplog.at_level(logging.WARNING, logger="bastion.policy.hiding"):
        assert told_once(hide, told)("fs", {"name": "rm"}) == {"rule": "tools.deny", "reason": "denied in the config"}
    assert warnings(caplog) == []
    assert told == set()

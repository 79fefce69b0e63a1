"""One grammar for lengths of time on the command line, and one refusal naming the flag and the forms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion.cli._durations import DURATION_FORMS, moment, parse_duration
from bastion.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("7d", 604800.0), ("2w", 1209600.0), (" 90 d ", 7776000.0)],
)
def test_each_unit_is_a_whole_number_of_seconds(text: str, expected: float) -> None:
    assert parse_duration(text, "--for") == expected


@pytest.mark.parametrize("text", ["", "10", "m", "1.5h", "-5m", "3y", "10 minutes", "2h30m"])
def test_anything_else_is_refused_naming_the_flag_the_value_and_the_forms(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_duration(text, "--expires")
    [problem] = raised.value.problems
    assert problem.location == "--expires"
    assert repr(text) in problem.message
    assert DURATION_FORMS in problem.fix


def test_a_moment_given_as_a_duration_is_that_long_before_now() -> None:
    assert moment("15m", "--since", now=10_000.0) == 10_000.0 - 900


def test_a_moment_given_as_an_iso_time_without_a_zone_is_utc() -> None:
    expected = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    assert moment("2026-11-01T00:00", "--since") == expected
    assert moment("2026-11-01T01:00+01:00", "--since") == expected


def test_no_moment_given_stays_none() -> None:
    assert moment(None, "--until") is None


def test_a_moment_that_is_neither_is_refused_with_both_forms() -> None:
    with pytest.raises(ConfigError) as raised:
        moment("yesterday", "--until")
    [problem] = raised.value.problems
    assert (problem.location, problem.message) == ("--until", "'yesterday' is not a time")
    assert DURATION_FORMS in problem.fix
    assert "ISO" in problem.fix

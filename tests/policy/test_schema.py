"""Arguments against the listed input schema: violations refused with their JSON path, a schema
that does not compile refuses every call, and the server's regular expressions never run."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.policy.schema import compile_schema

ROLE = {
    "type": "object",
    "properties": {
        "user": {"type": "string", "maxLength": 8},
        "role": {"type": "string", "enum": ["viewer", "editor"]},
        "level": {"type": "integer", "minimum": 0, "maximum": 3},
        "mode": {"const": "safe"},
    },
    "required": ["user", "role"],
    "additionalProperties": False,
}


def rule(schema: object, arguments: dict[str, Any]) -> str | None:
    check = compile_schema(schema)
    assert check is not None
    refusal = check.refusal(arguments)
    return None if refusal is None else refusal.rule


@pytest.mark.parametrize(
    ("arguments", "path"),
    [
        ({"user": "ann", "role": ["viewer", "admin"]}, "$.role"),
        ({"user": "ann", "role": "admin"}, "$.role"),
        ({"user": "ann"}, "$"),
        ({"user": "ann", "role": "viewer", "extra": 1}, "$"),
        ({"user": "a" * 9, "role": "viewer"}, "$.user"),
        ({"user": "ann", "role": "viewer", "level": 4}, "$.level"),
        ({"user": "ann", "role": "viewer", "level": "1"}, "$.level"),
        ({"user": "ann", "role": "viewer", "mode": "unsafe"}, "$.mode"),
    ],
)
def test_a_violation_is_refused_with_its_json_path(arguments: dict[str, Any], path: str) -> None:
    check = compile_schema(ROLE)
    assert check is not None
    refusal = check.refusal(arguments)
    assert refusal is not None
    assert refusal.rule == "arguments.schema"
    assert refusal.reason.startswith(f"at {path}:")


def test_arguments_that_keep_the_schema_pass() -> None:
    assert rule(ROLE, {"user": "ann", "role": "editor", "level": 2, "mode": "safe"}) is None


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "objekt"},
        {"type": "object", "properties": {"a": {"minLength": -1}}},
        {"type": "object", "required": "a"},
    ],
)
def test_a_schema_that_does_not_compile_refuses_every_call(schema: dict[str, Any]) -> None:
    assert rule(schema, {}) == "arguments.schema_invalid"
    assert rule(schema, {"a": "x"}) == "arguments.schema_invalid"


def test_a_reference_out_of_the_schema_fails_the_call_not_the_gateway() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "https://example.invalid/s.json"}}}
    assert rule(schema, {"a": "x"}) == "arguments.schema_invalid"
    assert rule({"$defs": {"s": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/s"}}}, {"a": 1}) == (
        "arguments.schema"
    )


def test_the_servers_regular_expressions_never_run() -> None:
    # A pattern that backtracks exponentially: evaluated, it would stall the gateway for hours.
    evil = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}
    assert rule(evil, {"a": "a" * 64 + "!"}) is None
    named = {"type": "object", "patternProperties": {"^(x+)+$": {"type": "integer"}}, "additionalProperties": False}
    assert rule(named, {"x" * 64 + "!": "anything"}) is None


def test_no_schema_object_means_no_schema_check() -> None:
    assert compile_schema(None) is None
    assert compile_schema("not a schema") is None

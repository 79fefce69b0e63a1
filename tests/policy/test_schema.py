"""Arguments against the listed input schema: violations refused with their JSON path, a schema
that does not compile refuses every call, and the server's regular expressions never run."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator
from jsonschema.validators import validator_for

from bastion.policy import schema as schema_module
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


# The fast path: a schema's common subset compiled once; it may only ever say "valid" where
# jsonschema says so too, and anything it is not certain of goes to jsonschema.

NODE_READ = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "tail": {"description": "If provided, returns only the last N lines of the file", "type": "number"},
        "head": {"description": "If provided, returns only the first N lines of the file", "type": "number"},
    },
    "required": ["path"],
}
FETCH = {
    "type": "object",
    "title": "Fetch",
    "properties": {
        "url": {"type": "string", "format": "uri", "minLength": 1, "title": "Url"},
        "max_length": {"type": "integer", "default": 5000, "exclusiveMinimum": 0, "exclusiveMaximum": 1000000},
        "raw": {"type": "boolean", "default": False},
        "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}], "default": None},
    },
    "required": ["url"],
}


@pytest.mark.parametrize(
    ("schema", "arguments"),
    [
        (NODE_READ, {"path": "/srv/a.txt"}),
        (NODE_READ, {"path": "/srv/a.txt", "head": 10}),
        (FETCH, {"url": "https://example.com/", "max_length": 20, "tags": None}),
        (FETCH, {"url": "https://example.com/", "raw": True, "tags": ["a", "b"]}),
        (ROLE, {"user": "ann", "role": "editor", "level": 2, "mode": "safe"}),
        ({"type": "object", "properties": {"a": {}}}, {"a": [1, {"b": None}]}),
    ],
)
def test_typical_schemas_are_judged_valid_without_jsonschema(schema: dict[str, Any], arguments: dict[str, Any]) -> None:
    check = compile_schema(schema)
    assert check is not None
    assert check.fast is not None
    assert check.fast(arguments)
    assert check.refusal(arguments) is None


@pytest.mark.parametrize(
    ("schema", "arguments", "path"),
    [
        (NODE_READ, {"path": 3}, "$.path"),
        (NODE_READ, {"head": 3}, "$"),
        (FETCH, {"url": "", "max_length": 0}, "$.url"),
        (FETCH, {"url": "x", "max_length": 1000000}, "$.max_length"),
        (FETCH, {"url": "x", "tags": ["a", 1]}, "$.tags[1]"),
        (FETCH, {"url": "x", "raw": 1}, "$.raw"),
    ],
)
def test_a_violation_found_by_the_fast_path_is_named_by_jsonschema(
    schema: dict[str, Any], arguments: dict[str, Any], path: str
) -> None:
    check = compile_schema(schema)
    assert check is not None
    assert check.fast is not None
    assert not check.fast(arguments)
    refusal = check.refusal(arguments)
    assert refusal is not None
    assert refusal.rule == "arguments.schema"
    assert refusal.reason.startswith(f"at {path}:")


@pytest.mark.parametrize(
    "schema",
    [
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"},
        {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        {"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s"},
    ],
)
def test_schemas_outside_the_subset_are_left_to_jsonschema(schema: dict[str, Any]) -> None:
    check = compile_schema(schema)
    assert check is not None
    assert check.fast is None


def test_an_optional_argument_outside_the_subset_only_matters_when_given() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"$ref": "#/$defs/n"}}}
    schema["$defs"] = {"n": {"type": "integer"}}
    check = compile_schema(schema)
    assert check is not None
    assert check.fast is not None
    assert check.fast({"a": "x"})
    assert not check.fast({"a": "x", "b": 1})  # not certain: jsonschema decides
    assert check.refusal({"a": "x", "b": 1}) is None
    refusal = check.refusal({"a": "x", "b": "1"})
    assert refusal is not None
    assert refusal.rule == "arguments.schema"


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-5, 5, allow_nan=False)
    | st.sampled_from(["", "a", "ab", "abc", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    max_leaves=8,
)
TYPE_NAMES = st.sampled_from(["string", "object", "array", "boolean", "null", "number", "integer"])


def _schemas() -> st.SearchStrategy[object]:
    leaf = cast("st.SearchStrategy[object]", st.one_of(
        st.booleans(),
        st.fixed_dictionaries({}, optional={
            "type": TYPE_NAMES | st.lists(TYPE_NAMES, min_size=1, max_size=3, unique=True),
            "enum": st.lists(JSON_VALUES, min_size=1, max_size=3),
            "const": JSON_VALUES,
            "minLength": st.integers(0, 3), "maxLength": st.integers(0, 3),
            "minimum": st.integers(-3, 3) | st.floats(-3, 3), "maximum": st.integers(-3, 3),
            "exclusiveMinimum": st.integers(-3, 3), "exclusiveMaximum": st.floats(-3, 3),
            "minItems": st.integers(0, 2), "maxItems": st.integers(0, 2),
            "minProperties": st.integers(0, 2), "maxProperties": st.integers(0, 2),
            "required": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True),
            "pattern": st.just("^(a+)+$"), "format": st.just("uri"), "description": st.just("d"),
            "multipleOf": st.just(2), "uniqueItems": st.booleans(),
        }),
    ))  # fmt: skip

    def nest(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        return cast("st.SearchStrategy[object]", st.fixed_dictionaries({}, optional={
            "type": TYPE_NAMES,
            "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
            "additionalProperties": inner,
            "patternProperties": st.just({"^a$": {"type": "integer"}}),
            "required": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2, unique=True),
            "items": inner, "anyOf": st.lists(inner, min_size=1, max_size=2),
            "allOf": st.lists(inner, min_size=1, max_size=2), "oneOf": st.lists(inner, min_size=1, max_size=2),
            "not": inner,
        }))  # fmt: skip

    return st.recursive(leaf, nest, max_leaves=6)


DRAFTS = st.sampled_from(
    [
        None,
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "http://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-06/schema#",
        "http://json-schema.org/draft-04/schema#",
    ]
)


@settings(max_examples=400, deadline=None)
@given(_schemas(), JSON_VALUES, DRAFTS)
def test_the_fast_path_never_accepts_what_jsonschema_refuses(
    schema: object, instance: object, draft: str | None
) -> None:
    document: dict[str, object] = cast("dict[str, object]", schema) if isinstance(schema, dict) else {"allOf": [schema]}
    if draft is not None:
        document = {**document, "$schema": draft}
    check = compile_schema(document)
    assert check is not None
    if check.full is None or check.fast is None:
        return
    validator = check.full.validator()
    assert not isinstance(validator, str), validator
    if check.fast(instance):
        assert validator.is_valid(cast("Any", instance)), (schema, instance)


# Certified without jsonschema: a schema of the subset, with values every draft's metaschema
# accepts, never needs jsonschema until a call leaves the fast path; anything else is compiled by
# jsonschema at once, as before.

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from([0.0, 1.0, 2.5, -1.0]),
    st.sampled_from(["", "a", "string", "objekt", "object", "integer"]),
    st.lists(st.sampled_from(["a", "b", "string", "null", "nope"]), max_size=3),
    st.lists(st.booleans() | st.integers(0, 1), max_size=2),
    st.just({}),
)


def _schema_like() -> st.SearchStrategy[object]:
    """Schemas of the certifiable keywords, with values of the right shape or nearly so."""

    def node(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        names = st.sampled_from(["string", "object", "integer", "null", "objekt"])
        counts = st.integers(-1, 3) | st.sampled_from([1.0, True])
        bounds = st.integers(-2, 2) | st.floats(-2, 2) | st.booleans()
        texts = st.sampled_from(["", "t"]) | st.integers(0, 1)
        schemas = st.lists(inner, max_size=2)
        plausible: dict[str, st.SearchStrategy[object]] = {
            "type": names | st.lists(names, max_size=3),
            "enum": st.lists(JSON_VALUES, max_size=2),
            "const": JSON_VALUES,
            "properties": st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
            "additionalProperties": inner | schemas,
            "items": inner | schemas,
            "required": st.lists(st.sampled_from(["a", "b", 1]), max_size=3),
            "anyOf": schemas,
            "allOf": schemas,
            **dict.fromkeys(
                ["minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"], counts
            ),
            **dict.fromkeys(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"], bounds),
            **dict.fromkeys(["title", "description", "format"], texts),
            "default": JSON_VALUES,
            "examples": st.lists(JSON_VALUES, max_size=2) | ODD_VALUES,
            "oneOf": schemas,
            "pattern": st.just("^a$"),
        }
        values = {key: st.one_of(strategy, strategy, strategy, ODD_VALUES) for key, strategy in plausible.items()}
        keys = st.lists(st.sampled_from(sorted(values)), max_size=4, unique=True)
        return keys.flatmap(lambda chosen: st.fixed_dictionaries({key: values[key] for key in chosen}))

    empty: dict[str, object] = {}
    return st.recursive(st.booleans() | st.just(empty), node, max_leaves=8)


@settings(max_examples=1000, deadline=None)
@given(_schema_like(), DRAFTS | st.sampled_from(["http://json-schema.org/draft-07/schema", "urn:nope", 7]))
def test_a_certified_schema_is_one_jsonschema_accepts(schema: object, draft: object) -> None:
    document: dict[str, Any] = cast("dict[str, Any]", schema) if isinstance(schema, dict) else {"allOf": [schema]}
    if draft is not None:
        document = {**document, "$schema": draft}
    if schema_module._certified(document):  # pyright: ignore[reportPrivateUsage]
        assert draft is None or draft in schema_module.DRAFT_URIS
        base = validator_for(document, default=Draft202012Validator)
        base.check_schema(document)  # raises SchemaError if the certification was wrong


def test_the_subset_means_the_same_in_every_draft_it_certifies() -> None:
    drafts = {validator_for({"$schema": uri}) for uri in schema_module.DRAFT_URIS}
    assert drafts == {Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator}
    for draft in drafts:
        assert frozenset(draft.VALIDATORS) >= schema_module.SUBSET_KEYWORDS
        assert not {"title", "description", "default", "examples", "$schema"} & frozenset(draft.VALIDATORS)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string", "minLength": 1.0}}},  # an integral float
        {"type": "array", "items": [{"type": "string"}]},  # items as an array (drafts before 2020-12)
        {"type": "object", "required": ["a", "a"]},
        {"type": "objekt"},
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"type": "string"}}},
        {"type": "object", "properties": {"a": {"description": 5}}},
    ],
)
def test_a_schema_outside_the_certified_subset_is_compiled_by_jsonschema_at_once(schema: dict[str, Any]) -> None:
    assert not schema_module._certified(schema)  # pyright: ignore[reportPrivateUsage]
    check = compile_schema(schema)
    assert check is not None
    assert check.full is None or check.full._validator is not None  # pyright: ignore[reportPrivateUsage]


def test_a_schema_nested_past_the_certified_depth_is_left_to_jsonschema() -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(schema_module.MAX_CERTIFIED_DEPTH):
        schema = {"type": "object", "properties": {"a": schema}}
    assert schema_module._certified(schema)  # pyright: ignore[reportPrivateUsage]
    assert not schema_module._certified({"type": "object", "properties": {"a": schema}})  # pyright: ignore[reportPrivateUsage]


def test_a_certified_schema_jsonschema_refuses_after_all_refuses_the_call() -> None:
    # Cannot happen if the certification is right; if it ever is wrong, the call fails closed.
    full = schema_module.FullCheck({"type": "objekt"})
    refusal = full.refusal({})
    assert refusal is not None
    assert refusal.rule == "arguments.schema_invalid"


def test_typical_schemas_and_calls_do_not_load_jsonschema() -> None:
    script = (
        "import sys\n"
        "from bastion.policy.schema import compile_schema\n"
        f"schemas = [{NODE_READ!r}, {FETCH!r}, {ROLE!r}]\n"
        "checks = [compile_schema(schema) for schema in schemas]\n"
        "assert checks[0].refusal({'path': '/srv/a.txt', 'head': 3}) is None\n"
        "assert checks[1].refusal({'url': 'https://example.com/', 'tags': None}) is None\n"
        "assert checks[2].refusal({'user': 'ann', 'role': 'viewer'}) is None\n"
        "assert not [name for name in sys.modules if name.split('.')[0] in ('jsonschema', 'referencing')]\n"
        "refusal = checks[2].refusal({'user': 'ann', 'role': 'admin'})\n"  # not certain: jsonschema names it
        "assert refusal.rule == 'arguments.schema' and refusal.reason.startswith('at $.role:'), refusal\n"
        "assert 'jsonschema' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)

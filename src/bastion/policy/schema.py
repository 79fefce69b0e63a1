"""A call's arguments against the input schema the server listed (and pins hold steady).

`compile_schema` turns a tool's `inputSchema` into a `SchemaCheck` once per definition; the
check then refuses arguments that break it (`arguments.schema`, with the JSON path of the
first violation) and a schema that does not compile refuses every call (`arguments.schema_invalid`,
fail closed). Types, `enum`, `const`, `required`, `additionalProperties: false`, lengths, sizes
and the combinators are enforced by `jsonschema` (draft 2020-12 unless the schema names another).

The schema comes from the server, so it is untrusted input to Bastion itself:

- It is interpreted, never turned into code. `fastjsonschema` generates and executes Python from
  the schema; besides running code shaped by a possibly malicious server, it knows no draft after
  7 and silently ignores 2020-12's keywords (`prefixItems`, `dependentRequired`,
  `unevaluatedProperties`: the MCP default dialect), so it would accept what this check refuses,
  and it fetches a remote `$ref` while compiling. See bench/README.md for the measurements.
- Its regular expressions are not run: `pattern` is not evaluated, and `patternProperties`
  neither constrains values nor exempts names from `additionalProperties` (an object with
  `patternProperties` accepts its other names). A server's regex can be written to backtrack for
  hours (ReDoS) and would stall the gateway; Bastion's own path, URL, SQL and command checks run
  on every string whatever the schema says.
- References resolve within the schema only; one that points elsewhere fails the call.
- Formats are annotations, as the specification says by default.

Most listed schemas use a small part of the language (types, `properties`, `required`,
`additionalProperties`, `enum`, lengths and ranges, `items`, `anyOf` for optional values), and
most calls keep them. For those, `_fast` compiles the schema once into a tree of small checks
that answers "certainly valid" without `jsonschema`'s per-keyword machinery. It only ever says
yes when `jsonschema` would: a keyword it does not know (`$ref`, `oneOf`, `not`, `multipleOf` …),
a draft before 6, or a value it cannot judge makes it say "not certain", and then `jsonschema`
decides (and names the violation) exactly as before.

A schema can only tighten what Bastion checks: validation runs before, not instead of, the
argument constraints.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from jsonschema import (
    Draft6Validator,
    Draft7Validator,
    Draft201909Validator,
    Draft202012Validator,
    ValidationError,
)
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import extend, validator_for
from referencing.exceptions import Unresolvable

from bastion.policy.refusal import Refusal

__all__ = ["SchemaCheck", "compile_schema"]

MAX_SHOWN = 160

Check = Callable[[object], bool]
"""True when the value certainly keeps the (sub)schema; False when it may not."""


def _no_pattern(
    _validator: Validator, _pattern: Any, _instance: Any, _schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    return iter(())


def _validator_class(schema: Mapping[str, Any]) -> tuple[type[Validator], type[Validator]]:
    """The draft the schema names (2020-12 by default), and that draft without regular expressions."""
    base: type[Validator] = validator_for(schema, default=Draft202012Validator)
    return base, _without_regexes(base)


@functools.cache
def _without_regexes(base: type[Validator]) -> type[Validator]:
    additional = base.VALIDATORS.get("additionalProperties")

    def additional_properties(
        validator: Validator, value: Any, instance: Any, subschema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        if additional is None or "patternProperties" in subschema:
            return iter(())
        return additional(validator, value, instance, subschema)  # pyright: ignore[reportReturnType]

    return extend(
        base,
        {"pattern": _no_pattern, "patternProperties": _no_pattern, "additionalProperties": additional_properties},
    )


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    validator: Validator | None
    problem: str | None
    """Why the schema does not compile (then every call is refused)."""
    fast: Check | None = None
    """The schema's common subset compiled (None: a keyword outside it; `jsonschema` always decides)."""

    def refusal(self, arguments: Mapping[str, Any]) -> Refusal | None:
        if self.problem is not None:
            return Refusal("arguments.schema_invalid", f"the tool's input schema is invalid ({self.problem})")
        if self.fast is not None:
            try:
                if self.fast(arguments):
                    return None  # certainly valid: what jsonschema would say, without its machinery
            except RecursionError:
                pass  # a schema and arguments nested past the stack: jsonschema decides, as before
        assert self.validator is not None
        try:
            if self.validator.is_valid(arguments):  # the common case, without ranking errors
                return None
            error = best_match(self.validator.iter_errors(arguments))
        except Unresolvable as exc:
            return Refusal(
                "arguments.schema_invalid",
                f"the tool's input schema has a reference that does not resolve ({exc})"[:300],
            )
        except RecursionError:
            return Refusal("arguments.schema_invalid", "the tool's input schema refers to itself without end")
        if error is None:
            return None
        message = error.message if len(error.message) <= MAX_SHOWN else error.message[:MAX_SHOWN] + "…"
        return Refusal("arguments.schema", f"at {error.json_path}: {message}")


def compile_schema(schema: object) -> SchemaCheck | None:
    """The check for one listed `inputSchema`; None when the tool lists no schema object at all."""
    if not isinstance(schema, dict):
        return None
    document: dict[str, Any] = {str(k): v for k, v in schema.items()}  # pyright: ignore[reportUnknownVariableType]
    try:
        base, cls = _validator_class(document)
        cls.check_schema(document)
    except SchemaError as exc:
        return SchemaCheck(None, f"{exc.json_path}: {exc.message}"[:300])
    except (Unresolvable, RecursionError, TypeError, ValueError) as exc:
        return SchemaCheck(None, str(exc)[:300])
    fast: Check | None = None
    if base in _FAST_DRAFTS:
        try:
            fast = _fast(document, frozenset(cls.VALIDATORS))
        except RecursionError:
            fast = _never
    return SchemaCheck(cls(document), None, None if fast is _never else fast)


# The fast path: the common subset of drafts 6, 7, 2019-09 and 2020-12, where these keywords mean
# the same. Each check returns True only when jsonschema would find no error in that part of the
# schema; a part it does not understand is `_never` ("not certain"), so a call that reaches it goes
# to jsonschema and one that does not (an optional argument left out) keeps the fast path.

_FAST_DRAFTS: frozenset[type[Validator]] = frozenset(
    {Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator}
)
_INERT = frozenset({"pattern", "patternProperties", "format"})
"""Keywords that never fail here (regexes are not run; formats are annotations)."""


def _always(_value: object) -> bool:
    return True


def _never(_value: object) -> bool:
    return False


def _is_number(value: object) -> bool:
    return type(value) is int or type(value) is float


def _is_integer(value: object) -> bool:
    return type(value) is int or (type(value) is float and value.is_integer())


def _not_a_number(value: object) -> bool:
    """Whether a value is one the number keywords leave alone (jsonschema counts no bool as a number)."""
    return isinstance(value, bool) or not isinstance(value, numbers.Number)


_TYPES: Mapping[str, Check] = {
    "string": lambda value: isinstance(value, str),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: type(value) is bool,
    "null": lambda value: value is None,
    "number": _is_number,
    "integer": _is_integer,
}
# A subclass of int or float (an IntEnum, say), or a Decimal, is a number to jsonschema but not to
# `_TYPES`: "not certain", so jsonschema decides. Values parsed from JSON are never such things.


def _fast(schema: object, keywords: frozenset[str]) -> Check:
    """A (sub)schema's checks; `_never` for one that uses a keyword outside the subset."""
    if schema is True:
        return _always
    if not isinstance(schema, dict):
        return _never  # False, or not a schema (check_schema refuses that first)
    node = cast("dict[str, Any]", schema)
    checks: list[Check] = []
    for key, value in node.items():
        if key not in keywords or key in _INERT or key in _GATHERED:
            continue  # not a keyword of this draft (titles, descriptions, defaults …): jsonschema ignores it
        build = _BUILDERS.get(key)
        if build is None:
            return _never  # $ref, oneOf, not, if, multipleOf, uniqueItems, prefixItems …
        checks.append(build(value, keywords))
    for gather in (_object_checks, _array_checks, _number_checks, _string_checks):
        checks.append(gather(node, keywords))
    return _every(checks)


def _every(checks: list[Check]) -> Check:
    found = tuple(check for check in checks if check is not _always)
    if not found:
        return _always
    if _never in found:
        return _never
    if len(found) == 1:
        return found[0]

    if len(found) == 2:
        first, second = found
        return lambda value: first(value) and second(value)

    def every(value: object) -> bool:
        return all(check(value) for check in found)

    return every


def _type(value: object, _keywords: frozenset[str]) -> Check:
    names = cast("list[object]", [value] if isinstance(value, str) else value if isinstance(value, list) else [])
    tests = tuple(_TYPES.get(name) if isinstance(name, str) else None for name in names)
    if not tests or None in tests:
        return _never
    found = cast("tuple[Check, ...]", tests)
    if len(found) == 1:
        return found[0]
    return lambda instance: any(test(instance) for test in found)


def _enum(value: object, _keywords: frozenset[str]) -> Check:
    if not isinstance(value, list):
        return _never
    strings = frozenset(item for item in cast("list[object]", value) if isinstance(item, str))
    return lambda instance: isinstance(instance, str) and instance in strings  # other values: jsonschema decides


def _const(value: object, _keywords: frozenset[str]) -> Check:
    if not isinstance(value, str):
        return _never
    return lambda instance: isinstance(instance, str) and instance == value


def _any_of(value: object, keywords: frozenset[str]) -> Check:
    branches = tuple(
        _fast(branch, keywords) for branch in cast("list[object]", value if isinstance(value, list) else [])
    )
    if not branches:
        return _never
    if _always in branches:
        return _always
    return lambda instance: any(branch(instance) for branch in branches)


def _all_of(value: object, keywords: frozenset[str]) -> Check:
    if not isinstance(value, list) or not value:
        return _never
    return _every([_fast(branch, keywords) for branch in cast("list[object]", value)])


_BUILDERS: Mapping[str, Callable[[object, frozenset[str]], Check]] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "anyOf": _any_of,
    "allOf": _all_of,
}
_GATHERED = frozenset(
    {
        "properties", "required", "additionalProperties", "minProperties", "maxProperties",
        "items", "minItems", "maxItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "minLength", "maxLength",
    }
)  # fmt: skip
"""Keywords judged together, by the kind of value they constrain (each leaves other kinds alone)."""


def _object_checks(node: Mapping[str, Any], keywords: frozenset[str]) -> Check:
    raw, required = node.get("properties", {}), node.get("required", [])
    aside = "patternProperties" in node  # then additionalProperties is not evaluated (see above)
    extra = node.get("additionalProperties", True) if not aside else True
    least, most = node.get("minProperties", 0), node.get("maxProperties")
    if not isinstance(raw, dict) or not isinstance(required, list):
        return _never
    properties = {name: _fast(sub, keywords) for name, sub in cast("dict[str, object]", raw).items()}
    judged = tuple((name, check) for name, check in properties.items() if check is not _always)
    needed = frozenset(cast("list[object]", required))
    additional = _fast(extra, keywords)
    if additional is _always and not judged and not needed and least == 0 and most is None:
        return _always

    def check_object(instance: object) -> bool:
        if not isinstance(instance, dict):
            return True
        values = cast("dict[object, object]", instance)
        if len(values) < least or (most is not None and len(values) > most):
            return False
        if not needed <= values.keys():
            return False
        if additional is _always:
            for name, check in judged:  # noqa: SIM110  (a loop: no generator on the hot path)
                if name in values and not check(values[name]):
                    return False
            return True
        for name, item in values.items():
            check = properties.get(name, additional) if isinstance(name, str) else additional
            if not check(item):
                return False
        return True

    return check_object


def _array_checks(node: Mapping[str, Any], keywords: frozenset[str]) -> Check:
    if "items" not in node and "minItems" not in node and "maxItems" not in node:
        return _always
    raw = node.get("items", True)
    items = _never if isinstance(raw, list) else _fast(raw, keywords)  # a list: tuple validation (drafts < 2020-12)
    least, most = node.get("minItems", 0), node.get("maxItems")

    def check_array(instance: object) -> bool:
        if not isinstance(instance, list):
            return True
        values = cast("list[object]", instance)
        if len(values) < least or (most is not None and len(values) > most):
            return False
        return items is _always or all(items(item) for item in values)

    return check_array


def _number_checks(node: Mapping[str, Any], _keywords: frozenset[str]) -> Check:
    low, high = node.get("minimum"), node.get("maximum")
    above, below = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    bounds = [bound for bound in (low, high, above, below) if bound is not None]
    if not bounds:
        return _always
    if not all(_is_number(bound) for bound in bounds):
        return _never

    def check_number(instance: object) -> bool:
        if not _is_number(instance):
            return _not_a_number(instance)
        number = cast(float, instance)
        return (
            (low is None or number >= low)
            and (high is None or number <= high)
            and (above is None or number > above)
            and (below is None or number < below)
        )

    return check_number


def _string_checks(node: Mapping[str, Any], _keywords: frozenset[str]) -> Check:
    least, most = node.get("minLength", 0), node.get("maxLength")
    if least == 0 and most is None:
        return _always

    def check_string(instance: object) -> bool:
        if not isinstance(instance, str):
            return True
        return len(instance) >= least and (most is None or len(instance) <= most)

    return check_string

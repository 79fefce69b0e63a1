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

`jsonschema` itself (`schema_full.py`) is imported the first time a schema or a call needs it:
it holds about 2.7 MB of the 62 MB `bastion wrap` peaked at (issue 13 §5). A schema made only of
that subset, with values every draft's metaschema accepts (`_certified`: the keywords above plus
`title`, `description`, `default`, `examples`, `format`, and a `$schema` naming draft 6, 7,
2019-09 or 2020-12), would pass `jsonschema`'s `check_schema`, so it is not asked then; anything
else (another keyword, a value of another shape, nesting past `MAX_CERTIFIED_DEPTH`) is compiled
by `jsonschema` at once, as before. The first call the fast path is not certain of compiles the
schema with `jsonschema` (a problem found then refuses the call) and `jsonschema` judges it.

A schema can only tighten what Bastion checks: validation runs before, not instead of, the
argument constraints.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from bastion.policy.refusal import Refusal

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

__all__ = ["FullCheck", "SchemaCheck", "compile_schema"]

Check = Callable[[object], bool]
"""True when the value certainly keeps the (sub)schema; False when it may not."""


def _full_check() -> ModuleType:
    """`schema_full`, with `jsonschema`: imported here, on first need, to keep it out of the memory
    of a gateway whose tools never need it (see above); not a way around an import cycle."""
    from bastion.policy import schema_full

    return schema_full


class FullCheck:
    """`jsonschema`'s side of one schema: its validator, compiled on first use when the schema was
    certified without it."""

    __slots__ = ("_document", "_validator")

    def __init__(self, document: dict[str, Any], validator: Validator | None = None) -> None:
        self._document = document
        self._validator = validator

    def validator(self) -> Validator | str:
        """The compiled validator, or why `jsonschema` finds the schema invalid."""
        if self._validator is None:
            compiled = _full_check().compile_full(self._document)
            if isinstance(compiled, str):
                return compiled
            self._validator = compiled[0]
        return self._validator

    def refusal(self, arguments: Mapping[str, Any]) -> Refusal | None:
        validator = self.validator()
        if isinstance(validator, str):  # certified, yet jsonschema refuses it: fail closed
            return Refusal("arguments.schema_invalid", f"the tool's input schema is invalid ({validator})")
        return _full_check().judge(validator, arguments)


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    problem: str | None
    """Why the schema does not compile (then every call is refused)."""
    fast: Check | None = None
    """The schema's common subset compiled (None: a keyword outside it; `jsonschema` always decides)."""
    full: FullCheck | None = None
    """`jsonschema`'s check (None when the schema does not compile)."""

    def refusal(self, arguments: Mapping[str, Any]) -> Refusal | None:
        if self.full is None:
            return Refusal("arguments.schema_invalid", f"the tool's input schema is invalid ({self.problem})")
        if self.fast is not None:
            try:
                if self.fast(arguments):
                    return None  # certainly valid: what jsonschema would say, without its machinery
            except RecursionError:
                pass  # a schema and arguments nested past the stack: jsonschema decides, as before
        return self.full.refusal(arguments)


def compile_schema(schema: object) -> SchemaCheck | None:
    """The check for one listed `inputSchema`; None when the tool lists no schema object at all."""
    if not isinstance(schema, dict):
        return None
    document: dict[str, Any] = {str(k): v for k, v in schema.items()}  # pyright: ignore[reportUnknownVariableType]
    if _certified(document):
        return SchemaCheck(None, _fast_or_none(document, SUBSET_KEYWORDS), FullCheck(document))
    compiled = _full_check().compile_full(document)
    if isinstance(compiled, str):
        return SchemaCheck(compiled)
    validator, keywords = cast("tuple[Validator, frozenset[str] | None]", compiled)
    fast = _fast_or_none(document, keywords) if keywords is not None else None
    return SchemaCheck(None, fast, FullCheck(document, validator))


def _fast_or_none(document: dict[str, Any], keywords: frozenset[str]) -> Check | None:
    try:
        fast = _fast(document, keywords)
    except RecursionError:
        return None
    return None if fast is _never else fast


# Certified without jsonschema: a schema made only of the subset's keywords, each with a value
# that the metaschemas of drafts 6, 7, 2019-09 and 2020-12 all accept (they agree on these: a
# non-negative integer for the counts, a number for the bounds, a non-empty array of schemas for
# the combinators, unique strings for `required` …). Shapes the metaschemas also accept but that
# are not listed here (an integral float as a count, `items` as an array) are "not certain", and
# jsonschema compiles the schema as before.

MAX_CERTIFIED_DEPTH = 16
"""Deeper schemas go to jsonschema, whose `check_schema` (about 11 frames a level) may run out of
stack on them and then refuses the schema: that verdict stays jsonschema's."""
DRAFT_URIS = frozenset(
    {
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-06/schema#",
        "http://json-schema.org/draft-07/schema",
        "http://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2019-09/schema#",
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2020-12/schema#",
    }
)
"""`$schema` values that name a draft the subset means the same in (as jsonschema reads them)."""
_SIMPLE_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})


def _certified(document: dict[str, Any]) -> bool:
    """Whether jsonschema's `check_schema` certainly accepts the document (False: not certain)."""
    if "$schema" in document:
        draft = document["$schema"]
        if not (isinstance(draft, str) and draft in DRAFT_URIS):
            return False
        document = {key: value for key, value in document.items() if key != "$schema"}
    return _certain(document, 0)


def _certain(node: object, depth: int) -> bool:
    if isinstance(node, bool):
        return True
    if not isinstance(node, dict) or depth > MAX_CERTIFIED_DEPTH:
        return False
    for key, value in cast("dict[object, object]", node).items():
        test = _VALUES.get(key) if isinstance(key, str) else None
        if test is None or not test(value, depth + 1):
            return False
    return True


def _type_names(value: object, _depth: int) -> bool:
    if isinstance(value, str):
        return value in _SIMPLE_TYPES
    if not isinstance(value, list) or not value:
        return False
    names = cast("list[object]", value)
    return all(isinstance(name, str) and name in _SIMPLE_TYPES for name in names) and len(set(names)) == len(names)  # pyright: ignore[reportUnknownArgumentType]


def _unique_strings(value: object, _depth: int) -> bool:
    if not isinstance(value, list):
        return False
    names = cast("list[object]", value)
    return all(isinstance(name, str) for name in names) and len(set(names)) == len(names)  # pyright: ignore[reportUnknownArgumentType]


def _schema_map(value: object, depth: int) -> bool:
    if not isinstance(value, dict):
        return False
    entries = cast("dict[object, object]", value)
    return all(isinstance(name, str) and _certain(sub, depth) for name, sub in entries.items())


def _schema_list(value: object, depth: int) -> bool:
    if not isinstance(value, list):
        return False
    entries = cast("list[object]", value)
    return bool(entries) and all(_certain(sub, depth) for sub in entries)


def _count(value: object, _depth: int) -> bool:
    return type(value) is int and value >= 0


def _bound(value: object, _depth: int) -> bool:
    return type(value) is int or type(value) is float


def _text(value: object, _depth: int) -> bool:
    return isinstance(value, str)


def _array(value: object, _depth: int) -> bool:
    return isinstance(value, list)


def _anything(_value: object, _depth: int) -> bool:
    return True


_VALUES: Mapping[str, Callable[[object, int], bool]] = {
    "type": _type_names, "enum": _array, "const": _anything,
    "properties": _schema_map, "additionalProperties": _certain, "items": _certain, "required": _unique_strings,
    "anyOf": _schema_list, "allOf": _schema_list,
    "minLength": _count, "maxLength": _count, "minItems": _count, "maxItems": _count,
    "minProperties": _count, "maxProperties": _count,
    "minimum": _bound, "maximum": _bound, "exclusiveMinimum": _bound, "exclusiveMaximum": _bound,
    "title": _text, "description": _text, "format": _text, "default": _anything, "examples": _array,
}  # fmt: skip
"""The keywords a certified schema may use, each with the values every draft's metaschema accepts."""
SUBSET_KEYWORDS = frozenset(_VALUES) - {"title", "description", "default", "examples"}
"""Those that are validation keywords in each of the four drafts (the rest are annotations)."""


# The fast path: the common subset of drafts 6, 7, 2019-09 and 2020-12, where these keywords mean
# the same. Each check returns True only when jsonschema would find no error in that part of the
# schema; a part it does not understand is `_never` ("not certain"), so a call that reaches it goes
# to jsonschema and one that does not (an optional argument left out) keeps the fast path.

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

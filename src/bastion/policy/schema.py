"""A call's arguments against the input schema the server listed (and pins hold steady).

`compile_schema` turns a tool's `inputSchema` into a `SchemaCheck` once per definition; the
check then refuses arguments that break it (`arguments.schema`, with the JSON path of the
first violation) and a schema that does not compile refuses every call (`arguments.schema_invalid`,
fail closed). Types, `enum`, `const`, `required`, `additionalProperties: false`, lengths, sizes
and the combinators are enforced by `jsonschema` (draft 2020-12 unless the schema names another).

The schema comes from the server, so it is untrusted input to Bastion itself:

- It is interpreted, never turned into code. (`fastjsonschema` validates about 15 times faster, 0.7 µs
  against 6-13 µs, by generating and executing Python from the schema; with a schema written by
  a possibly malicious server, that trade is not made.)
- Its regular expressions are not run: `pattern` is not evaluated, and `patternProperties`
  neither constrains values nor exempts names from `additionalProperties` (an object with
  `patternProperties` accepts its other names). A server's regex can be written to backtrack for
  hours (ReDoS) and would stall the gateway; Bastion's own path, URL, SQL and command checks run
  on every string whatever the schema says.
- References resolve within the schema only; one that points elsewhere fails the call.
- Formats are annotations, as the specification says by default.

A schema can only tighten what Bastion checks: validation runs before, not instead of, the
argument constraints.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import extend, validator_for
from referencing.exceptions import Unresolvable

from bastion.policy.refusal import Refusal

__all__ = ["SchemaCheck", "compile_schema"]

MAX_SHOWN = 160


def _no_pattern(
    _validator: Validator, _pattern: Any, _instance: Any, _schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    return iter(())


def _validator_class(schema: Mapping[str, Any]) -> type[Validator]:
    return _without_regexes(validator_for(schema, default=Draft202012Validator))


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

    def refusal(self, arguments: Mapping[str, Any]) -> Refusal | None:
        if self.problem is not None:
            return Refusal("arguments.schema_invalid", f"the tool's input schema is invalid ({self.problem})")
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
        cls = _validator_class(document)
        cls.check_schema(document)
    except SchemaError as exc:
        return SchemaCheck(None, f"{exc.json_path}: {exc.message}"[:300])
    except (Unresolvable, RecursionError, TypeError, ValueError) as exc:
        return SchemaCheck(None, str(exc)[:300])
    return SchemaCheck(cls(document), None)

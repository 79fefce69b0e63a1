"""The full JSON Schema check of `schema.py`, by `jsonschema`: compiling a listed input schema and
judging the calls the fast path is not certain of.

Importing this module imports `jsonschema` (with `referencing`, `rpds`, `attrs` and every draft's
metaschema, about 2.7 MB of a gateway's memory), so `schema.py` imports it only when a schema
or a call first needs it. What it decides is what `schema.py` describes: the draft the schema
names (2020-12 by default), no regular expressions run, references within the schema only.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

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

__all__ = ["compile_full", "judge"]

MAX_SHOWN = 160

_FAST_DRAFTS: frozenset[type[Validator]] = frozenset(
    {Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator}
)
"""The drafts whose common subset the fast path knows."""


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


def compile_full(document: dict[str, Any]) -> tuple[Validator, frozenset[str] | None] | str:
    """The schema's validator, with the keywords of its draft when the fast path knows that draft
    (None: a draft before 6); or why the schema does not compile."""
    try:
        base, cls = _validator_class(document)
        cls.check_schema(document)
    except SchemaError as exc:
        return f"{exc.json_path}: {exc.message}"[:300]
    except (Unresolvable, RecursionError, TypeError, ValueError) as exc:
        return str(exc)[:300]
    return cls(document), frozenset(cls.VALIDATORS) if base in _FAST_DRAFTS else None


def judge(validator: Validator, arguments: Mapping[str, Any]) -> Refusal | None:
    """jsonschema's verdict on a call's arguments, naming the first violation by its JSON path."""
    try:
        if validator.is_valid(arguments):  # the common case, without ranking errors
            return None
        error = best_match(validator.iter_errors(arguments))
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

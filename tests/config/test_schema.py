"""The JSON Schema of `bastion.toml`: draft-07 for editors, every reference resolvable, fields described."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

from bastion.config.schema import SCHEMA_DIRECTIVE, SCHEMA_NAME, config_schema, schema_text


def nodes(value: object) -> Iterator[dict[str, Any]]:
    """Every object in a JSON value, depth first."""
    if isinstance(value, dict):
        node = cast(dict[str, Any], value)
        yield node
        for item in node.values():
            yield from nodes(item)
    elif isinstance(value, list):
        for item in cast(list[Any], value):
            yield from nodes(item)


def test_the_directive_names_the_schema_file_beside_the_config() -> None:
    assert SCHEMA_NAME == "bastion.schema.json"
    assert SCHEMA_DIRECTIVE == "#:schema ./bastion.schema.json"


def test_every_reference_points_at_a_definition_of_the_schema() -> None:
    schema = config_schema()
    references = {node["$ref"] for node in nodes(schema) if "$ref" in node}
    assert references
    assert all(ref.startswith("#/definitions/") for ref in references)
    assert {ref.removeprefix("#/definitions/") for ref in references} <= set(schema["definitions"])
    assert "$defs" not in schema


def test_tuples_are_written_as_draft_07_item_lists() -> None:
    schema = config_schema()
    assert not any("prefixItems" in node for node in nodes(schema))
    window = schema["definitions"]["WatchConfig"]["properties"]["maintenance"]["items"]
    assert window["items"] == [{"type": "string"}, {"type": "string"}]
    assert (window["minItems"], window["maxItems"]) == (2, 2)


def test_a_fields_docstring_becomes_its_description() -> None:
    watch = config_schema()["definitions"]["WatchConfig"]["properties"]
    assert watch["maintenance"]["description"].startswith("Windows (ISO 8601 start, end)")


def test_the_written_text_is_the_schema_with_a_final_newline_and_stable() -> None:
    text = schema_text()
    assert text.endswith("}\n")
    assert json.loads(text) == config_schema()
    assert schema_text() == text
    assert json.loads(text)["title"] == "bastion.toml"

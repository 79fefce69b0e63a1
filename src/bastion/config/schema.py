"""The JSON Schema of `bastion.toml`, generated from the configuration models, for editors.

Editors that read TOML through taplo (VS Code's Even Better TOML, Helix, Zed, Neovim) and
tombi complete and check keys against a JSON Schema named by a header directive:

    #:schema ./bastion.schema.json

The schema is pydantic's, made portable: definitions under `definitions` and tuples as item
lists (draft-07, which every such editor reads), and each field's docstring as its description.
It is written by `bastion config schema` and beside the starter by `bastion init`.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
from typing import Any

from pydantic import BaseModel

from bastion.config import model
from bastion.config.model import BastionConfig

__all__ = ["SCHEMA_DIRECTIVE", "SCHEMA_NAME", "config_schema", "schema_text"]

SCHEMA_NAME = "bastion.schema.json"
"""The schema's file name, beside `bastion.toml`."""
SCHEMA_DIRECTIVE = f"#:schema ./{SCHEMA_NAME}"
"""The taplo header directive (relative to the TOML file) that names the schema."""
DRAFT = "http://json-schema.org/draft-07/schema#"


def config_schema() -> dict[str, Any]:
    """The schema of the root configuration model, as a JSON value."""
    generated = BastionConfig.model_json_schema(ref_template="#/definitions/{model}")
    definitions: dict[str, Any] = generated.pop("$defs", {})
    classes = _model_classes()
    docs = _field_docstrings()
    _describe_fields(generated, BastionConfig, docs)
    for name, definition in definitions.items():
        if name in classes:
            _describe_fields(definition, classes[name], docs)
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        **generated,
        "title": "bastion.toml",
        "description": "Bastion's configuration: the MCP servers it runs and how clients reach them "
        "(reference: docs/configuration.md).",
        "definitions": definitions,
    }
    return _draft07(schema)


def schema_text() -> str:
    """The schema as the file Bastion writes: stable key order, two-space indent, final newline."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"


def _model_classes() -> dict[str, type[BaseModel]]:
    """The configuration models by class name (the names pydantic gives their definitions)."""
    return {
        value.__name__: value
        for value in vars(model).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == model.__name__
    }


def _describe_fields(schema: dict[str, Any], cls: type[BaseModel], docs: dict[str, dict[str, str]]) -> None:
    """Each property without a description gets its field's docstring (the string under it in the class)."""
    properties: dict[str, Any] = schema.get("properties", {})
    for name, field in cls.model_fields.items():
        key = field.alias or name
        text = field.description or docs.get(cls.__name__, {}).get(name)
        if key in properties and text and "description" not in properties[key]:
            properties[key]["description"] = text


def _field_docstrings() -> dict[str, dict[str, str]]:
    """Class name → field name → the docstring under the field, from the models' source (parsed once)."""
    try:
        source = inspect.getsource(model)
    except (OSError, TypeError):
        return {}
    found: dict[str, dict[str, str]] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        fields = found.setdefault(node.name, {})
        for current, following in itertools.pairwise(node.body):
            if (
                isinstance(current, ast.AnnAssign)
                and isinstance(current.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                fields[current.target.id] = inspect.cleandoc(following.value.value)
    return found


def _draft07(value: Any) -> Any:
    """Tuples written the draft-07 way (`items` as a list), which taplo and VS Code read."""
    if isinstance(value, dict):
        node: dict[str, Any] = {key: _draft07(item) for key, item in value.items()}  # pyright: ignore[reportUnknownVariableType]
        if "prefixItems" in node:
            if "items" in node:
                node["additionalItems"] = node.pop("items")
            node["items"] = node.pop("prefixItems")
        return node
    if isinstance(value, list):
        return [_draft07(item) for item in value]  # pyright: ignore[reportUnknownVariableType]
    return value

"""The JSON Schema of bastion.toml is the configuration models': `bastion config schema` prints it,
`bastion init` writes it beside the starter whose first line names it, the copy in docs/ is the same,
and it accepts what the models accept and flags what they refuse."""

from __future__ import annotations

import functools
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from pydantic import BaseModel

from bastion.config import model
from bastion.config.load import parse_config
from bastion.config.model import BastionConfig
from bastion.config.schema import SCHEMA_DIRECTIVE, SCHEMA_NAME, config_schema, schema_text
from bastion.config.starter import starter_toml
from bastion.errors import ConfigError
from tests.cli.conftest import bastion

ROOT = Path(__file__).parents[2]
COMMITTED = ROOT / "docs" / SCHEMA_NAME
REGENERATE = "regenerate it: bastion config schema --output docs/bastion.schema.json"


@functools.cache
def _validator() -> Draft7Validator:
    schema = config_schema()
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _errors(document: dict[str, Any]) -> list[str]:
    return [error.message for error in _validator().iter_errors(document)]  # pyright: ignore[reportUnknownMemberType]


def test_the_committed_schema_is_the_one_the_models_generate() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == schema_text(), REGENERATE


def test_every_model_is_a_closed_definition_with_exactly_its_fields() -> None:
    schema = config_schema()
    classes = {
        cls.__name__: cls
        for cls in vars(model).values()
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__ == model.__name__
    }
    tables: list[tuple[type[BaseModel], dict[str, Any]]] = [(BastionConfig, schema)]
    tables += [(classes[name], definition) for name, definition in schema["definitions"].items() if name in classes]
    assert len(tables) > 10
    for cls, definition in tables:
        fields = {field.alias or name for name, field in cls.model_fields.items()}
        assert set(definition["properties"]) == fields, cls.__name__
        assert definition["additionalProperties"] is False, cls.__name__


def test_fields_are_described_from_their_docstrings() -> None:
    auth = config_schema()["properties"]["auth"]
    assert "OAuth" in auth["description"]


def test_bastion_config_schema_prints_it_and_writes_it(home: Path, tmp_path: Path) -> None:
    printed = bastion(home, "config", "schema")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == schema_text()
    out = tmp_path / "editor" / SCHEMA_NAME
    out.parent.mkdir()
    written = bastion(home, "config", "schema", "--output", str(out))
    assert written.returncode == 0, written.stderr
    assert out.read_text(encoding="utf-8") == schema_text()
    assert [p.name for p in out.parent.iterdir()] == [SCHEMA_NAME]  # no partial file left behind


def test_init_writes_the_starter_and_the_schema_its_first_line_names(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    done = bastion(home, "init", "--path", str(config))
    assert done.returncode == 0, done.stderr
    text = config.read_text(encoding="utf-8")
    directive = text.splitlines()[0]
    assert directive == SCHEMA_DIRECTIVE
    named = config.parent / directive.removeprefix("#:schema ").strip()
    assert named.read_text(encoding="utf-8") == schema_text()
    assert _errors(tomllib.loads(text)) == []
    parse_config(text)  # the directive is a comment to Bastion


def test_the_starter_loads_and_is_valid_under_the_schema() -> None:
    assert starter_toml().startswith(SCHEMA_DIRECTIVE + "\n\n")
    assert _errors(tomllib.loads(starter_toml())) == []


@pytest.mark.parametrize(
    "toml",
    [
        '[gateway]\nnamspace = "{server}__{tool}"\n',  # a misspelt key
        '[gateway]\nmax_depth = "deep"\n',  # a wrong type
        '[servers.fs]\ncommand = "x"\nprotocol = "2020-01-01"\n',  # not one of the choices
        '[servers.fs]\ncommand = "x"\ngrants = ["root"]\n',
        '[http]\nopen = "maybe"\n',
        "[watchdog]\n",  # an unknown table
    ],
)
def test_what_the_models_refuse_the_schema_flags(toml: str) -> None:
    with pytest.raises(ConfigError):
        parse_config(toml)
    assert _errors(tomllib.loads(toml)), toml


def test_every_config_example_in_the_docs_that_loads_is_valid_under_the_schema() -> None:
    checked = 0
    for page in sorted((ROOT / "docs").glob("*.md")):
        for block in re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL):
            try:
                parse_config(block)
            except ConfigError:
                continue  # a fragment of a larger file
            assert _errors(tomllib.loads(block)) == [], f"{page.name}: {block}"
            checked += 1
    assert checked >= 3


def test_the_schema_is_valid_json_with_a_draft_07_dialect() -> None:
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "$defs" not in json.dumps(schema)
    assert "prefixItems" not in json.dumps(schema)

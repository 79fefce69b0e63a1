"""Argument scoping that does not trust the server's schema: against a real server whose tools
declare nothing (`additionalProperties: true`), every string is checked, at any depth, by its
name and by its content, and the refused calls never reach the server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from tests.conftest import PYTHON
from tests.e2e.support import through_stdio
from tests.e2e.test_policy_attacks import refused
from tests.policy.test_cli import bastion

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

LOOSE = Path(__file__).parents[1] / "servers" / "loose.py"


def loose_config(tmp_path: Path, root: Path, log: Path) -> Path:
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[servers.loose]\ncommand = "{PYTHON}"\nargs = ["{LOOSE}", "{log}"]\n'
        f'fs_read = ["{root}"]\nfs_write = ["{log.parent}"]\ngrants = ["network", "write"]\n',
        encoding="utf-8",
    )
    return config


def reached(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    return [json.loads(line)["arguments"] for line in log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_text("hello", encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    return loose_config(tmp_path, root, logs / "calls.jsonl"), root, logs / "calls.jsonl"


async def attacks_refused(client: Client, root: Path) -> None:
    metadata = "http://169.254.169.254/latest/meta-data/"
    assert await refused(client, "http_post", {"url": metadata}) == "urls.metadata"
    mapped = "http://[::ffff:169.254.169.254]/latest/meta-data/"
    assert await refused(client, "http_post", {"url": mapped}) == "urls.metadata"
    assert (await refused(client, "read_file", {"path": f"{root}/../../../etc/shadow"})).startswith("paths.")
    assert (await refused(client, "read_file", {"path": "./.env"})).startswith("paths.")
    # Names the policy has never heard of, and depths the schema never mentioned: the content decides.
    assert await refused(client, "lookup", {"target": metadata}) == "urls.metadata"
    assert await refused(client, "lookup", {"q": "169.254.169.254:80"}) == "urls.metadata"
    assert (await refused(client, "lookup", {"opts": {"deep": [{"x": "/etc/shadow"}]}})).startswith("paths.")
    assert (await refused(client, "lookup", {"blob": json.dumps({"where": "~/.ssh/id_rsa"})})).startswith("paths.")
    assert (await refused(client, "lookup", {"p": "%2e%2e%2f%2e%2e%2fetc%2fpasswd"})).startswith("paths.")


async def test_a_server_that_declares_nothing_has_every_string_checked(
    home: Path, setup: tuple[Path, Path, Path]
) -> None:
    config, root, log = setup
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        await attacks_refused(client, root)
        assert reached(log) == []
        # Benign look-alikes go through: text with a path in it, a path inside the root, a version, a time.
        benign: list[dict[str, object]] = [
            {"path": str(root / "notes.txt")},
            {"query": "how do I read /etc/hosts on linux?"},
            {"version": "v1.2:3", "at": "12:30", "zone": "America/New_York"},
            {"nested": {"file": str(root / "notes.txt"), "tags": ["a/b", "x"]}},
        ]
        for arguments in benign:
            result = await client.call_tool("lookup" if "path" not in arguments else "read_file", arguments)
            assert not result.is_error
        assert reached(log) == benign


async def test_policy_explain_without_a_definition_agrees_with_the_gateway(
    home: Path, setup: tuple[Path, Path, Path]
) -> None:
    config, root, _log = setup
    for tool, arguments, rule in [
        ("http_post", {"url": "http://169.254.169.254/latest/"}, "urls.metadata"),
        ("lookup", {"opts": {"deep": [{"x": "/etc/shadow"}]}}, "paths.outside_roots"),
        ("read_file", {"path": str(root / "notes.txt")}, "read"),
    ]:
        for definition in (None, {"name": tool, "inputSchema": {"type": "object", "additionalProperties": True}}):
            args = ["policy", "explain", "--config", str(config), "--server", "loose", "--tool", tool]
            args += ["--args", json.dumps(arguments), "--json"]
            if definition is not None:
                args += ["--definition", json.dumps(definition)]
            done = bastion(home, *args)
            assert json.loads(done.stdout)["rule"] == rule, (tool, definition, done.stdout, done.stderr)


async def test_arguments_against_the_listed_schema_are_refused_before_the_server_sees_them(
    home: Path, setup: tuple[Path, Path, Path]
) -> None:
    config, _root, log = setup
    async with through_stdio(home, ["run", "--config", str(config)]) as client:
        assert await refused(client, "set_role", {"user": "ann", "role": ["viewer", "admin"]}) == "arguments.schema"
        assert await refused(client, "set_role", {"user": "ann", "role": "admin"}) == "arguments.schema"
        assert reached(log) == []
        result = await client.call_tool("set_role", {"user": "ann", "role": "editor"})
        assert not result.is_error
        assert reached(log) == [{"user": "ann", "role": "editor"}]


def test_a_definition_that_is_neither_json_nor_a_file_is_a_clear_error(
    home: Path, setup: tuple[Path, Path, Path]
) -> None:
    config, _root, _log = setup
    args = ["policy", "explain", "--config", str(config), "--server", "loose", "--tool", "lookup"]
    done = bastion(home, *args, "--definition", "not-json-nor-a-file")
    assert done.returncode == 2
    assert "--definition" in done.stderr
    assert "Traceback" not in done.stderr
    broken = bastion(home, *args, "--definition", '{"name": ')
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr

"""Screening against a poisoned server: a poisoned description is stripped (or the tool blocked),
injected instructions are removed from the server's instructions, results lose their terminal
escapes, invisible characters, exfiltration image and secret, and a benign look-alike (a
security article quoting an injection, an ordinary forecast) passes untouched."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import mcp_types as mt
import pytest
from mcp.shared.exceptions import MCPError

from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import through_stdio

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

POISONED = Path(__file__).parents[1] / "servers" / "poisoned.py"


def config(tmp_path: Path, screen: str = "", *, clean_instructions: bool = False) -> Path:
    path = tmp_path / "bastion.toml"
    extra = ', "--clean-instructions"' if clean_instructions else ""
    path.write_text(
        f'[servers.weather]\ncommand = "{PYTHON}"\nargs = ["{POISONED}"{extra}]\n[servers.weather.screen]\n{screen}',
        encoding="utf-8",
    )
    return path


def text(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


async def test_a_poisoned_description_is_stripped_and_its_neighbour_untouched(home: Path, tmp_path: Path) -> None:
    async with through_stdio(home, ["run", "--config", str(config(tmp_path))]) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        weather = tools["get_weather"].description or ""
        assert "id_rsa" not in weather
        assert "\u200b" not in weather
        assert "[bastion:" in weather
        assert tools["get_forecast"].description == (
            "Get the forecast for a city: temperature, wind and rain for the next days."
        )
        assert "ignore all previous instructions" not in (client.instructions or "").lower()


async def test_blocking_hides_the_poisoned_tool(home: Path, tmp_path: Path) -> None:
    blocking = config(tmp_path, 'listing = "block"\n', clean_instructions=True)
    async with through_stdio(home, ["run", "--config", str(blocking)]) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert "get_weather" not in names
    assert {"get_forecast", "read_page", "read_article"} <= names


async def test_blocking_with_poisoned_instructions_silences_the_whole_server(home: Path, tmp_path: Path) -> None:
    async with through_stdio(home, ["run", "--config", str(config(tmp_path, 'listing = "block"\n'))]) as client:
        assert (await client.list_tools()).tools == []
        assert not client.instructions


async def test_results_are_sanitised_and_a_quoting_article_passes(home: Path, tmp_path: Path) -> None:
    async with through_stdio(home, ["run", "--config", str(config(tmp_path))]) as client:
        page = text(await client.call_tool("read_page", {"city": "x"}))
        article = text(await client.call_tool("read_article", {"city": "x"}))
        forecast = text(await client.call_tool("get_forecast", {"city": "Berlin"}))
    assert "\x1b" not in page
    assert "AKIAIOSFODNN7EXAMPLF" not in page
    assert "evil.example/collect" not in page
    assert "[bastion:" in page
    assert article.startswith("Prompt injection is a class of attacks.")
    assert "ignore previous instructions" in article
    assert forecast == "Sunny, 21°C, light wind from the west."
    found = await anyio.run_process(
        [*BASTION, "audit", "search", "--kind", "screen.finding", "--json"], env=child_env(home)
    )
    rules = {f["rule"] for row in map(json.loads, found.stdout.splitlines()) for f in row["findings"]}
    assert {"invisible.ansi", "exfil.image"} <= rules
    assert any(rule.startswith("secret.") for rule in rules)
    assert b"AKIAIOSFODNN7EXAMPLF" not in found.stdout


async def test_a_blocking_policy_refuses_a_poisoned_result(home: Path, tmp_path: Path) -> None:
    path = config(tmp_path, 'injections = "block"\n')
    async with through_stdio(home, ["run", "--config", str(path)]) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("read_page", {"city": "x"})
        assert text(await client.call_tool("read_article", {"city": "x"})).startswith("Prompt injection")
    assert refused.value.error.code == -32011
    assert isinstance(refused.value.error.data, dict)
    assert refused.value.error.data["rule"] == "screen.blocked"  # pyright: ignore[reportUnknownMemberType]


async def test_an_order_to_mail_out_a_token_the_result_just_printed_is_stripped(home: Path, tmp_path: Path) -> None:
    async with through_stdio(home, ["run", "--config", str(config(tmp_path))]) as client:
        linked = text(await client.call_tool("link_account", {"city": "x"}))
    assert "audit@collector.example" not in linked
    assert "[bastion: removed suspected instructions]" in linked
    assert linked.endswith("Your account is ready.")

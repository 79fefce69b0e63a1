"""Many servers behind one endpoint: names are namespaced and routed back, hidden tools stay out, collisions
are reported instead of one server shadowing another, and pages turn with Bastion's own cursor."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from bastion.proxy.catalog import Collision, InvalidCursor, Namer, Route, build_catalog, paginate

NAMESPACED = Namer("{server}__{tool}", transparent=False)
NOTHING: dict[str, list[dict[str, Any]]] = {}


def shown(_server: str, _item: Mapping[str, Any]) -> Mapping[str, str] | None:
    return None


def test_tool_names_are_formed_from_the_template_and_routed_back_to_the_servers_own_name() -> None:
    catalog = build_catalog(
        NAMESPACED, {"git": [{"name": "log"}], "fs": [{"name": "read"}]}, NOTHING, NOTHING, NOTHING, shown
    )
    assert [tool["name"] for tool in catalog.tools] == ["git__log", "fs__read"]
    assert catalog.tool_routes["git__log"] == Route("git", "log")
    assert catalog.collisions == ()


def test_a_transparent_namer_passes_names_through() -> None:
    assert Namer("{server}__{tool}", transparent=True).expose("git", "log") == "log"


def test_two_servers_exposing_one_name_are_a_collision_and_the_first_keeps_the_route() -> None:
    tools = {"a": [{"name": "search"}], "b": [{"name": "search"}]}
    catalog = build_catalog(Namer("", transparent=True), tools, NOTHING, NOTHING, NOTHING, shown)
    assert catalog.collisions == (Collision("tool", "search", ("a", "b")),)
    assert catalog.tool_routes["search"].server == "a"
    assert len(catalog.tools) == 1
    assert catalog.collisions[0].describe() == "tool 'search' is exposed by servers a, b"


def test_hidden_tools_and_nameless_items_are_left_out() -> None:
    def hide(_server: str, item: Mapping[str, Any]) -> Mapping[str, str] | None:
        return {"action": "deny"} if item["name"] == "rm" else None

    tools = {"fs": [{"name": "read"}, {"name": "rm"}, {"description": "no name"}]}
    catalog = build_catalog(NAMESPACED, tools, NOTHING, NOTHING, NOTHING, hide)
    assert list(catalog.tool_routes) == ["fs__read"]


def test_resources_route_by_uri_and_templates_by_their_longest_literal_prefix() -> None:
    resources = {"fs": [{"uri": "file:///a"}]}
    templates = {"fs": [{"uriTemplate": "file:///{path}"}], "docs": [{"uriTemplate": "file:///docs/{page}"}]}
    catalog = build_catalog(NAMESPACED, NOTHING, NOTHING, resources, templates, shown)
    assert catalog.route_resource("file:///a") == Route("fs", "file:///a")
    assert catalog.route_resource("file:///docs/intro") == Route("docs", "file:///docs/intro")
    assert catalog.route_resource("file:///other") == Route("fs", "file:///other")
    assert catalog.route_resource("https://elsewhere") is None


def test_pages_turn_with_an_opaque_cursor_until_the_last() -> None:
    items = [{"n": i} for i in range(5)]
    first = paginate(items, None, page_size=2)
    assert first["items"] == [{"n": 0}, {"n": 1}]
    second = paginate(items, first["nextCursor"], page_size=2)
    last = paginate(items, second["nextCursor"], page_size=2)
    assert second["items"] == [{"n": 2}, {"n": 3}]
    assert last == {"items": [{"n": 4}]}


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"someone:2").decode(),
        base64.urlsafe_b64encode(b"bastion:x").decode(),
        base64.urlsafe_b64encode(b"bastion:99").decode(),
    ],
)
def test_a_cursor_bastion_did_not_give_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        paginate([{"n": 1}], cursor)

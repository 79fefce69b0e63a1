"""Aggregation of many servers' listings behind one endpoint: namespacing, routing, pagination.

Pure: listings in, exposed listings and routes out. With one server and namespacing off,
names pass through unchanged (a transparent wrap). Two servers that would expose the same
name are a collision, reported to the caller instead of one silently shadowing the other.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Catalog", "Collision", "Hide", "InvalidCursor", "Namer", "Route", "build_catalog", "paginate"]

PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Route:
    server: str
    name: str
    """The server's own name (tool or prompt), or the URI for resources."""
    item: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    """The definition as the server listed it (tools and prompts)."""


@dataclass(frozen=True, slots=True)
class Collision:
    kind: str
    exposed: str
    servers: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.kind} {self.exposed!r} is exposed by servers {', '.join(self.servers)}"


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Namer:
    """Forms exposed names from the configured template, e.g. '{server}__{tool}'."""

    template: str
    transparent: bool

    def expose(self, server: str, name: str) -> str:
        if self.transparent:
            return name
        return self.template.replace("{server}", server).replace("{tool}", name)


@dataclass(frozen=True, slots=True)
class Catalog:
    tools: tuple[dict[str, Any], ...]
    prompts: tuple[dict[str, Any], ...]
    resources: tuple[dict[str, Any], ...]
    templates: tuple[dict[str, Any], ...]
    tool_routes: Mapping[str, Route]
    prompt_routes: Mapping[str, Route]
    resource_routes: Mapping[str, Route]
    template_routes: tuple[tuple[str, str], ...]
    """(literal prefix of a URI template, server), longest prefix first."""
    collisions: tuple[Collision, ...]

    def route_resource(self, uri: str) -> Route | None:
        route = self.resource_routes.get(uri)
        if route is not None:
            return route
        for prefix, server in self.template_routes:
            if uri.startswith(prefix):
                return Route(server, uri)
        return None


Listing = Mapping[str, Sequence[Mapping[str, Any]]]
Hide = Callable[[str, Mapping[str, Any]], Mapping[str, str] | None]
"""Why one server's listed tool is hidden from this client ((server, definition) -> the decision
record), or None when it is shown."""
"""Per server, the items it listed (raw dicts as the server sent them)."""


def build_catalog(
    namer: Namer,
    tools: Listing,
    prompts: Listing,
    resources: Listing,
    templates: Listing,
    hide: Hide,
) -> Catalog:
    exposed_tools, tool_routes, collisions = _named("tool", namer, tools, hide)
    exposed_prompts, prompt_routes, prompt_collisions = _named("prompt", namer, prompts, lambda _s, _i: None)
    collisions += prompt_collisions
    resource_items: list[dict[str, Any]] = []
    resource_routes: dict[str, Route] = {}
    owners: dict[str, list[str]] = {}
    for server, items in resources.items():
        for item in items:
            uri = item.get("uri")
            if not isinstance(uri, str):
                continue
            owners.setdefault(uri, []).append(server)
            if uri not in resource_routes:
                resource_routes[uri] = Route(server, uri)
                resource_items.append(dict(item))
    collisions += [Collision("resource", uri, tuple(s)) for uri, s in owners.items() if len(s) > 1]
    template_items: list[dict[str, Any]] = []
    template_routes: list[tuple[str, str]] = []
    for server, items in templates.items():
        for item in items:
            raw = item.get("uriTemplate")
            if not isinstance(raw, str):
                continue
            template_items.append(dict(item))
            # Routing needs only to tell servers apart: the literal part before the first expression.
            prefix = raw.split("{", 1)[0]
            if prefix:
                template_routes.append((prefix, server))
    template_routes.sort(key=lambda route: len(route[0]), reverse=True)
    return Catalog(
        tuple(exposed_tools),
        tuple(exposed_prompts),
        tuple(resource_items),
        tuple(template_items),
        tool_routes,
        prompt_routes,
        resource_routes,
        tuple(template_routes),
        tuple(collisions),
    )


def _named(
    kind: str, namer: Namer, listing: Listing, hide: Hide
) -> tuple[list[dict[str, Any]], dict[str, Route], list[Collision]]:
    items: list[dict[str, Any]] = []
    routes: dict[str, Route] = {}
    owners: dict[str, list[str]] = {}
    for server, server_items in listing.items():
        for item in server_items:
            name = item.get("name")
            if not isinstance(name, str) or hide(server, item) is not None:
                continue
            exposed = namer.expose(server, name)
            owners.setdefault(exposed, []).append(server)
            if exposed in routes:
                continue
            routes[exposed] = Route(server, name, item)
            items.append({**item, "name": exposed})
    collisions = [Collision(kind, name, tuple(s)) for name, s in owners.items() if len(s) > 1]
    return items, routes, collisions


def paginate(items: Sequence[dict[str, Any]], cursor: str | None, page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of an aggregated listing; the cursor is Bastion's own, opaque to the client."""
    offset = 0
    if cursor is not None:
        try:
            text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
            if not text.startswith("bastion:"):
                raise InvalidCursor(cursor)
            offset = int(text.removeprefix("bastion:"))
        except (binascii.Error, UnicodeError, ValueError):
            raise InvalidCursor(cursor) from None
        if offset < 0 or offset > len(items):
            raise InvalidCursor(cursor)
    end = offset + page_size
    page: dict[str, Any] = {"items": list(items[offset:end])}
    if end < len(items):
        page["nextCursor"] = base64.urlsafe_b64encode(f"bastion:{end}".encode("ascii")).decode("ascii")
    return page

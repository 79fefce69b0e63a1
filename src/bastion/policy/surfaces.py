"""What a client sends besides tool calls that can carry a path or a URL: the URI of
`resources/read` (and subscribe), the arguments of `prompts/get`, and the argument values of
`completion/complete`. They get the same checks as tool arguments, so a `file:` URI or a prompt
argument cannot reach what a tool call could not.

- A resource URI with the `file:` scheme (`file:///…`, `file://localhost/…`, any percent,
  double or overlong encoding) is a path and must lie inside the server's readable roots; an
  `http(s)`, `ftp`, `gopher`, `ws(s)` or `dict` URI is a URL and gets the SSRF checks. Other
  schemes (`notes://…`, `postgres://…/schema`) name the server's own resources and are left to it.
- Prompt and completion arguments are strings by the specification: each is checked by its name
  and content as a tool argument would be (no schema: prompts declare names only).

Pure: values in, a `Refusal` or None out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.inventory.risk import RiskClass
from bastion.policy.decide import ServerPolicy, SqlCheck, argument_refusal
from bastion.policy.paths import check_path
from bastion.policy.profile import ToolProfile
from bastion.policy.refusal import Refusal
from bastion.policy.urls import Resolver, check_url, check_url_resolved

__all__ = ["SURFACES", "surface_refusal"]

SURFACES = frozenset({"resources/read", "resources/subscribe", "prompts/get", "completion/complete"})
_NETWORK_SCHEMES = ("http:", "https:", "ftp:", "gopher:", "ws:", "wss:", "dict:")


def surface_refusal(
    rules: ServerPolicy,
    method: str,
    params: Mapping[str, Any] | None,
    sql_check: SqlCheck | None,
    resolve: Resolver | None = None,
) -> Refusal | None:
    params = params or {}
    if method in ("resources/read", "resources/subscribe"):
        return resource_refusal(rules, params.get("uri"), resolve)
    if method == "prompts/get":
        arguments = params.get("arguments")
        return _arguments(rules, str(params.get("name", "")), arguments, sql_check, resolve)
    if method == "completion/complete":
        argument = params.get("argument")
        values: dict[str, object] = {}
        if isinstance(argument, dict):
            values[str(argument.get("name", "value"))] = argument.get("value")  # pyright: ignore[reportUnknownMemberType]
        context = params.get("context")
        known = context.get("arguments") if isinstance(context, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if isinstance(known, dict):
            values.update({str(k): v for k, v in known.items()})  # pyright: ignore[reportUnknownVariableType]
        ref = params.get("ref")
        uri = ref.get("uri") if isinstance(ref, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if isinstance(uri, str) and "{" not in uri:
            refusal = resource_refusal(rules, uri, resolve)
            if refusal is not None:
                return refusal
        return _arguments(rules, "completion", values, sql_check, resolve)
    return None


def resource_refusal(rules: ServerPolicy, uri: object, resolve: Resolver | None) -> Refusal | None:
    if not isinstance(uri, str):
        return None
    scheme = uri.strip()[:8].lower()
    if scheme.startswith("file:"):
        refusal = check_path(uri.strip(), rules.paths, write=False)
    elif scheme.startswith(_NETWORK_SCHEMES):
        refusal = check_url(uri, rules.urls) if resolve is None else check_url_resolved(uri, rules.urls, resolve)
    else:
        return None
    return None if refusal is None else Refusal(refusal.rule, f"resource {uri[:200]!r}: {refusal.reason}")


def _arguments(
    rules: ServerPolicy, name: str, arguments: object, sql_check: SqlCheck | None, resolve: Resolver | None
) -> Refusal | None:
    if arguments is None:
        return None
    # Prompts declare argument names only: any name is accepted, every value is checked.
    profile = ToolProfile(name, RiskClass.READ, (), None, True, {})
    return argument_refusal(rules, profile, arguments, 0, sql_check, resolve)

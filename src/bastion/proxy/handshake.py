"""The client-facing handshake in both eras, synthesized with the SDK's typed models.

Handshake era: answer `initialize` with the version the client asked for when Bastion
speaks it, else the newest handshake version. Modern era: answer `server/discover`, and
read and strip the per-request envelope of every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import mcp_types as mt
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from bastion import __version__
from bastion.codes import INVALID_PARAMS
from bastion.types import RpcError

__all__ = [
    "ENVELOPE_KEYS",
    "Envelope",
    "as_modern_result",
    "discover_result",
    "initialize_result",
    "is_modern",
    "parse_envelope",
    "parse_initialize",
    "strip_envelope",
]

ENVELOPE_KEYS = (mt.PROTOCOL_VERSION_META_KEY, mt.CLIENT_INFO_META_KEY, mt.CLIENT_CAPABILITIES_META_KEY)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who the client is and what it can do, from `initialize` or a 2026-07-28 request envelope."""

    protocol_version: str
    capabilities: dict[str, Any]
    name: str = ""
    version: str = ""


def parse_initialize(params: dict[str, Any] | None) -> Envelope | RpcError:
    try:
        request = mt.InitializeRequestParams.model_validate(params or {})
    except ValidationError as exc:
        return RpcError(INVALID_PARAMS, f"Invalid params for initialize: {exc.errors()[0]['msg']}")
    version = request.protocol_version if request.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS else None
    return Envelope(
        version or LATEST_HANDSHAKE_VERSION,
        request.capabilities.model_dump(by_alias=True, mode="json", exclude_none=True),
        request.client_info.name,
        request.client_info.version,
    )


def is_modern(params: dict[str, Any] | None) -> bool:
    meta = params.get("_meta") if params else None
    return isinstance(meta, dict) and mt.PROTOCOL_VERSION_META_KEY in meta


def parse_envelope(params: dict[str, Any] | None) -> Envelope | RpcError:
    found: object = (params or {}).get("_meta") or {}
    if not isinstance(found, dict):  # any JSON value on the wire
        return RpcError(INVALID_PARAMS, "Invalid params: _meta must be an object")
    meta = cast(dict[str, Any], found)
    version = meta.get(mt.PROTOCOL_VERSION_META_KEY)
    if version not in MODERN_PROTOCOL_VERSIONS:
        return RpcError(
            mt.UNSUPPORTED_PROTOCOL_VERSION,
            f"Unsupported protocol version: {version!r}",
            {"supported": list(MODERN_PROTOCOL_VERSIONS), "requested": version},
        )
    capabilities = meta.get(mt.CLIENT_CAPABILITIES_META_KEY)
    if not isinstance(capabilities, dict):
        return RpcError(INVALID_PARAMS, f"Invalid params: _meta needs {mt.CLIENT_CAPABILITIES_META_KEY}")
    info = meta.get(mt.CLIENT_INFO_META_KEY)
    info = info if isinstance(info, dict) else {}
    return Envelope(str(version), capabilities, str(info.get("name", "")), str(info.get("version", "")))  # pyright: ignore[reportUnknownArgumentType]


def strip_envelope(params: dict[str, Any] | None) -> dict[str, Any] | None:
    """The request's params without the envelope keys (they describe the client, not the call)."""
    if not params:
        return params
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        return params
    rest = {key: value for key, value in meta.items() if key not in ENVELOPE_KEYS}  # pyright: ignore[reportUnknownVariableType]
    stripped = {key: value for key, value in params.items() if key != "_meta"}
    if rest:
        stripped["_meta"] = rest
    return stripped


CACHEABLE = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read"})


def as_modern_result(method: str, result: dict[str, Any]) -> dict[str, Any]:
    """A result as a 2026-07-28 client needs it, whichever era the server that produced it spoke.

    Every result carries `resultType`; cacheable ones carry `ttlMs` and `cacheScope`. A result
    a handshake-era server produced says nothing about caching, so it is immediately stale and
    private: the safe reading.
    """
    if "resultType" in result and (method not in CACHEABLE or "ttlMs" in result):
        return result
    result = {**result}
    result.setdefault("resultType", "complete")
    if method in CACHEABLE:
        result.setdefault("ttlMs", 0)
        result.setdefault("cacheScope", "private")
    return result


def _server_info(instance: str) -> mt.Implementation:
    return mt.Implementation(name=instance, version=__version__, title="Bastion MCP gateway")


def initialize_result(
    version: str, capabilities: dict[str, Any], instructions: str | None, instance: str
) -> dict[str, Any]:
    result = mt.InitializeResult(
        protocol_version=version,
        capabilities=mt.ServerCapabilities.model_validate(capabilities),
        server_info=_server_info(instance),
        instructions=instructions,
    )
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def discover_result(capabilities: dict[str, Any], instructions: str | None, instance: str) -> dict[str, Any]:
    result = mt.DiscoverResult(
        supported_versions=list(MODERN_PROTOCOL_VERSIONS),
        capabilities=mt.ServerCapabilities.model_validate(capabilities),
        instructions=instructions,
        _meta={
            mt.SERVER_INFO_META_KEY: _server_info(instance).model_dump(by_alias=True, mode="json", exclude_none=True)
        },
    )
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)

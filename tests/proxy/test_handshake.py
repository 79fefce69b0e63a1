"""The client-facing handshake: versions are negotiated, 2026-07-28 envelopes are read and stripped, and
every result is given what a modern client needs."""

from __future__ import annotations

from typing import Any

import mcp_types as mt
from mcp_types.version import LATEST_HANDSHAKE_VERSION

from bastion.codes import INVALID_PARAMS
from bastion.proxy.handshake import (
    Envelope,
    as_modern_result,
    discover_result,
    initialize_result,
    is_modern,
    parse_envelope,
    parse_initialize,
    strip_envelope,
)
from bastion.types import RpcError

MODERN = "2026-07-28"
INFO = {"name": "client", "version": "1.0"}


def initialize(version: str) -> dict[str, Any]:
    return {"protocolVersion": version, "capabilities": {"roots": {}}, "clientInfo": INFO}


def envelope(**meta: Any) -> dict[str, Any]:
    return {"name": "echo", "_meta": meta}


def test_initialize_keeps_a_version_bastion_speaks_and_offers_the_newest_otherwise() -> None:
    assert parse_initialize(initialize("2025-03-26")) == Envelope("2025-03-26", {"roots": {}}, "client", "1.0")
    offered = parse_initialize(initialize("1999-01-01"))
    assert isinstance(offered, Envelope)
    assert offered.protocol_version == LATEST_HANDSHAKE_VERSION


def test_malformed_initialize_params_are_invalid_params() -> None:
    refused = parse_initialize({"protocolVersion": 3})
    assert isinstance(refused, RpcError)
    assert refused.code == INVALID_PARAMS


def test_a_modern_envelope_names_the_client_and_its_capabilities() -> None:
    params = envelope(
        **{
            mt.PROTOCOL_VERSION_META_KEY: MODERN,
            mt.CLIENT_CAPABILITIES_META_KEY: {"sampling": {}},
            mt.CLIENT_INFO_META_KEY: INFO,
        }
    )
    assert is_modern(params)
    assert parse_envelope(params) == Envelope(MODERN, {"sampling": {}}, "client", "1.0")


def test_an_unsupported_version_or_missing_capabilities_is_refused_with_its_code() -> None:
    old = parse_envelope(envelope(**{mt.PROTOCOL_VERSION_META_KEY: "2025-06-18"}))
    bare = parse_envelope(envelope(**{mt.PROTOCOL_VERSION_META_KEY: MODERN}))
    not_object = parse_envelope({"_meta": [1]})
    assert isinstance(old, RpcError)
    assert (old.code, old.data["requested"]) == (mt.UNSUPPORTED_PROTOCOL_VERSION, "2025-06-18")
    assert isinstance(bare, RpcError)
    assert bare.code == INVALID_PARAMS
    assert isinstance(not_object, RpcError)
    assert not_object.code == INVALID_PARAMS
    assert not is_modern({"name": "echo"})


def test_stripping_removes_only_the_envelope_keys() -> None:
    params = envelope(**{mt.PROTOCOL_VERSION_META_KEY: MODERN, "progressToken": 5})
    assert strip_envelope(params) == {"name": "echo", "_meta": {"progressToken": 5}}
    assert strip_envelope(envelope(**{mt.PROTOCOL_VERSION_META_KEY: MODERN})) == {"name": "echo"}
    assert strip_envelope(None) is None


def test_a_handshake_era_result_is_complete_and_a_cacheable_one_immediately_stale_and_private() -> None:
    assert as_modern_result("tools/call", {"content": []}) == {"content": [], "resultType": "complete"}
    assert as_modern_result("tools/list", {"tools": []}) == {
        "tools": [],
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "private",
    }
    already: dict[str, Any] = {"tools": [], "resultType": "complete", "ttlMs": 60_000, "cacheScope": "public"}
    assert as_modern_result("tools/list", already) is already


def test_initialize_and_discover_results_present_bastion_with_the_given_capabilities() -> None:
    init = initialize_result("2025-06-18", {"tools": {}}, "be careful", "gw")
    assert (init["protocolVersion"], init["capabilities"], init["instructions"]) == (
        "2025-06-18",
        {"tools": {}},
        "be careful",
    )
    assert init["serverInfo"]["name"] == "gw"
    found = discover_result({"tools": {}}, None, "gw")
    assert found["supportedVersions"] == [MODERN]
    assert found["_meta"][mt.SERVER_INFO_META_KEY]["name"] == "gw"

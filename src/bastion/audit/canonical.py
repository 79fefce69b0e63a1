"""Canonical JSON (RFC 8785) for entries and commitments, fast where it provably can be.

`rfc8785` is the reference and the fallback. For values without floats, with integers in
the I-JSON range and object keys below U+E000 (where UTF-8 byte order equals the UTF-16
code-unit order RFC 8785 sorts by), orjson with sorted keys produces the same bytes several
times faster; a property test holds the two equal.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import rfc8785

__all__ = ["canonical", "canonical_any"]

_SAFE_INT = 2**53 - 1


def canonical(value: Any) -> bytes:
    if _fast(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass
    return rfc8785.dumps(value)


def canonical_any(value: Any) -> bytes:
    """Deterministic bytes for any JSON value a peer sent, for commitments.

    RFC 8785 refuses integers beyond ±2**53 (not exact as doubles); a tool's arguments may
    still hold them. Those values are committed to as sorted JSON with the integers exact.
    """
    try:
        return canonical(value)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _fast(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) or item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not -_SAFE_INT <= item <= _SAFE_INT:
                return False
        elif isinstance(item, dict):
            for key, child in item.items():  # pyright: ignore[reportUnknownVariableType]
                if not isinstance(key, str) or (not key.isascii() and max(key) >= "\ue000"):
                    return False
                stack.append(child)
        elif isinstance(item, list | tuple):
            stack.extend(item)  # pyright: ignore[reportUnknownArgumentType]
        else:
            return False
    return True

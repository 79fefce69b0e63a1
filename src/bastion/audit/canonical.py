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
    """Whether orjson's sorted output is the canonical form: no floats, integers within ±2**53, string
    keys below U+E000. Exact types are tested first (the common case); subclasses go the slow way.
    A container's text members are passed over where they are met, never stacked (most members are text)."""
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        item = pop()
        kind: type = type(item)  # pyright: ignore[reportUnknownVariableType]
        if kind is dict:
            try:
                keys = "".join(item)  # pyright: ignore[reportUnknownArgumentType]
            except TypeError:  # a key that is not a string
                return False
            if not keys.isascii() and max(keys) >= "\ue000":
                return False
            members = item.values()  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        elif kind is list or kind is tuple:
            members = item
        elif kind is str or kind is bool or item is None:
            continue
        elif kind is int:
            if not -_SAFE_INT <= item <= _SAFE_INT:
                return False
            continue
        elif isinstance(item, str | int | dict | list | tuple):  # bool cannot be subclassed
            push(_plain(item))
            continue
        else:
            return False
        for member in members:  # pyright: ignore[reportUnknownVariableType]
            if type(member) is not str:  # pyright: ignore[reportUnknownArgumentType]
                push(member)
    return True


def _plain(item: Any) -> Any:
    """A subclass of a JSON type (an enum of strings, say) as the plain value orjson writes for it."""
    if isinstance(item, str):
        return str(item)
    if isinstance(item, int):
        return int(item)
    if isinstance(item, dict):
        return dict(item)  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
    return list(item)  # pyright: ignore[reportUnknownArgumentType]

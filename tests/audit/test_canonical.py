"""The fast canonical encoder produces exactly the bytes of the RFC 8785 reference."""

from __future__ import annotations

from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.audit.canonical import canonical, canonical_any

keys = st.text(max_size=6)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=2000)
@given(json_values)
def test_canonical_equals_the_rfc8785_reference_for_any_json_value(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical(value)
        assert canonical_any(value) == canonical_any(value)
        return
    assert canonical(value) == expected
    assert canonical_any(value) == expected


def test_keys_that_sort_differently_in_utf16_use_the_reference() -> None:
    value = {"\U0001f600": 1, "\ufb01": 2}
    assert canonical(value) == rfc8785.dumps(value)
    assert canonical(value).index("\U0001f600".encode()) < canonical(value).index("\ufb01".encode())


def test_subclasses_of_json_types_and_tuples_encode_as_their_plain_values() -> None:
    from collections import OrderedDict
    from enum import IntEnum, StrEnum

    class Kind(StrEnum):
        CALL = "tool.call"

    class Level(IntEnum):
        HIGH = 3

    value = OrderedDict([("z", Kind.CALL), ("a", (Level.HIGH, [Kind.CALL]))])
    assert canonical(value) == rfc8785.dumps({"a": [3, ["tool.call"]], "z": "tool.call"})

"""Fuzz frames, as bytes on the wire: random bytes, truncated JSON, huge and odd ids, deep nesting, wrong
types in every field, duplicate keys, invalid UTF-8, NUL bytes, batches, 5 MB frames, responses with
unknown ids, case-variant members, notifications with ids, a missing `jsonrpc`.

`pending=True` makes frames for the server's side: ids may be PENDING_ID, which the test's server
replaces by the id of the call the gateway is waiting on, so responses to it come bent too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st
from tests.transport.fuzz_harness import INITIALIZE, LIMIT, PENDING_ID, dump, envelope

from bastion.transport.jsonrpc import Frame

MISSING: Any = object()
"""In place of a value: the member is left out."""

CLIENT_TEMPLATES: dict[str, dict[str, Any]] = {
    "initialize": INITIALIZE,
    "server/discover": {"_meta": envelope()},
    "ping": {},
    "tools/call": {"name": "echo", "arguments": {"marker": "m"}},
    "tools/list": {"cursor": "YmFzdGlvbjow"},
    "prompts/get": {"name": "p", "arguments": {"a": "b"}},
    "resources/read": {"uri": "file:///x"},
    "resources/subscribe": {"uri": "file:///x"},
    "completion/complete": {"ref": {"type": "ref/prompt", "name": "p"}, "argument": {"name": "a", "value": "v"}},
    "logging/setLevel": {"level": "debug"},
    "notifications/initialized": {},
    "notifications/cancelled": {"requestId": 1, "reason": "x"},
    "notifications/progress": {"progressToken": 1, "progress": 1, "total": 2},
    "notifications/roots/list_changed": {},
}
"""Valid params for what a client sends; a frame of each is bent one field at a time."""
OPENING = ["initialize", "server/discover", "ping", "tools/call", "tools/list"]
"""What a client may send first: the handshake of either era, or a request that opens a 2026-07-28 session."""
SERVER_FRAMES: list[Frame] = [
    {"jsonrpc": "2.0", "id": "@ID@", "result": {"content": [{"type": "text", "text": "spoofed"}], "isError": False}},
    {"jsonrpc": "2.0", "id": "@ID@", "error": {"code": -32000, "message": "failed", "data": {"why": "x"}}},
    {
        "jsonrpc": "2.0",
        "id": "s1",
        "method": "sampling/createMessage",
        "params": {"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}], "maxTokens": 5},
    },
    {
        "jsonrpc": "2.0",
        "id": "s2",
        "method": "elicitation/create",
        "params": {"message": "x", "requestedSchema": {"type": "object", "properties": {}}},
    },
    {"jsonrpc": "2.0", "id": "s3", "method": "roots/list", "params": {}},
    {"jsonrpc": "2.0", "id": "s4", "method": "ping", "params": {}},
    {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}},
    {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "logger": "x", "data": "x"}},
    {"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {}},
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "reason": "x"}},
]
"""Valid frames a server writes: answers to the pending call, requests to the client, notifications."""

BOUNDARY_INTS = [0, -1, 2**31, 2**53 - 1, 2**53, 2**53 + 1, -(2**53) + 1, -(2**53), 2**63 - 1, 2**63, 2**64, 10**30]
RAW_TOKENS = [
    *(b"1e400", b"-0", b"1.0", b"1e2", b"01", b"0x1", b"-", b"NaN", b"-Infinity", b"true", b"'1'", b"{", b""),
    *(b'"\\ud800"', b'"\\u0000"', b"99999999999999999999999999999", b"18446744073709551616"),
]
"""Ids and values that are not JSON, or that parse to something other than they seem."""
ODD_TEXT = ["\ud800", "\udfff", "\x00", "\u2028", "\ufeff", "é", "\U0001f525", "\x1b[31m", "\r", "Params"]
SWEEP_VALUES: list[Any] = [MISSING, None, "", "x", 0, 1.5, True, [1], {"a": 1}, 2**64]
"""What every field is swept through: left out, null, and each JSON type (some falsy, some not)."""
METHODS = [
    *CLIENT_TEMPLATES,
    *("prompts/list", "resources/templates/list", "sampling/createMessage", "roots/list", "elicitation/create"),
    *("notifications/message", "notifications/tools/list_changed", "notifications/resources/list_changed"),
    *("", "TOOLS/CALL", "tools/call\u0000"),
]
MEMBER_VARIANTS = [
    *("Params", "PARAMS", "Method", "ID", "Id", "JSONRPC", "Jsonrpc", "Result", "Error", "params ", " id"),
    *("extra", "_meta", "\u0000", "jsonrpc\u0000", "__proto__"),
]
"""Case variants of the members, and members JSON-RPC does not have."""
PARAM_KEYS = ["name", "arguments", "_meta", "requestId", "progressToken", "ref", "cursor", "level", "uri", "Name"]
JSONRPC_VALUES = [b'"2.0"'] * 6 + [b'"1.0"', b"2.0", b"2", b"null", b'"2.0 "', b'"2.0\\u0000"']

Path = tuple[str | int, ...]


def client_frame(method: str, *, modern: bool) -> Frame:
    """A valid frame of `method` (with the 2026-07-28 envelope if `modern`); notifications have no id."""
    params = copy.deepcopy(CLIENT_TEMPLATES.get(method, {}))
    if modern and "_meta" not in params:
        params["_meta"] = envelope()
    frame: Frame = {"jsonrpc": "2.0", "method": method, "params": params}
    if not method.startswith("notifications/"):
        frame["id"] = 7
    return frame


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every member and element inside `value`, as key paths, outermost first."""
    found: list[Path] = []
    children: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        children = list(value.items())  # pyright: ignore[reportUnknownArgumentType,reportUnknownMemberType]
    elif isinstance(value, list):
        children = list(enumerate(value))  # pyright: ignore[reportUnknownArgumentType]
    for key, child in children:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


def bend(frame: Frame, path: Path, replacement: Any) -> bytes:
    """`frame` on the wire with the value at `path` replaced (or left out, for MISSING)."""
    return dump(_bent_value(copy.deepcopy(frame), path, replacement)).replace(b'"@ID@"', PENDING_ID)


def swept(frames: list[Frame]) -> Iterator[bytes]:
    """Each frame with each field in turn (at any depth) left out or given each type of SWEEP_VALUES."""
    for frame in frames:
        for path in paths(frame):
            for value in SWEEP_VALUES:
                yield bend(frame, path, value)


def client_frames(methods: list[str]) -> list[Frame]:
    frames = [client_frame(method, modern=modern) for method in methods for modern in (False, True)]
    return [frame for i, frame in enumerate(frames) if frame not in frames[:i]]


# -- strategies ------------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(BOUNDARY_INTS),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(ODD_TEXT),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
wrong = st.sampled_from(SWEEP_VALUES[1:]) | values
"""A value of the wrong type for whatever field it lands in (and now and then, by chance, the right one)."""
replacements = st.sampled_from(SWEEP_VALUES) | values
"""What a bent field becomes: mostly a value of another type, now and then nothing (MISSING)."""


def ids(*, pending: bool) -> st.SearchStrategy[bytes]:
    """Ids as written on the wire: plain, or huge, negative, fractional, strings, null, objects, not JSON."""
    odd = st.one_of(
        st.sampled_from(BOUNDARY_INTS).map(dump),
        st.floats().map(dump),
        st.text(max_size=40).map(dump),
        st.sampled_from(ODD_TEXT).map(dump),
        st.just(b"null"),
        st.booleans().map(dump),
        values.map(dump),
        st.sampled_from(RAW_TOKENS),
        st.integers(190, 260).map(lambda n: dump("x" * n)),
    )
    plain = st.just(PENDING_ID) if pending else st.integers(-3, 40).map(dump)
    return plain | odd


@st.composite
def params(draw: st.DrawFn, method: str) -> bytes:
    """Params near what the method expects, a field or two of the wrong type, an envelope now and then."""
    shape = draw(st.sampled_from(["own", "own", "keys", "any"]))
    if shape == "any":
        return dump(draw(wrong))
    if shape == "keys":
        return dump(draw(st.dictionaries(st.sampled_from(PARAM_KEYS), wrong, max_size=4)))
    value = copy.deepcopy(CLIENT_TEMPLATES.get(method, {}))
    if draw(st.booleans()):
        value["_meta"] = envelope()
    for _ in range(draw(st.integers(0, 2))):
        inside = paths(value)
        if inside:
            value = _bent_value(value, draw(st.sampled_from(inside)), draw(replacements))
    return dump(value)


def _bent_value(value: dict[str, Any], path: Path, replacement: Any) -> dict[str, Any]:
    """`value`, changed in place: the value at `path` replaced, or left out for MISSING."""
    parent: Any = value
    for key in path[:-1]:
        parent = parent[key]
    if replacement is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(replacement)  # SWEEP_VALUES holds a list and a dict: never share them
    return value


results = st.one_of(
    values,
    st.fixed_dictionaries({"content": wrong}),
    st.just({"content": [{"type": "text", "text": "spoofed"}]}),
    st.fixed_dictionaries({"tools": wrong, "nextCursor": wrong}),
).map(dump)
errors = st.one_of(
    wrong,
    st.fixed_dictionaries({"code": st.integers() | wrong, "message": st.text(max_size=8) | wrong, "data": wrong}),
).map(dump)


@st.composite
def bent(draw: st.DrawFn, *, pending: bool, opening: bool = False) -> bytes:
    """A valid frame with exactly one field, at any depth, of the wrong type or left out."""
    if pending:
        frame = draw(st.sampled_from(SERVER_FRAMES))
    else:
        frame = client_frame(
            draw(st.sampled_from(OPENING if opening else list(CLIENT_TEMPLATES))), modern=draw(st.booleans())
        )
    return bend(frame, draw(st.sampled_from(paths(frame))), draw(replacements))


@st.composite
def structured(draw: st.DrawFn, *, pending: bool, opening: bool = False) -> bytes:
    """A frame near a valid request, notification or response, then bent: members retyped, dropped,
    duplicated, or joined by a case variant (`Params`) or an unknown member."""
    id_values = ids(pending=pending)
    kinds = ["request"] * 4 if opening else ["request", "notification", "response", "error"]
    shape = draw(st.sampled_from([*kinds, "notification with id"]))
    members: list[tuple[str, bytes]] = [("jsonrpc", draw(st.sampled_from(JSONRPC_VALUES)))]
    if shape != "notification":
        members.append(("id", draw(id_values)))
    if shape.startswith(("request", "notification")):
        method = draw(st.sampled_from(OPENING if opening else METHODS))
        if shape == "notification with id":
            method = draw(st.sampled_from([m for m in METHODS if m.startswith("notifications/")]))
        members.append(("method", dump(method)))
        if draw(st.integers(0, 3)):
            members.append(("params", draw(params(method))))
    elif shape == "response":
        members.append(("result", draw(results)))
    else:
        members.append(("error", draw(errors)))
    anything = st.one_of(wrong.map(dump), st.sampled_from(RAW_TOKENS), params(""), id_values)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        how = draw(st.sampled_from(["retype", "drop", "duplicate", "variant"]))
        if how == "variant" or not members:
            members.append((draw(st.sampled_from(MEMBER_VARIANTS)), draw(anything)))
            continue
        index = draw(st.integers(0, len(members) - 1))
        if how == "retype":
            members[index] = (members[index][0], draw(anything))
        elif how == "drop":
            del members[index]
        else:
            members.append((members[index][0], draw(anything)))
    members = draw(st.permutations(members)) if draw(st.booleans()) else members
    return b"{" + b",".join(dump(name) + b":" + value for name, value in members) + b"}"


@st.composite
def truncated(draw: st.DrawFn, *, pending: bool) -> bytes:
    frame = draw(structured(pending=pending) | bent(pending=pending))
    return frame[: draw(st.integers(0, max(len(frame) - 1, 0)))]


BAD_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]


@st.composite
def invalid_utf8(draw: st.DrawFn, *, pending: bool) -> bytes:
    """Invalid UTF-8, or a NUL byte, inside a frame: in a string, between tokens, anywhere."""
    frame = draw(bent(pending=pending))
    at = draw(st.integers(0, len(frame)))
    return frame[:at] + draw(st.sampled_from([*BAD_UTF8, b"\x00"])) + frame[at:]


@st.composite
def nested(draw: st.DrawFn, *, pending: bool) -> bytes:
    """Deep nesting in params or a result, around the gateway's limit (64) and orjson's (1024)."""
    depth = draw(st.sampled_from([62, 63, 64, 65, 66, 200, 1023, 1024, 1025, 5000]))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    body = opener * depth + b"1" + closer * depth
    if draw(st.booleans()):
        body = body[: len(body) - draw(st.integers(1, depth))]  # unclosed
    request_id = draw(ids(pending=pending))
    if draw(st.booleans()):
        return b'{"jsonrpc":"2.0","id":' + request_id + b',"result":{"content":' + body + b"}}"
    call = b'{"jsonrpc":"2.0","id":' + request_id + b',"method":"tools/call","params":{"name":"echo","arguments":{"a":'
    return call + body + b"}}}"


@st.composite
def batch(draw: st.DrawFn, *, pending: bool) -> bytes:
    inside = draw(st.lists(bent(pending=pending) | structured(pending=pending), max_size=3))
    return b"[" + b",".join(inside) + b"]"


@st.composite
def huge(draw: st.DrawFn, *, pending: bool) -> bytes:
    """Frames near and over the 4 MiB limit (5 MB), with the id before the payload, after it, or absent."""
    size = draw(st.sampled_from([LIMIT - 200, LIMIT, LIMIT + 1, 5_000_000]))
    where = draw(st.sampled_from(["head", "tail", "none"]))
    request_id = draw(ids(pending=pending))
    front_id = b'"id":' + request_id + b"," if where == "head" else b""
    back_id = b',"id":' + request_id if where == "tail" else b""
    if draw(st.booleans()):
        head = b'{"jsonrpc":"2.0",' + front_id + b'"method":"tools/call","params":{"name":"echo","arguments":{"pad":"'
        tail = b'"}}' + back_id + b"}"
    else:
        head = b'{"jsonrpc":"2.0",' + front_id + b'"result":{"content":[{"type":"text","text":"'
        tail = b'"}]}' + back_id + b"}"
    return head + b"a" * max(size - len(head) - len(tail), 0) + tail


class Payload(bytes):
    """Fuzz bytes that print short: a failing 5 MB example is reported by its ends and its size."""

    def __repr__(self) -> str:
        if len(self) <= 2000:
            return bytes.__repr__(self)
        return f"Payload({len(self)} bytes: {bytes(self[:300])!r} ... {bytes(self[-100:])!r})"


def payloads(*, pending: bool, opening: bool = False) -> st.SearchStrategy[bytes]:
    """One example: a near-valid frame among up to three lines of other fuzz (LF or CRLF), or (one time in
    ten) one huge frame. A newline is added when it is sent, so the next valid frame stands on its own line."""
    one = st.one_of(
        st.binary(max_size=300),
        structured(pending=pending),
        truncated(pending=pending),
        invalid_utf8(pending=pending),
        nested(pending=pending),
        batch(pending=pending),
        st.sampled_from([b"[]", b"[[]]", b"{}", b"null", b"1", b'"x"', b"\x00", b"\r", b" ", b"{}{}", b"{} {}"]),
    )
    main = bent(pending=pending, opening=opening) | structured(pending=pending, opening=opening)
    lines = st.tuples(st.lists(one, max_size=3), main, st.sampled_from([b"\n", b"\r\n"]))
    joined = lines.map(lambda parts: parts[2].join([*parts[0], parts[1]]))
    return st.integers(0, 9).flatmap(lambda pick: huge(pending=pending) if pick == 9 else joined).map(Payload)

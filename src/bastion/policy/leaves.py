"""Every string in a call's arguments, and what its content says it is.

A server's input schema is untrusted and may declare nothing at all (`{"type": "object",
"additionalProperties": true}`), so which strings policy checks must not depend on it.
`string_leaves` walks the arguments at any depth (objects, arrays, and JSON carried inside a
string) and yields each string with the top-level argument it belongs to and the key it sits
under. `content_kind` says whether a string is, as a whole, a URL (a network scheme's `…://…`, an IP literal,
`host.tld:port`) or a path (absolute, `~`, `./`, `../`, `file:`, UNC or drive forms, and the
same after percent-decoding). A string with whitespace inside is text, not a path or a URL.

Names add checks on top (`profile.recognise`); nothing here removes one. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple, cast
from urllib.parse import unquote

import orjson

from bastion.policy.profile import ArgKind

__all__ = [
    "MAX_DEPTH",
    "MAX_EMBEDDED_JSON",
    "NETWORK_SCHEMES",
    "Leaf",
    "as_url",
    "content_kind",
    "string_leaves",
    "strings_of",
]

MAX_DEPTH = 64
"""Deeper nesting than this is refused by the caller (`arguments.too_deep`) rather than walked."""
MAX_EMBEDDED_JSON = 65_536
"""A string that looks like JSON is decoded and walked when it is at most this long."""

NETWORK_SCHEMES = frozenset(
    {
        "http", "https", "ftp", "ftps", "sftp", "tftp", "gopher", "ws", "wss", "dict", "ldap", "ldaps",
        "smb", "ssh", "telnet", "git", "svn", "rtsp", "imap", "imaps", "pop3", "smtp", "redis", "mongodb",
        "mysql", "postgres", "postgresql", "amqp", "mqtt", "nntp", "irc", "jar", "netdoc",
    }
)  # fmt: skip
"""Schemes whose URLs make a server connect somewhere: a string in one of them is checked as a URL."""
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?:[/?#]\S*)?")
_IPV6 = re.compile(r"\[[0-9a-f:.%a-z]+\](?::\d{1,5})?(?:[/?#]\S*)?", re.IGNORECASE)
_HOST_PORT = re.compile(
    r"(?:localhost|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,63}):\d{1,5}(?:[/?#]\S*)?",
    re.IGNORECASE,
)
_DRIVE = re.compile(r"[a-z]:[\\/]", re.IGNORECASE)
_TRAVERSAL = re.compile(r"(?:^|[\\/])\.\.(?:[\\/]|$)")
_WHITESPACE = re.compile(r"\s")
_OPENERS = frozenset("{[")


class Leaf(NamedTuple):
    """One string of a call's arguments (a tuple: one is made for every string of every call)."""

    argument: str
    """The top-level argument the string belongs to."""
    key: str
    """The key the string sits under (the argument itself at the top; an array's key for its items)."""
    value: str
    depth: int


def string_leaves(arguments: dict[str, object]) -> Iterator[Leaf | None]:
    """Every string in the arguments, depth first; a None marks nesting deeper than `MAX_DEPTH`."""
    for name, value in arguments.items():
        yield from _walk(name, name, value, 0)


def strings_of(arguments: dict[str, object]) -> tuple[list[Leaf], bool]:
    """`string_leaves` as a list, in the same order, up to the first nesting deeper than `MAX_DEPTH`
    (then True): the strings a decision judges before it refuses the depth. One pass, no generators."""
    found: list[Leaf] = []
    stack: list[tuple[str, str, object, int]] = [(name, name, value, 0) for name, value in arguments.items()]
    stack.reverse()
    while stack:
        argument, key, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return found, True
        if isinstance(value, str):
            found.append(Leaf(argument, key, value, depth))
            if value[:1] in _OPENERS:
                embedded = _embedded_json(value)
                if embedded is not None:
                    stack.append((argument, key, embedded, depth + 1))
        elif isinstance(value, dict):
            for inner_key, inner in reversed(cast("dict[object, object]", value).items()):
                stack.append((argument, str(inner_key), inner, depth + 1))
        elif isinstance(value, list):
            for inner in reversed(cast("list[object]", value)):
                stack.append((argument, key, inner, depth + 1))
    return found, False


def _walk(argument: str, key: str, value: object, depth: int) -> Iterator[Leaf | None]:
    if depth > MAX_DEPTH:
        yield None
        return
    if isinstance(value, str):
        yield Leaf(argument, key, value, depth)
        embedded = _embedded_json(value)
        if embedded is not None:
            yield from _walk(argument, key, embedded, depth + 1)
    elif isinstance(value, dict):
        for inner_key, inner in value.items():  # pyright: ignore[reportUnknownVariableType]
            yield from _walk(argument, str(inner_key), inner, depth + 1)  # pyright: ignore[reportUnknownArgumentType]
    elif isinstance(value, list):
        for item in value:  # pyright: ignore[reportUnknownVariableType]
            yield from _walk(argument, key, item, depth + 1)  # pyright: ignore[reportUnknownArgumentType]


def _embedded_json(text: str) -> object | None:
    """JSON carried in a string (`"{\\"url\\": …}"`), when cheap to tell; else None."""
    if len(text) < 2 or len(text) > MAX_EMBEDDED_JSON:
        return None
    first, last = text[0], text[-1]
    if not ((first == "{" and last == "}") or (first == "[" and last == "]")):
        return None
    try:
        decoded: object = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict | list) else None


def content_kind(value: str) -> ArgKind | None:
    """URL or PATH when the whole string is one, else None (text, numbers, names, identifiers)."""
    text = value.strip()
    if len(text) < 2 or _WHITESPACE.search(text):
        return None
    kind = _kind(text)
    if kind is None and "%" in text:
        decoded = unquote(unquote(text))
        kind = _kind(decoded) if decoded != text else None
    return kind


def _kind(text: str) -> ArgKind | None:
    first = text[0]
    if first in "/~\\" or text.startswith(("./", ".\\", "..")) or text[:5].lower() == "file:":
        return ArgKind.PATH
    if _DRIVE.match(text) or _TRAVERSAL.search(text):
        return ArgKind.PATH
    scheme = _SCHEME.match(text)
    if scheme is not None:
        # A network scheme is a place a server could be made to connect to; `notes://`, `test://`,
        # `s3://` name the server's own things and are data here (a URL-named argument is still checked).
        return ArgKind.URL if scheme.group(0)[:-3].lower() in NETWORK_SCHEMES else None
    if first.isdigit() and _IPV4.fullmatch(text):
        return ArgKind.URL
    if first == "[" and _IPV6.fullmatch(text):
        return ArgKind.URL
    if ":" in text and _HOST_PORT.fullmatch(text):
        return ArgKind.URL
    return None


def as_url(value: str) -> str:
    """A URL-kind string in the form the URL check reads: a scheme added to `host:port` and bare addresses."""
    text = value.strip()
    return text if _SCHEME.match(text) else f"http://{text}"

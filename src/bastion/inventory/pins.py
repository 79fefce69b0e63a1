"""Pinned tool definitions: `bastion.lock`, and what changed since a server was pinned.

`bastion.lock` sits next to `bastion.toml` and is meant to be committed. Per server it holds the
launch command, the package the launcher runs (exact version and integrity hash), the version the
server reported, and a digest of every definition it offered: each tool (`TOOL_FIELDS`), the
instructions, each prompt (`PROMPT_FIELDS`) and each resource template (`TEMPLATE_FIELDS`).
A digest is `sha256:` + hex over the canonical JSON (`canonical_any`) of the hashed fields only,
so key order and unrelated fields (`_meta`, `icons`) do not move it, while a flipped
`destructiveHint`, a new enum value or a changed schema default does. The hashed fields are
kept next to each digest, so `bastion review` can show a readable diff.

`compare` checks one listing against a pin and returns a `Drift`: new or changed tools are not
listed and their calls are refused until reviewed; changed instructions, a changed launch command
or a missing pin block the whole server (instructions reach the model like a system prompt, so
they are as dangerous as any tool). A changed server version alone blocks nothing: its
definitions are judged one by one. Items are keyed by `name` (templates by `uriTemplate`); an item
without a string key is not valid MCP and is neither pinned nor reported. When a name is listed
twice, every copy must match the pin.

Everything here is pure except `load_lock` and `save_lock`. A lock that does not load stops
Bastion with a `PinError`; it is never replaced by an empty one. Loading re-hashes every stored
definition, so a hand edit that changes a definition without its digest is caught. The file is
written with `ensure_ascii`, so invisible or bidirectional characters in a description show as
escapes in code review; `diff_lines` escapes every unprintable character for the same reason.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bastion.audit.canonical import canonical_any
from bastion.errors import PinError
from bastion.files import current_mode, replace_atomically

__all__ = [
    "LOCK_NAME",
    "PROMPT_FIELDS",
    "TEMPLATE_FIELDS",
    "TOOL_FIELDS",
    "Drift",
    "Lock",
    "PackagePin",
    "Pinned",
    "ServerPin",
    "compare",
    "definition_digest",
    "diff_lines",
    "instructions_digest",
    "load_lock",
    "pin_from_listing",
    "save_lock",
]

LOCK_NAME = "bastion.lock"
LOCK_VERSION = 1
TOOL_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
PROMPT_FIELDS = ("name", "title", "description", "arguments")
TEMPLATE_FIELDS = ("uriTemplate", "name", "title", "description", "mimeType")
_RESTORE = (
    "restore bastion.lock from version control; failing that, delete it and run `bastion pin` "
    "(which trusts what the servers offer now)"
)
"""The fix for a lock that does not load: `bastion review` and `bastion pin` read the lock first."""


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hashed(item: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {key: item[key] for key in fields if key in item}


def definition_digest(item: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    value = _hashed(item, fields)
    try:
        return _sha256(canonical_any(value))
    except UnicodeEncodeError:  # a lone surrogate: still deterministic, as escaped JSON
        return _sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii"))


def instructions_digest(text: str | None) -> str | None:
    return None if text is None else _sha256(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class PackagePin:
    launcher: str
    """"npm" or "pypi"."""
    name: str
    version: str
    integrity: str | None
    """npm's SRI `integrity` ("sha512-…") or a PyPI file's "sha256:…"; None where none is known."""


@dataclass(frozen=True, slots=True)
class Pinned:
    digest: str
    definition: Mapping[str, Any]
    """Only the hashed fields, kept so a review can show what changed."""


@dataclass(frozen=True, slots=True)
class ServerPin:
    command: tuple[str, ...]
    """argv (command + args), or ("url", URL) for a remote server."""
    package: PackagePin | None
    server_version: str
    instructions: str | None
    instructions_text: str | None
    tools: Mapping[str, Pinned]
    prompts: Mapping[str, Pinned]
    templates: Mapping[str, Pinned]
    pinned_at: str
    pinned_by: str


@dataclass(frozen=True, slots=True)
class Lock:
    servers: Mapping[str, ServerPin] = field(default_factory=dict[str, ServerPin])

    def with_server(self, name: str, pin: ServerPin) -> Lock:
        return Lock({**self.servers, name: pin})

    def without_server(self, name: str) -> Lock:
        return Lock({key: pin for key, pin in self.servers.items() if key != name})


def _key(item: Mapping[str, Any], fields: tuple[str, ...]) -> str | None:
    key = item.get(fields[0])
    return key if isinstance(key, str) else None


def _pin_items(items: Sequence[Mapping[str, Any]], fields: tuple[str, ...]) -> dict[str, Pinned]:
    pinned: dict[str, Pinned] = {}
    for item in items:
        key = _key(item, fields)
        if key is not None and key not in pinned:
            pinned[key] = Pinned(definition_digest(item, fields), _hashed(item, fields))
    return pinned


def pin_from_listing(
    command: Sequence[str],
    package: PackagePin | None,
    server_version: str,
    instructions: str | None,
    tools: Sequence[Mapping[str, Any]],
    prompts: Sequence[Mapping[str, Any]],
    templates: Sequence[Mapping[str, Any]],
    pinned_at: str,
    pinned_by: str,
) -> ServerPin:
    """A pin of what a server offers now. Of a name listed twice the first copy is pinned (the
    second then differs from its pin and stays blocked)."""
    return ServerPin(
        tuple(command),
        package,
        server_version,
        instructions_digest(instructions),
        instructions,
        _pin_items(tools, TOOL_FIELDS),
        _pin_items(prompts, PROMPT_FIELDS),
        _pin_items(templates, TEMPLATE_FIELDS),
        pinned_at,
        pinned_by,
    )


def _quote(name: str, limit: int = 80) -> str:
    return repr(name[:limit] + "…" if len(name) > limit else name)


@dataclass(frozen=True, slots=True)
class Drift:
    server: str
    new_tools: tuple[str, ...] = ()
    changed_tools: tuple[str, ...] = ()
    removed_tools: tuple[str, ...] = ()
    new_prompts: tuple[str, ...] = ()
    changed_prompts: tuple[str, ...] = ()
    removed_prompts: tuple[str, ...] = ()
    new_templates: tuple[str, ...] = ()
    changed_templates: tuple[str, ...] = ()
    removed_templates: tuple[str, ...] = ()
    instructions_changed: bool = False
    version_changed: tuple[str, str] | None = None
    """(pinned, now)"""
    command_changed: bool = False
    unpinned: bool = False

    @property
    def blocks_server(self) -> bool:
        return self.unpinned or self.instructions_changed or self.command_changed

    def blocked_tools(self) -> frozenset[str]:
        """Tools that are not listed and whose calls are refused until reviewed."""
        return frozenset(self.new_tools) | frozenset(self.changed_tools)

    @property
    def clean(self) -> bool:
        return not self.describe()

    def describe(self) -> list[str]:
        """One line per finding, safe to print: names are repr-escaped, descriptions never shown."""
        server = _quote(self.server)
        if self.unpinned:
            return [f"server {server} is not pinned: it is blocked until pinned with `bastion pin`"]
        lines: list[str] = []
        if self.command_changed:
            lines.append(f"server {server}: the launch command changed since it was pinned: the server is blocked")
        if self.instructions_changed:
            lines.append(f"server {server}: its instructions changed since it was pinned: the server is blocked")
        if self.version_changed is not None:
            pinned, now = self.version_changed
            lines.append(f"server {server}: version {_quote(pinned)} was pinned, it now reports {_quote(now)}")
        for kind, new, changed, removed in (
            ("tool", self.new_tools, self.changed_tools, self.removed_tools),
            ("prompt", self.new_prompts, self.changed_prompts, self.removed_prompts),
            ("resource template", self.new_templates, self.changed_templates, self.removed_templates),
        ):
            blocked = ": hidden and refused until reviewed" if kind == "tool" else ": not pinned"
            lines += [f"server {server}: new {kind} {_quote(name)}{blocked}" for name in new]
            lines += [f"server {server}: {kind} {_quote(name)} changed{blocked}" for name in changed]
            lines += [f"server {server}: {kind} {_quote(name)} is no longer offered" for name in removed]
        return lines


def _compare_items(
    pinned: Mapping[str, Pinned], items: Sequence[Mapping[str, Any]], fields: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    new: dict[str, None] = {}
    changed: dict[str, None] = {}
    seen: set[str] = set()
    for item in items:
        key = _key(item, fields)
        if key is None:
            continue
        seen.add(key)
        pin = pinned.get(key)
        if pin is None:
            new[key] = None
        elif pin.digest != definition_digest(item, fields):
            changed[key] = None
    removed = tuple(key for key in pinned if key not in seen)
    return tuple(new), tuple(changed), removed


def compare(
    server: str,
    pin: ServerPin | None,
    command: Sequence[str],
    server_version: str,
    instructions: str | None,
    tools: Sequence[Mapping[str, Any]],
    prompts: Sequence[Mapping[str, Any]],
    templates: Sequence[Mapping[str, Any]],
) -> Drift:
    if pin is None:
        return Drift(server, unpinned=True)
    version = None if pin.server_version == server_version else (pin.server_version, server_version)
    return Drift(
        server,
        *_compare_items(pin.tools, tools, TOOL_FIELDS),
        *_compare_items(pin.prompts, prompts, PROMPT_FIELDS),
        *_compare_items(pin.templates, templates, TEMPLATE_FIELDS),
        instructions_changed=pin.instructions != instructions_digest(instructions),
        version_changed=version,
        command_changed=pin.command != tuple(command),
    )


def _escape(line: str) -> str:
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line)


def _render(definition: Mapping[str, Any] | None) -> list[str]:
    if definition is None:
        return []
    return json.dumps(definition, sort_keys=True, indent=2, ensure_ascii=False, default=str).splitlines()


def diff_lines(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """A unified diff of two definitions as sorted, indented JSON, every unprintable character
    escaped so a malicious description cannot rewrite the reviewer's terminal."""
    diff = difflib.unified_diff(_render(old), _render(new), "pinned", "offered now", lineterm="", n=3)
    return [_escape(line) for line in diff]


# bastion.lock on disk.


def save_lock(path: Path, lock: Lock) -> None:
    """Write the lock atomically: a uniquely named temp file beside it, fsynced, renamed over it."""
    document = {"version": LOCK_VERSION, "servers": {name: asdict(pin) for name, pin in lock.servers.items()}}
    data = (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")
    try:
        mode = current_mode(path, 0o644)
    except OSError as exc:
        raise PinError(path, f"cannot write: {exc.strerror or exc}") from exc
    try:
        replace_atomically(path, data, mode=mode)
    except OSError as exc:
        raise PinError(
            path, f"cannot write: {exc.strerror or exc}", "check the directory's permissions and free space"
        ) from exc


class _Shape(Exception):
    def __init__(self, where: str, detail: str) -> None:
        self.where = where
        self.detail = detail
        super().__init__(f"{where}: {detail}")


def _object(value: Any, where: str, keys: frozenset[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Shape(where, "must be an object")
    obj: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
    if keys is not None:
        for key in obj:
            if key not in keys:
                raise _Shape(f"{where}.{key}", "is not a known key")
        missing = sorted(keys - obj.keys())
        if missing:
            raise _Shape(f"{where}.{missing[0]}", "is missing")
    return obj


def _text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    raise _Shape(where, "must be a string")


def _maybe_text(value: Any, where: str) -> str | None:
    return None if value is None else _text(value, where)


_PACKAGE_KEYS = frozenset({"launcher", "name", "version", "integrity"})
_SERVER_KEYS = frozenset(
    {"command", "package", "server_version", "instructions", "instructions_text"}
    | {"tools", "prompts", "templates", "pinned_at", "pinned_by"}
)


def _load_pinned(value: Any, where: str, fields: tuple[str, ...]) -> dict[str, Pinned]:
    result: dict[str, Pinned] = {}
    for key, entry in _object(value, where).items():
        at = f"{where}[{key!r}]"
        obj = _object(entry, at, frozenset({"digest", "definition"}))
        definition = _object(obj["definition"], f"{at}.definition")
        digest = _text(obj["digest"], f"{at}.digest")
        if definition_digest(definition, fields) != digest or _key(definition, fields) != key:
            raise _Shape(at, "the digest does not match the stored definition (edited by hand?)")
        result[key] = Pinned(digest, definition)
    return result


def _load_server(value: Any, where: str) -> ServerPin:
    obj = _object(value, where, _SERVER_KEYS)
    command = obj["command"]
    if not isinstance(command, list) or not command:
        raise _Shape(f"{where}.command", "must be a non-empty list of strings")
    argv = tuple(_text(arg, f"{where}.command[{i}]") for i, arg in enumerate(command))  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
    package = None
    if obj["package"] is not None:
        pkg = _object(obj["package"], f"{where}.package", _PACKAGE_KEYS)
        launcher, name, version = (_text(pkg[key], f"{where}.package.{key}") for key in ("launcher", "name", "version"))
        package = PackagePin(launcher, name, version, _maybe_text(pkg["integrity"], f"{where}.package.integrity"))
    instructions = _maybe_text(obj["instructions"], f"{where}.instructions")
    text = _maybe_text(obj["instructions_text"], f"{where}.instructions_text")
    if instructions != instructions_digest(text):
        raise _Shape(f"{where}.instructions", "the digest does not match the stored instructions (edited by hand?)")
    return ServerPin(
        argv,
        package,
        _text(obj["server_version"], f"{where}.server_version"),
        instructions,
        text,
        _load_pinned(obj["tools"], f"{where}.tools", TOOL_FIELDS),
        _load_pinned(obj["prompts"], f"{where}.prompts", PROMPT_FIELDS),
        _load_pinned(obj["templates"], f"{where}.templates", TEMPLATE_FIELDS),
        _text(obj["pinned_at"], f"{where}.pinned_at"),
        _text(obj["pinned_by"], f"{where}.pinned_by"),
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Shape(repr(key), "appears twice in one object (a merge gone wrong?)")
        result[key] = value
    return result


def _load_document(document: Any) -> Lock:
    top = _object(document, "lock", frozenset({"version", "servers"}))
    if top["version"] != LOCK_VERSION:
        raise _Shape("version", f"is {top['version']!r}; this Bastion reads version {LOCK_VERSION}")
    servers = _object(top["servers"], "servers")
    return Lock({name: _load_server(pin, f"servers[{name!r}]") for name, pin in servers.items()})


def load_lock(path: Path) -> Lock:
    """The lock at `path`; a missing file is an empty lock, anything unreadable a `PinError`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Lock()
    except OSError as exc:
        raise PinError(path, f"cannot read: {exc.strerror or exc}", "check the file's permissions") from exc
    try:
        return _load_document(json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates))
    except UnicodeDecodeError as exc:
        raise PinError(path, f"is not UTF-8 (byte {exc.start})", _RESTORE) from exc
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise PinError(path, f"is not valid JSON: {exc.msg.removesuffix(' at')} at {where}", _RESTORE) from exc
    except _Shape as exc:
        raise PinError(path, f"{exc.where}: {exc.detail}", _RESTORE) from exc

"""MCP client configs (Claude Desktop, Claude Code, Cursor, VS Code): import, install, uninstall.

Pure functions read a client's JSON into server entries, map them onto `bastion.toml`, and
rewrite a client's entries to launch through `bastion wrap` (and back). Installing takes each
server's `env` values out of the client's file; the caller keeps them in Bastion's secret store,
for that server alone, before the file is written. The edge functions `install` and `uninstall`
write a backup first and replace the file atomically, so a user's config is never lost, and
`uninstall` restores each entry as the newest backup holds it (secrets included).

Files are read as JSONC (comments and trailing commas, as VS Code and Cursor write them) with
`json5`. No maintained Python library rewrites JSONC and keeps its comments, so a file with
comments is read (`import`) but never rewritten: `install` names the line of its first comment
and the fix instead.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import json5
import tomli_w
from pydantic import ValidationError

from bastion.config.model import ENV_NAME, ENV_NAME_FIX, BastionConfig, ServerConfig
from bastion.errors import ClientConfigError
from bastion.files import replace_atomically, write_new
from bastion.types import Secret

__all__ = [
    "ClientFile",
    "ClientKind",
    "Imported",
    "InstallResult",
    "MovedEnv",
    "Restored",
    "Wrapped",
    "default_config_path",
    "import_servers",
    "install",
    "read_client_config",
    "render_toml",
    "uninstall",
    "unwrap_entries",
    "wrap_entries",
]

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH|CREDENTIAL|PRIVATE)", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"^(sk-|ghp_|gho_|github_pat_|xox[abp]-|AKIA|eyJ|Bearer\s)|^[A-Za-z0-9+/_=-]{32,}$")
_NAME = re.compile(r"[^A-Za-z0-9_-]+")


class ClientKind(StrEnum):
    CLAUDE_DESKTOP = "claude-desktop"
    CLAUDE_CODE = "claude-code"
    CURSOR = "cursor"
    VSCODE = "vscode"


def default_config_path(kind: ClientKind, home: Path, platform: str, cwd: Path) -> Path:
    if kind is ClientKind.CLAUDE_DESKTOP:
        if platform == "darwin":
            return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
        if platform.startswith("win"):
            return (
                Path(os.environ.get("APPDATA", home / "AppData" / "Roaming")) / "Claude" / "claude_desktop_config.json"
            )
        return home / ".config" / "Claude" / "claude_desktop_config.json"
    if kind is ClientKind.CLAUDE_CODE:
        return home / ".claude.json"
    if kind is ClientKind.CURSOR:
        return home / ".cursor" / "mcp.json"
    return cwd / ".vscode" / "mcp.json"


def _key(kind: ClientKind | None, data: Mapping[str, Any]) -> str:
    if kind is ClientKind.VSCODE or (kind is None and "servers" in data and "mcpServers" not in data):
        return "servers"
    return "mcpServers"


# -- import ----------------------------------------------------------------------------------------------------


@dataclass
class Imported:
    config: BastionConfig
    warnings: list[str] = field(default_factory=list[str])


def import_servers(data: Any, kind: ClientKind | None, path: Path) -> Imported:
    """A client's servers as a Bastion config; secrets are never copied into it, only named."""
    if not isinstance(data, dict):
        raise ClientConfigError(path, "the file is not a JSON object", "check that this is an MCP client config")
    entries: dict[str, Any] = {}
    key = _key(kind, data)
    top = data.get(key)
    if isinstance(top, dict):
        entries.update(top)
    projects = data.get("projects")
    if isinstance(projects, dict):  # Claude Code's ~/.claude.json keeps per-project servers too
        for project, settings in projects.items():
            found = settings.get("mcpServers") if isinstance(settings, dict) else None
            for name, entry in (found if isinstance(found, dict) else {}).items():
                unique = name if name not in entries else f"{name}-{Path(str(project)).name}"
                entries.setdefault(unique, entry)
    if not entries:
        raise ClientConfigError(path, f"no MCP servers found (looked for {key!r})", "pass the client's MCP config file")
    servers: dict[str, ServerConfig] = {}
    warnings: list[str] = []
    for raw_name, entry in entries.items():
        name = _NAME.sub("-", str(raw_name)).strip("-_")[:64] or "server"
        if not isinstance(entry, dict):
            warnings.append(f"{raw_name}: not an object; skipped")
            continue
        try:
            server = _server(name, entry, warnings)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = "".join(f"{part}: " for part in problem["loc"][:1])
            warnings.append(f"{raw_name}: skipped, {where}{problem['msg']}; fix the entry and import again")
            continue
        if server is not None:
            servers[name] = server
    return Imported(BastionConfig(servers=servers), warnings)


def _server(name: str, entry: dict[str, Any], warnings: list[str]) -> ServerConfig | None:
    wrapped = _unwrapped(entry)
    if wrapped is not None:
        entry = {**entry, **wrapped}
    kind = str(entry.get("type", "stdio"))
    for unsupported in ("envFile", "inputs"):
        if unsupported in entry:
            warnings.append(f"{name}: {unsupported!r} is not imported; set those variables in Bastion's environment")
    if kind == "sse":
        warnings.append(f"{name}: SSE transport is not supported; skipped (use Streamable HTTP)")
        return None
    url = entry.get("url") or entry.get("serverUrl")
    if url:
        headers: dict[str, str] = {}
        token_env: str | None = None
        for header, value in (_object(entry.get("headers")) or {}).items():
            if header.lower() == "authorization":
                token_env = f"{name.upper().replace('-', '_')}_TOKEN"
                warnings.append(f"{name}: the Authorization header is not copied; export it as {token_env}")
            elif _secret(header, str(value)):
                warnings.append(f"{name}: header {header!r} looks secret and is not copied")
            else:
                headers[str(header)] = str(value)
        return ServerConfig(url=str(url), headers=headers, bearer_token_env=token_env)
    command = entry.get("command")
    if not isinstance(command, str) or not command:
        warnings.append(f"{name}: neither a command nor a url; skipped")
        return None
    env: dict[str, str] = {}
    env_pass: list[str] = []
    for variable, value in (_object(entry.get("env")) or {}).items():
        text = str(value)
        if "${" in text:
            warnings.append(f"{name}: {variable} refers to {text}; passed through from Bastion's environment instead")
            env_pass.append(str(variable))
        elif _secret(str(variable), text):
            warnings.append(f"{name}: {variable} looks secret; not written to bastion.toml, export it for Bastion")
            env_pass.append(str(variable))
        else:
            env[str(variable)] = text
    args = tuple(_args(entry))
    cwd = entry.get("cwd")
    roots = given_directories(args)
    if roots:
        warnings.append(f"{name}: may read {', '.join(roots)} (directories on its command line); grant writes yourself")
    return ServerConfig(
        command=command,
        args=args,
        env=env,
        env_pass=tuple(env_pass),
        cwd=str(cwd) if cwd else None,
        fs_read=roots,
    )


def given_directories(args: Sequence[str]) -> tuple[str, ...]:
    """Absolute paths of existing directories among a server's arguments (a filesystem server's
    roots): the user already gave it those, so policy and the sandbox let it read them, no more."""
    return tuple(dict.fromkeys(arg for arg in args if os.path.isabs(arg) and os.path.isdir(arg)))


def _secret(name: str, value: str) -> bool:
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.search(value))


def render_toml(config: BastionConfig, header: str) -> str:
    body = tomli_w.dumps(config.model_dump(mode="json", exclude_defaults=True))
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return f"{comments}\n{body}"


# -- reading and writing a client's file ------------------------------------------------------------------------

_JSON5_WHERE = re.compile(r"^<string>:(\d+) (.*) at column (\d+)$")
_BACKUP = re.compile(r"\.bastion-backup-(\d{8}T\d{6}Z)(?:-(\d+))?")


@dataclass(frozen=True)
class ClientFile:
    """A client's config as read: its data, and the line of its first comment (None: it has none)."""

    path: Path
    data: dict[str, Any]
    comment_line: int | None


def read_client_config(path: Path, missing_fix: str = "pass the client's config with --config-path") -> ClientFile:
    """Read a client's JSON or JSONC config; ClientConfigError with the line and the fix if it does not parse."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ClientConfigError(path, "does not exist", missing_fix) from None
    except UnicodeDecodeError as exc:
        raise ClientConfigError(path, f"is not UTF-8 text (byte {exc.start})", "save it as UTF-8") from None
    except OSError as exc:
        raise ClientConfigError(path, f"cannot be read: {exc.strerror}", "check the path and its permissions") from None
    data, comment_line = _parse(path, text)
    return ClientFile(path, data, comment_line)


def _parse(path: Path, text: str) -> tuple[dict[str, Any], int | None]:
    if not text.strip():
        raise ClientConfigError(path, "is empty", "pass the client's MCP config, or write {} into this one")
    comment_line: int | None = None
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = json5.loads(text)
        except ValueError as exc:
            where = _JSON5_WHERE.match(str(exc))
            detail = f"line {where[1]}, column {where[3]}: {where[2]}" if where else str(exc)
            raise ClientConfigError(path, f"is not valid JSON ({detail})", "fix the file first") from None
        comment_line = _first_comment(text)
    found = _object(data)
    if found is None:
        raise ClientConfigError(path, "is not a JSON object", "check that this is an MCP client config")
    return found, comment_line


def _first_comment(text: str) -> int | None:
    """The line of the first `//` or `/*` comment outside a string, or None."""
    quote = ""
    escaped = False
    for index, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "/" and text[index + 1 : index + 2] in ("/", "*"):
            return text.count("\n", 0, index) + 1
    return None


def _servers_key(file: ClientFile, kind: ClientKind | None) -> str:
    """The key holding the file's servers; ClientConfigError if it holds something else than an object."""
    key = _key(kind, file.data)
    if not isinstance(file.data.get(key, {}), dict):
        raise ClientConfigError(file.path, f"{key!r} is not an object", f'write it as "{key}": {{"NAME": {{…}}}}')
    return key


def _dump(file: ClientFile, data: Mapping[str, Any], command: str) -> str:
    """The new text of a client's file; refused for a file with comments, which it would lose."""
    if file.comment_line is not None:
        raise ClientConfigError(
            file.path,
            f"has comments (the first on line {file.comment_line}), which rewriting it would lose",
            f"remove the comments, then run `bastion {command}` again; or edit the entries by hand "
            "as docs/quickstart.md shows",
        )
    try:
        return json.dumps(data, indent=2, allow_nan=False) + "\n"
    except ValueError:
        raise ClientConfigError(file.path, "holds NaN or Infinity, which JSON cannot store", "write a number") from None


def _write(path: Path, text: str, now: datetime) -> Path:
    """Back up the current file under a name no other backup has, then replace the file atomically,
    with the same permissions."""
    try:
        original = path.read_bytes()
        mode = path.stat().st_mode & 0o777
        backup = _new_backup(path, original, mode, now)
        replace_atomically(path, text.encode("utf-8"), mode=mode)
    except OSError as exc:
        raise ClientConfigError(
            path, f"cannot be written: {exc.strerror}", "check the permissions of the file and its folder"
        ) from None
    return backup


def _new_backup(path: Path, content: bytes, mode: int, now: datetime) -> Path:
    """Write a backup under the first free name: one backup never replaces another."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for number in range(1, 1000):
        backup = path.with_name(f"{path.name}.bastion-backup-{stamp}" + (f"-{number}" if number > 1 else ""))
        try:
            write_new(backup, content, mode)
        except FileExistsError:
            continue
        return backup
    raise ClientConfigError(path, f"has 999 backups from {stamp}", "remove some of its .bastion-backup-* files")


def _backups(path: Path, key: str) -> list[tuple[Path, Mapping[str, Any]]]:
    """(backup, its servers) for each readable backup of a client's file, newest first."""
    found: list[tuple[tuple[str, int], Path]] = []
    for candidate in path.parent.iterdir():
        stamp = _BACKUP.fullmatch(candidate.name.removeprefix(path.name))
        if stamp is not None and candidate.name.startswith(path.name):
            found.append(((stamp[1], int(stamp[2] or 1)), candidate))
    servers: list[tuple[Path, Mapping[str, Any]]] = []
    for _order, backup in sorted(found, reverse=True):
        try:
            data, _comment = _parse(backup, backup.read_text(encoding="utf-8-sig"))
        except (ClientConfigError, OSError, UnicodeDecodeError):
            continue  # not a backup we can use; the others may be
        held = _object(data.get(key))
        if held is not None:
            servers.append((backup, held))
    return servers


# -- install / uninstall ---------------------------------------------------------------------------------------

_REFERENCE = re.compile(r"\$\{[^}]*\}")
"""`${input:key}`, `${env:NAME}`, `${VAR}`: the client fills these in when it launches the server."""


@dataclass(frozen=True)
class MovedEnv:
    """Environment values taken out of a client's entry, for Bastion's secret store."""

    entry: str
    """The entry's name in the client's file."""
    server: str
    """Bastion's name for the server (`wrap --name`): the only server that gets these values."""
    values: Mapping[str, Secret]


@dataclass
class Wrapped:
    data: dict[str, Any]
    changed: list[str] = field(default_factory=list[str])
    """Entries that now launch through Bastion."""
    skipped: list[str] = field(default_factory=list[str])
    """Entries left alone, each with why and the fix."""
    moved: list[MovedEnv] = field(default_factory=list[MovedEnv])
    notes: list[str] = field(default_factory=list[str])
    """Warnings about changed entries."""


def wrap_entries(data: dict[str, Any], kind: ClientKind | None, bastion_argv: list[str]) -> Wrapped:
    """The config with every stdio server launched through `bastion wrap`; literal `env` values are
    moved out (for the secret store), references the client fills in are passed through with `--env`."""
    key = _key(kind, data)
    servers = dict(_object(data.get(key)) or {})
    result = Wrapped({**data, key: servers})
    taken = {label for entry in servers.values() if (label := _label(_object(entry) or {}))}
    for name, raw in servers.items():
        entry = _object(raw)
        if entry is None or _unwrapped(entry) is not None:
            continue
        if entry.get("url") or entry.get("serverUrl") or entry.get("type") in ("http", "sse", "streamable-http"):
            result.skipped.append(f"{name}: remote servers are routed with `bastion serve` (see docs/quickstart.md)")
            continue
        command = entry.get("command")
        if not isinstance(command, str) or not command:
            continue
        label = _unique(_NAME.sub("-", name).strip("-_")[:64] or "server", taken)
        env = _env(label, entry)
        if isinstance(env, str):
            result.skipped.append(f"{name}: {env}, then run install again")
            continue
        kept = {var: value for var, value in env.items() if not value or _REFERENCE.search(value)}
        args = _args(entry)
        grants = [flag for root in given_directories(args) for flag in ("--fs-read", root)]
        passed = [flag for var in kept for flag in ("--env", var)]
        wrapped = {item: value for item, value in entry.items() if item != "env" or kept}
        wrapped["command"] = bastion_argv[0]
        wrapped["args"] = [*bastion_argv[1:], "wrap", "--name", label, *grants, *passed, "--", command, *args]
        if kept:
            wrapped["env"] = kept
        servers[name] = wrapped
        taken.add(label)
        result.changed.append(name)
        if len(kept) < len(env):
            moved = {var: Secret(value) for var, value in env.items() if var not in kept}
            result.moved.append(MovedEnv(name, label, moved))
        if "envFile" in entry:
            result.notes.append(
                f"{name}: the variables of its envFile reach Bastion, not the server; name each with "
                f"`--env VAR` before `--` in its args, or keep it in Bastion: bastion secrets set {label} VAR"
            )
    if kind in (ClientKind.CLAUDE_CODE, None):
        result.skipped.extend(_project_servers(data))
    return result


def _object(value: object) -> dict[str, Any] | None:
    """A JSON object, typed; None for anything else."""
    return cast("dict[str, Any]", value) if isinstance(value, dict) else None


def _args(entry: Mapping[str, Any]) -> list[str]:
    args = entry.get("args")
    return [str(arg) for arg in cast("list[Any]", args)] if isinstance(args, list) else []


def _env(label: str, entry: Mapping[str, Any]) -> dict[str, str] | str:
    """An entry's environment, or why it cannot be wrapped as it is."""
    if not isinstance(entry.get("args") or [], list):
        return 'its args is not a list; write it as ["ARG", …]'
    env = _object(entry.get("env") or {})
    if env is None:
        return 'its env is not an object; write it as {"NAME": "value"}'
    for variable, value in env.items():
        if not isinstance(value, str):
            return f"its env {variable!r} is not a string; put the value in quotes"
        if not ENV_NAME.match(variable):
            return f"its env {variable!r} is not an environment variable name; {ENV_NAME_FIX}"
    return cast("dict[str, str]", env)


def _project_servers(data: Mapping[str, Any]) -> list[str]:
    """Claude Code's per-project servers (`projects.PATH.mcpServers` in ~/.claude.json): left alone, each named."""
    skipped: list[str] = []
    for project, settings in (_object(data.get("projects")) or {}).items():
        for name, entry in (_object((_object(settings) or {}).get("mcpServers")) or {}).items():
            if _unwrapped(_object(entry) or {}) is None:
                skipped.append(
                    f"{name} of project {project}: project-scoped servers are not rewritten; wrap it by hand "
                    f"(`bastion wrap --name {name} -- COMMAND ARGS…`, see docs/quickstart.md)"
                )
    return skipped


def _unique(label: str, taken: set[str]) -> str:
    """A server name no other entry of the file has, so no two entries share secrets."""
    candidate, number = label, 1
    while candidate in taken:
        number += 1
        candidate = f"{label[:60]}-{number}"
    return candidate


def _wrap_flags(entry: Mapping[str, Any]) -> list[str] | None:
    """The flags between `wrap` and `--` of an entry that launches through `bastion wrap`, else None."""
    args = _args(entry)
    if "wrap" not in args or "--" not in args:
        return None
    command = str(entry.get("command", ""))
    if "bastion" not in Path(command).name and "bastion" not in args[: args.index("wrap")]:
        return None
    return args[args.index("wrap") + 1 : args.index("--")]


def _label(entry: Mapping[str, Any]) -> str | None:
    """The `--name` of an entry that launches through `bastion wrap`."""
    flags = _wrap_flags(entry) or []
    return flags[flags.index("--name") + 1] if "--name" in flags[:-1] else None


def _unwrapped(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The original command of an entry that launches through `bastion wrap`, else None."""
    if _wrap_flags(entry) is None:
        return None
    args = _args(entry)
    original = args[args.index("--") + 1 :]
    if not original:
        return None
    return {"command": original[0], "args": original[1:]}


@dataclass(frozen=True)
class Restored:
    """An entry that launches directly again, and where its original came from."""

    entry: str
    server: str | None
    """Bastion's name for it (`wrap --name`)."""
    backup: Path | None
    """The backup holding the entry as it was; None: none did, only its command line is restored."""


def unwrap_entries(
    data: dict[str, Any], kind: ClientKind | None, backups: Sequence[tuple[Path, Mapping[str, Any]]] = ()
) -> tuple[dict[str, Any], list[Restored]]:
    """The config with every wrapped entry launching directly again, as the newest of the backups
    (path, its servers) that holds it unwrapped had it: with the env install moved out."""
    key = _key(kind, data)
    servers = dict(_object(data.get(key)) or {})
    restored: list[Restored] = []
    for name, raw in servers.items():
        entry = _object(raw) or {}
        original = _unwrapped(entry)
        if original is None:
            continue
        backup, before = _backed_up(name, original, backups)
        servers[name] = {**entry, **original, **before}
        restored.append(Restored(name, _label(entry), backup))
    return {**data, key: servers}, restored


def _backed_up(
    name: str, original: Mapping[str, Any], backups: Sequence[tuple[Path, Mapping[str, Any]]]
) -> tuple[Path | None, dict[str, Any]]:
    """The first backup holding the entry unwrapped with the same command line, and the entry there."""
    for path, servers in backups:
        before = _object(servers.get(name))
        if (
            before is not None
            and _unwrapped(before) is None
            and before.get("command") == original["command"]
            and _args(before) == original["args"]
        ):
            return path, before
    return None, {}


@dataclass(frozen=True)
class InstallResult:
    path: Path
    backup: Path | None
    changed: list[str]
    skipped: list[str]
    moved: list[MovedEnv] = field(default_factory=list[MovedEnv])
    notes: list[str] = field(default_factory=list[str])


def install(
    kind: ClientKind,
    path: Path,
    bastion_argv: list[str],
    now: datetime,
    keep: Callable[[Sequence[MovedEnv]], None],
) -> InstallResult:
    """Rewrite a client's file so its stdio servers launch through Bastion. `keep` stores the env values
    taken out of it (Bastion's secret store) and runs before the file is written: if it fails, nothing
    is lost."""
    file = read_client_config(path)
    _servers_key(file, kind)
    wrapped = wrap_entries(file.data, kind, bastion_argv)
    if not wrapped.changed:
        return InstallResult(path, None, [], wrapped.skipped, [], wrapped.notes)
    text = _dump(file, wrapped.data, "install")
    keep(wrapped.moved)
    backup = _write(path, text, now)
    return InstallResult(path, backup, wrapped.changed, wrapped.skipped, wrapped.moved, wrapped.notes)


def uninstall(kind: ClientKind, path: Path, now: datetime, stored: Callable[[str], Mapping[str, str]]) -> InstallResult:
    """Every wrapped entry launches directly again, as its newest backup holds it; for an entry no backup
    holds, its command line is restored and `stored(server)` (its secrets in Bastion) fills its env."""
    file = read_client_config(path)
    key = _servers_key(file, kind)
    new, restored = unwrap_entries(file.data, kind, _backups(path, key))
    if not restored:
        return InstallResult(path, None, [], [])
    notes: list[str] = []
    for entry in restored:
        if entry.backup is not None:
            notes.append(f"{entry.entry}: restored as {entry.backup.name} holds it")
            continue
        values = dict(stored(entry.server)) if entry.server else {}
        if values:
            server = new[key][entry.entry]
            server["env"] = {**(_object(server.get("env")) or {}), **values}
        names = f"; {', '.join(values)} written back from Bastion's secret store" if values else ""
        notes.append(f"{entry.entry}: no backup holds it as it was, so its command line is restored{names}")
    backup = _write(path, _dump(file, new, "uninstall"), now)
    return InstallResult(path, backup, [entry.entry for entry in restored], [], [], notes)

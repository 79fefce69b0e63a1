"""MCP client configs (Claude Desktop, Claude Code, Cursor, VS Code): import, install, uninstall.

Pure functions read a client's JSON into server entries, map them onto `bastion.toml`, and
rewrite a client's entries to launch through `bastion wrap` (and back). The edge functions
`install` and `uninstall` write a timestamped backup first and replace the file atomically,
so a user's config is never lost.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import tomli_w

from bastion.config.model import BastionConfig, ServerConfig
from bastion.errors import ClientConfigError

__all__ = [
    "ClientKind",
    "Imported",
    "InstallResult",
    "default_config_path",
    "import_servers",
    "install",
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
        server = _server(name, entry, warnings)
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
        for header, value in (entry.get("headers") or {}).items():
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
    for variable, value in (entry.get("env") or {}).items():
        text = str(value)
        if "${" in text:
            warnings.append(f"{name}: {variable} refers to {text}; passed through from Bastion's environment instead")
            env_pass.append(str(variable))
        elif _secret(str(variable), text):
            warnings.append(f"{name}: {variable} looks secret; not written to bastion.toml, export it for Bastion")
            env_pass.append(str(variable))
        else:
            env[str(variable)] = text
    args = tuple(str(arg) for arg in entry.get("args") or ())
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


# -- install / uninstall ---------------------------------------------------------------------------------------


def wrap_entries(
    data: dict[str, Any], kind: ClientKind | None, bastion_argv: list[str]
) -> tuple[dict[str, Any], list[str], list[str]]:
    """(new config, names now launched through Bastion, names left alone with why)."""
    key = _key(kind, data)
    servers = dict(data.get(key) or {})
    changed: list[str] = []
    skipped: list[str] = []
    for name, entry in servers.items():
        if not isinstance(entry, dict):
            continue
        if _unwrapped(entry) is not None:
            continue
        if entry.get("url") or entry.get("serverUrl") or entry.get("type") in ("http", "sse", "streamable-http"):
            skipped.append(f"{name}: remote servers are routed with `bastion serve` (see docs/quickstart.md)")
            continue
        if not isinstance(entry.get("command"), str):
            continue
        label = _NAME.sub("-", name).strip("-_")[:64] or "server"
        args = [str(arg) for arg in entry.get("args") or []]
        grants = [flag for root in given_directories(args) for flag in ("--fs-read", root)]
        argv = [*bastion_argv[1:], "wrap", "--name", label, *grants, "--", entry["command"], *args]
        servers[name] = {**entry, "command": bastion_argv[0], "args": argv}
        changed.append(name)
    return {**data, key: servers}, changed, skipped


def _unwrapped(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The original command of an entry that launches through `bastion wrap`, else None."""
    args = [str(arg) for arg in entry.get("args") or []]
    if "wrap" not in args or "--" not in args:
        return None
    command = str(entry.get("command", ""))
    if "bastion" not in Path(command).name and "bastion" not in args[: args.index("wrap")]:
        return None
    original = args[args.index("--") + 1 :]
    if not original:
        return None
    return {"command": original[0], "args": original[1:]}


def unwrap_entries(data: dict[str, Any], kind: ClientKind | None) -> tuple[dict[str, Any], list[str]]:
    key = _key(kind, data)
    servers = dict(data.get(key) or {})
    changed: list[str] = []
    for name, entry in servers.items():
        original = _unwrapped(entry) if isinstance(entry, dict) else None
        if original is not None:
            servers[name] = {**entry, **original}
            changed.append(name)
    return {**data, key: servers}, changed


@dataclass(frozen=True)
class InstallResult:
    path: Path
    backup: Path | None
    changed: list[str]
    skipped: list[str]


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClientConfigError(path, "does not exist", "pass the client's config with --config-path") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientConfigError(
            path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", "fix the file first"
        ) from None
    if not isinstance(data, dict):
        raise ClientConfigError(path, "is not a JSON object", "check that this is an MCP client config")
    return data  # pyright: ignore[reportUnknownVariableType]


def _write(path: Path, data: dict[str, Any], now: datetime) -> Path:
    """Back up the current file, then replace it atomically with the same permissions."""
    backup = path.with_name(f"{path.name}.bastion-backup-{now.strftime('%Y%m%dT%H%M%SZ')}")
    original = path.read_bytes()
    mode = path.stat().st_mode & 0o777
    for target, content in ((backup, original), (path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))):
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.write(descriptor, content)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, target)
    return backup


def install(kind: ClientKind, path: Path, bastion_argv: list[str], now: datetime) -> InstallResult:
    data = _read(path)
    new, changed, skipped = wrap_entries(data, kind, bastion_argv)
    backup = _write(path, new, now) if changed else None
    return InstallResult(path, backup, changed, skipped)


def uninstall(kind: ClientKind, path: Path, now: datetime) -> InstallResult:
    data = _read(path)
    new, changed = unwrap_entries(data, kind)
    backup = _write(path, new, now) if changed else None
    return InstallResult(path, backup, changed, [])

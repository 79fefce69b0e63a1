"""`bastion policy check`: findings about a valid config that still says something unwise.

Errors stop a gateway (a root that is not a directory); warnings are choices a reviewer
should see (grants that undo read-only, rules that can never apply, roots that expose a
whole system). Pure apart from asking whether roots exist.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Literal

from bastion.config.model import CAPABILITIES, BastionConfig, ServerConfig

__all__ = ["Finding", "lint"]

BROAD_ROOTS = frozenset({"/", "/home", "/root", "/etc", "/usr", "/var"})


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Literal["error", "warning", "info"]
    where: str
    message: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def lint(config: BastionConfig, home: str | None = None) -> list[Finding]:
    home = home if home is not None else os.path.expanduser("~")
    found: list[Finding] = []
    for name, server in config.servers.items():
        found += _server(name, server, home)
    for client, rules in config.clients.items():
        where = f"clients.{client}"
        for server, caps in rules.grants.items():
            if rules.servers is not None and server not in rules.servers:
                found.append(
                    Finding("warning", f"{where}.grants.{server}", "unreachable: the client may not use this server")
                )
            already = sorted(set(caps) & config.servers[server].capabilities)
            if already:
                found.append(
                    Finding("info", f"{where}.grants.{server}", f"{already} already granted by the server to everyone")
                )
        if rules.servers == ():
            found.append(Finding("warning", f"{where}.servers", "the client may use no server at all"))
    for name, server in config.enabled_servers().items():
        if (server.mode or config.policy.mode) == "monitor":
            found.append(
                Finding(
                    "warning",
                    f"servers.{name}.mode" if server.mode else "policy.mode",
                    f"server {name!r} runs in monitor mode: its refusals are recorded, not applied",
                    'set mode = "enforce" once `bastion policy shadow` shows what you expect',
                )
            )
    return found


def _server(name: str, server: ServerConfig, home: str) -> list[Finding]:
    where = f"servers.{name}"
    found: list[Finding] = []
    tools = server.tools
    if not server.read_only:
        found.append(
            Finding(
                "warning",
                f"{where}.read_only",
                "read_only = false grants every capability (write, network, destructive, exec): read-only means nothing",
                'remove it and grant what the server needs: grants = ["write"]',
            )
        )
    elif set(server.grants) == set(CAPABILITIES):
        found.append(Finding("warning", f"{where}.grants", "every capability is granted: read-only means nothing"))
    if "exec" in server.capabilities and not server.commands.allow:
        found.append(
            Finding(
                "warning",
                f"{where}.grants",
                "exec is granted with no command allowlist: any command may run",
                '[servers.NAME.commands] allow = {git = ["status", "log"]}',
            )
        )
    if "write" in server.capabilities and not server.fs_write:
        found.append(
            Finding(
                "info",
                f"{where}.fs_write",
                "write is granted but no directory is writable: write tools with path arguments are refused",
                'add fs_write = ["/path/to/scratch"]',
            )
        )
    for key, roots in (("fs_read", server.fs_read), ("fs_write", server.fs_write)):
        for root in roots:
            expanded = os.path.normpath(os.path.expanduser(root))
            if not os.path.isdir(expanded):
                found.append(
                    Finding("error", f"{where}.{key}", f"{root!r} is not a directory", "create it or fix the path")
                )
            elif expanded in BROAD_ROOTS or expanded == os.path.normpath(home):
                found.append(
                    Finding(
                        "warning",
                        f"{where}.{key}",
                        f"{root!r} exposes a whole system or home directory",
                        "grant the narrowest directory the server needs",
                    )
                )
    for listed in ("grant", "approve", "rate", "risk"):
        names = getattr(tools, listed)
        for tool in names:
            if tools.allow and tool not in tools.allow:
                found.append(
                    Finding("warning", f"{where}.tools.{listed}", f"unreachable: {tool!r} is not in tools.allow")
                )
            if tool in tools.disabled:
                found.append(Finding("warning", f"{where}.tools.{listed}", f"unreachable: {tool!r} is disabled"))
    if server.urls.allow_private:
        found.append(
            Finding("info", f"{where}.urls.allow_private", "URL arguments may reach private and loopback addresses")
        )
    return found

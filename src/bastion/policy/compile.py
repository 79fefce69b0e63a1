"""From `bastion.toml` to a `Policy`: the one step that touches the filesystem (resolving roots)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from bastion.config.model import BastionConfig, ServerConfig
from bastion.policy.commands import CommandRules
from bastion.policy.decide import Policy
from bastion.policy.paths import PathRules, resolve_root
from bastion.policy.rules import ApprovalRule, ClientPolicy, ServerPolicy
from bastion.policy.urls import UrlRules

__all__ = ["compile_policy", "server_policy"]


def compile_policy(config: BastionConfig, environ: Mapping[str, str] | None = None) -> Policy:
    """Every enabled server's rules and every client's limits, roots resolved once, here."""
    home = (environ or os.environ).get("HOME") or None
    servers = {name: server_policy(name, server, home) for name, server in config.enabled_servers().items()}
    clients = {
        name: ClientPolicy(
            frozenset(rules.servers) if rules.servers is not None else None,
            {server: frozenset(caps) for server, caps in rules.grants.items()},
            frozenset(rules.deny_tools),
        )
        for name, rules in config.clients.items()
    }
    return Policy(servers, clients)


def server_policy(name: str, server: ServerConfig, home: str | None) -> ServerPolicy:
    read_roots = tuple(resolve_root(root, home) for root in server.fs_read)
    write_roots = tuple(resolve_root(root, home) for root in server.fs_write)
    base = server.path_base or next(iter((*read_roots, *write_roots)), None) or server.cwd or os.getcwd()
    paths = PathRules(
        read_roots=read_roots,
        write_roots=write_roots,
        denied_names=server.paths.denied_names,
        base=resolve_root(base, home),
        home=home,
        allowed_names=server.paths.allowed_names,
        section=f"servers.{name}",
    )
    urls = UrlRules(
        schemes=tuple(scheme.lower() for scheme in server.urls.schemes),
        allow_hosts=server.urls.allow_hosts,
        deny_hosts=server.urls.deny_hosts,
        allow_private=server.urls.allow_private,
        section=f"servers.{name}.urls",
    )
    approve_when = tuple(
        ApprovalRule(
            index,
            when.tool,
            when.argument,
            PathRules(read_roots=(), write_roots=tuple(resolve_root(r, home) for r in when.outside), base=paths.base)
            if when.outside
            else None,
            re.compile(when.matching) if when.matching is not None else None,
            re.compile(when.not_matching) if when.not_matching is not None else None,
        )
        for index, when in enumerate(server.approval.when)
    )
    return ServerPolicy(
        name,
        server.capabilities,
        server.tools,
        server.arguments,
        paths,
        urls,
        server.sql,
        CommandRules(allow=dict(server.commands.allow), shell=server.commands.shell, unlisted=server.commands.unlisted),
        server.strict_arguments,
        server.max_argument_bytes,
        frozenset(server.approval.classes),
        approve_when,
        outbound_secrets=server.outbound_secrets,
        sampling=server.sampling,
    )

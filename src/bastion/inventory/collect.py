"""Connecting to every configured server to take stock of what it offers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from bastion.config.model import BastionConfig, ServerConfig
from bastion.identity.secrets import SecretStore
from bastion.inventory.risk import Classification, classify
from bastion.policy.compile import compile_policy
from bastion.policy.decide import Policy
from bastion.proxy.pipeline import ClientInfo
from bastion.proxy.session import NoClient, Session
from bastion.sandbox.prepare import Launcher, ServerFacts, secrets_of
from bastion.store.home import bastion_home, ensure_home
from bastion.transport.connect import make_connector
from bastion.types import Action, Era

__all__ = ["ServerInventory", "ToolEntry", "collect_inventory"]


@dataclass(frozen=True, slots=True)
class ToolEntry:
    tool: dict[str, Any]
    classification: Classification
    hidden: bool
    rule: str = ""
    """The policy rule that decides whether a client without a client-specific entry may call it."""


@dataclass(frozen=True, slots=True)
class ServerInventory:
    name: str
    config: ServerConfig
    state: str
    detail: str
    protocol_version: str = ""
    era: str = ""
    server_info: dict[str, Any] = field(default_factory=dict[str, Any])
    instructions: str | None = None
    capabilities: dict[str, Any] = field(default_factory=dict[str, Any])
    tools: tuple[ToolEntry, ...] = ()
    resources: tuple[dict[str, Any], ...] = ()
    resource_templates: tuple[dict[str, Any], ...] = ()
    prompts: tuple[dict[str, Any], ...] = ()


async def collect_inventory(config: BastionConfig, environ: Mapping[str, str]) -> list[ServerInventory]:
    servers = config.enabled_servers()
    # Inventory starts the servers it lists, so they run exactly as the gateway would run them:
    # sandboxed, with their own secrets.
    secrets = SecretStore.open(ensure_home(bastion_home(environ)), environ)
    launcher = Launcher(environ, ServerFacts(), secrets_of(secrets))
    gateway = config.gateway
    connector = make_connector(
        environ, max_bytes=gateway.max_frame_bytes, max_depth=gateway.max_depth, prepare=launcher
    )
    client = ClientInfo("inventory", "inventory", Era.HANDSHAKE, "bastion-inventory")
    session = Session(servers, config.gateway, client, NoClient(), connector, client_capabilities={})
    policy = compile_policy(config, environ)
    result: list[ServerInventory] = []
    try:
        async with anyio.create_task_group() as tasks:
            await tasks.start(session.run_lenient)
            result = [_describe(session, policy, name, server) for name, server in servers.items()]
            tasks.cancel_scope.cancel()
    finally:
        secrets.close()
    return result


def _describe(session: Session, policy: Policy, name: str, server: ServerConfig) -> ServerInventory:
    supervisor = session.supervisors()[name]
    upstream = supervisor.upstream
    if upstream is None:
        return ServerInventory(name, server, supervisor.state.value, supervisor.detail)
    rules = server.tools
    entries: list[ToolEntry] = []
    for tool in session.listing(name, "tools"):
        decision = policy.decide_tool("local", name, policy.servers[name].profile(tool))
        classification = classify(tool, rules.risk.get(str(tool.get("name"))))
        entries.append(ToolEntry(tool, classification, decision.action is Action.DENY, decision.rule))
    tools = tuple(entries)
    return ServerInventory(
        name,
        server,
        supervisor.state.value,
        supervisor.detail,
        upstream.protocol_version,
        upstream.era.value,
        upstream.server_info,
        upstream.instructions,
        upstream.capabilities,
        tools,
        tuple(session.listing(name, "resources")),
        tuple(session.listing(name, "resourceTemplates")),
        tuple(session.listing(name, "prompts")),
    )

"""Taking stock of what every configured server offers, through a session the caller built.

The composition root (`bastion.runtime.collect_inventory`) starts the servers as the gateway
would run them (sandboxed, with their own secrets); this module only reads what they list and
judges it: risk, whether policy hides it, drift from the lock, risky configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from bastion.config.model import ServerConfig
from bastion.inventory.admit import launch_command
from bastion.inventory.packages import package_ref, typosquat, unpinned_finding
from bastion.inventory.pins import Lock, compare
from bastion.policy.decide import Policy
from bastion.policy.risk import Classification, classify
from bastion.proxy.session import Session
from bastion.types import Action

__all__ = ["ServerInventory", "ToolEntry", "config_findings", "server_findings", "take_inventory"]


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
    findings: tuple[str, ...] = ()
    """What a reviewer should know: unsandboxed, unpinned package, typosquat, drift from the lock."""


async def take_inventory(session: Session, policy: Policy, lock: Lock | None = None) -> list[ServerInventory]:
    """Run `session` (every server given one try at starting), describe each of its servers, stop."""
    result: list[ServerInventory] = []
    async with anyio.create_task_group() as tasks:
        await tasks.start(session.run_lenient)
        result = [
            _with_findings(_describe(session, policy, name, server), lock) for name, server in session.servers.items()
        ]
        tasks.cancel_scope.cancel()
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


def _with_findings(inventory: ServerInventory, lock: Lock | None) -> ServerInventory:
    return replace(inventory, findings=tuple(server_findings(inventory, lock)))


def server_findings(inventory: ServerInventory, lock: Lock | None) -> list[str]:
    """Findings about one server for a report: how it is confined, pinned and granted."""
    config = inventory.config
    found = config_findings(config)
    if lock is None:
        found.append("not pinned: no bastion.lock (run `bastion pin`)")
    elif inventory.state == "up":
        drift = compare(
            inventory.name,
            lock.servers.get(inventory.name),
            launch_command(config),
            str(inventory.server_info.get("version", "")),
            inventory.instructions,
            [entry.tool for entry in inventory.tools],
            list(inventory.prompts),
            list(inventory.resource_templates),
        )
        found += drift.describe()
    return found


def config_findings(config: ServerConfig) -> list[str]:
    """What the configuration alone says is risky: unsandboxed, every capability, an unpinned package."""
    found: list[str] = []
    if config.transport == "stdio" and config.sandbox == "off":
        found.append('runs unsandboxed (sandbox = "off")')
    if not config.read_only:
        found.append("read_only = false: every capability is granted")
    ref = package_ref(launch_command(config))
    if ref is not None:
        unpinned = unpinned_finding(ref)
        if unpinned:
            found.append(unpinned)
        squat = typosquat(ref.name, ref.launcher)
        if squat:
            found.append(f"package {ref.name!r} is one edit away from the well-known {squat!r}: a typosquat?")
    return found

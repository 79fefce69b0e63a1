"""Rendering an inventory: JSON for machines, Markdown for reviews, and data for a terminal table."""

from __future__ import annotations

import json
from typing import Any

from bastion.inventory.collect import ServerInventory

__all__ = ["inventory_data", "to_json", "to_markdown"]


def inventory_data(servers: list[ServerInventory]) -> dict[str, Any]:
    return {"servers": [_server(server) for server in servers]}


def _server(inv: ServerInventory) -> dict[str, Any]:
    config = inv.config
    return {
        "name": inv.name,
        "transport": config.transport,
        "command": [config.command, *config.args] if config.command else None,
        "url": config.url,
        "state": inv.state,
        "detail": inv.detail,
        "era": inv.era,
        "protocolVersion": inv.protocol_version,
        "serverInfo": inv.server_info,
        "instructions": inv.instructions,
        "capabilities": inv.capabilities,
        "tools": [
            {
                "name": entry.tool.get("name"),
                "title": entry.tool.get("title"),
                "description": entry.tool.get("description"),
                "risk": entry.classification.risk.value,
                "riskSource": entry.classification.source,
                "riskReasons": list(entry.classification.reasons),
                "hidden": entry.hidden,
                "rule": entry.rule,
                "inputSchema": entry.tool.get("inputSchema"),
                "outputSchema": entry.tool.get("outputSchema"),
                "annotations": entry.tool.get("annotations"),
            }
            for entry in inv.tools
        ],
        "resources": list(inv.resources),
        "resourceTemplates": list(inv.resource_templates),
        "prompts": list(inv.prompts),
        "sandbox": config.sandbox if config.transport == "stdio" else "remote",
        "findings": list(inv.findings),
    }


def to_json(servers: list[ServerInventory]) -> str:
    return json.dumps(inventory_data(servers), indent=2, ensure_ascii=False)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ").strip()


def to_markdown(servers: list[ServerInventory]) -> str:
    lines = ["# Bastion inventory", ""]
    for server in inventory_data(servers)["servers"]:
        lines += [f"## {server['name']}", ""]
        target = " ".join(server["command"]) if server["command"] else server["url"]
        info = server["serverInfo"] or {}
        lines += [
            f"- transport: {server['transport']} — `{_cell(target)}`",
            f"- state: {server['state']} ({_cell(server['detail'])})",
            f"- protocol: {server['protocolVersion'] or 'unknown'} ({server['era'] or 'n/a'} era)",
            f"- server: {_cell(info.get('name'))} {_cell(info.get('version'))}",
        ]
        if server["instructions"]:
            lines.append(f"- instructions: {_cell(server['instructions'])}")
        lines.append(f"- sandbox: {server['sandbox']}")
        lines += [f"- **finding:** {_cell(finding)}" for finding in server["findings"]]
        lines.append("")
        if server["tools"]:
            lines += ["| tool | risk | why | listed | description |", "|---|---|---|---|---|"]
            for tool in server["tools"]:
                why = "; ".join(tool["riskReasons"][:3])
                listed = f"hidden ({tool['rule']})" if tool["hidden"] else "yes"
                lines.append(
                    f"| `{_cell(tool['name'])}` | {tool['risk']} | {_cell(why)} | {listed} | {_cell(tool['description'])[:120]} |"
                )
            lines.append("")
        for key, title in (
            ("resources", "Resources"),
            ("resourceTemplates", "Resource templates"),
            ("prompts", "Prompts"),
        ):
            if server[key]:
                lines.append(
                    f"{title}: "
                    + ", ".join(
                        f"`{_cell(i.get('uri') or i.get('uriTemplate') or i.get('name'))}`" for i in server[key]
                    )
                )
                lines.append("")
    return "\n".join(lines).rstrip() + "\n"

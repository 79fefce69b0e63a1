"""Rendering an inventory: JSON a machine reads back, and Markdown a reviewer reads whole."""

from __future__ import annotations

import json
from typing import Any

from bastion.config.load import parse_config
from bastion.inventory.collect import ServerInventory, ToolEntry
from bastion.inventory.report import inventory_data, to_json, to_markdown
from bastion.policy.risk import classify

CONFIG = parse_config(
    '[servers.notes]\ncommand = "notes-server"\nargs = ["--dir", "/srv"]\n[servers.remote]\nurl = "https://mcp.example/mcp"\n'
)


def entry(tool: dict[str, Any], hidden: bool = False, rule: str = "") -> ToolEntry:
    return ToolEntry(tool, classify(tool), hidden, rule)


READ = {"name": "read_note", "description": "Read one note | from disk\nfast", "inputSchema": {"type": "object"}}
DELETE = {"name": "delete_note", "description": "Delete a note"}
NOTES = ServerInventory(
    "notes",
    CONFIG.servers["notes"],
    "running",
    "started",
    protocol_version="2025-11-25",
    era="handshake",
    server_info={"name": "notes-server", "version": "1.0"},
    tools=(entry(READ, rule="grant.read"), entry(DELETE, hidden=True, rule="capability.destructive")),
    prompts=({"name": "summarize"},),
    findings=("unpinned package",),
)
REMOTE = ServerInventory("remote", CONFIG.servers["remote"], "failed", "connection refused")


def test_the_data_names_each_tools_risk_and_why_it_is_hidden() -> None:
    [notes] = inventory_data([NOTES])["servers"]
    assert notes["command"] == ["notes-server", "--dir", "/srv"]
    assert notes["sandbox"] == "on"
    tools = {tool["name"]: tool for tool in notes["tools"]}
    assert (tools["read_note"]["risk"], tools["read_note"]["hidden"]) == ("read", False)
    assert (tools["delete_note"]["risk"], tools["delete_note"]["rule"]) == ("destructive", "capability.destructive")
    assert tools["delete_note"]["riskSource"] == "derived"


def test_a_remote_server_has_a_url_no_command_and_no_sandbox_of_ours() -> None:
    [remote] = inventory_data([REMOTE])["servers"]
    assert (remote["command"], remote["url"], remote["sandbox"]) == (None, "https://mcp.example/mcp", "remote")
    assert remote["tools"] == []


def test_the_json_reads_back_as_the_data() -> None:
    assert json.loads(to_json([NOTES, REMOTE])) == inventory_data([NOTES, REMOTE])


def test_markdown_escapes_table_cells_and_marks_hidden_tools_with_their_rule() -> None:
    text = to_markdown([NOTES])
    assert text.startswith("# Bastion inventory\n\n## notes\n")
    assert "- protocol: 2025-11-25 (handshake era)" in text
    assert "- **finding:** unpinned package" in text
    assert "Read one note \\| from disk fast |" in text
    assert "| `delete_note` | destructive |" in text
    assert "| hidden (capability.destructive) |" in text
    assert "Prompts: `summarize`" in text


def test_markdown_of_a_server_that_never_answered_says_what_is_unknown() -> None:
    text = to_markdown([REMOTE])
    assert "- transport: http — `https://mcp.example/mcp`" in text
    assert "- state: failed (connection refused)" in text
    assert "- protocol: unknown (n/a era)" in text
    assert "| tool |" not in text
    assert text.endswith("- sandbox: remote\n")

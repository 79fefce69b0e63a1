"""The demo: a small MCP server of ours and a scripted client session through Bastion."""

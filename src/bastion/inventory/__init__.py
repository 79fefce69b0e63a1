"""Taking stock of what configured MCP servers offer, and how risky each tool is."""

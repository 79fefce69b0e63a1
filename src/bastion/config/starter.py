"""The commented starter `bastion.toml` that `bastion init` writes."""

from __future__ import annotations

from bastion.config.schema import SCHEMA_DIRECTIVE

__all__ = ["starter_toml"]

_STARTER = """\
# bastion.toml: which MCP servers Bastion runs, and how clients reach them.
# Reference: docs/configuration.md. Check it with: bastion inventory --config bastion.toml
# The first line names the JSON Schema beside this file (`bastion config schema` writes it):
# editors that read it (Even Better TOML and other taplo-based ones) complete and check keys.

[gateway]
# This gateway's name in records and in the server-info clients see.
instance = "bastion"
# How aggregated tool and prompt names are formed when several servers sit behind
# one endpoint. Must contain {server} and {tool} with a separator between them.
namespace = "{server}__{tool}"
# With a single server, names pass through unchanged unless this is true.
namespace_single = false
# Largest JSON-RPC frame accepted from a client or server (bytes), and deepest nesting.
max_frame_bytes = 4194304
max_depth = 64
# Longest wait (seconds) between restarts of a server that keeps crashing.
restart_backoff_max = 30.0

[audit]
# Where the tamper-evident audit log lives: unset for BASTION_HOME/audit.db, or a shared
# PostgreSQL database for several gateways, e.g. "postgresql://bastion@db.internal/bastion".
# store = "postgresql://…"

[http]
# Where `bastion serve` listens; the endpoint is /mcp. Loopback by default.
listen = "127.0.0.1:8765"
# Serve without bearer tokens (only allowed on loopback). Create tokens with:
#   bastion tokens create --client my-agent
open = false
# Browser origins and Host headers accepted besides loopback ones.
allowed_origins = []
allowed_hosts = []

# One table per server. A stdio server has `command` (+ `args`); a remote one has `url`.
[servers.filesystem]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem@2026.8.31", "/srv/data"]
# Bastion's own environment variables passed through to this server (nothing else is,
# besides PATH, HOME, LANG and a few basics):
env_pass = []
# Fixed, non-secret variables for this server:
# env = { LOG_LEVEL = "info" }
# Protocol revision: "auto" speaks the client's era first and the other if the server needs it.
protocol = "auto"
startup_timeout = 30.0
request_timeout = 300.0
# Policy (docs/policy.md). Read-only by default: only tools classified read are listed and
# callable. Grant more per server with e.g. grants = ["write"] (write, network, destructive, exec).
read_only = true
grants = []
# Directories path arguments may name; writes only in fs_write. Each must exist. Without
# fs_read, every path argument is refused.
# fs_read = ["/srv/data"]
# fs_write = ["/srv/data/scratch"]

[servers.filesystem.tools]
# Only these tools are listed and callable (empty: all).
allow = []
# Never listed, never callable.
deny = []
# Allowed whatever their risk class:
grant = []
# Calls wait for a person's approval (refused while no approval channel is configured):
approve = []
# The kill switch in config (bastion policy kill SERVER TOOL does it live):
disabled = []
# Override the derived risk class of a tool: read, write, destructive, exec or network.
# risk = { read_text_file = "read" }
# Per-client rate limits for one tool:
# rate = { write_file = "10/minute" }

# A remote server over Streamable HTTP; its token comes from an environment variable.
# [servers.tickets]
# url = "https://mcp.example.com/mcp"
# bearer_token_env = "TICKETS_MCP_TOKEN"
"""


def starter_toml() -> str:
    """The starter, headed by the taplo directive naming the schema `bastion init` writes beside it."""
    return f"{SCHEMA_DIRECTIVE}\n\n{_STARTER}"

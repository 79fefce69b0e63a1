"""The `bastion.toml` model: what a user may write, validated at the edge.

Everything the CLI flags of `bastion wrap` can say maps onto these same models, so a
wrapped server and a configured one are the same thing inside Bastion.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bastion.inventory.risk import RiskClass

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "AuditConfig",
    "BastionConfig",
    "GatewayConfig",
    "HttpConfig",
    "ServerConfig",
    "ToolRules",
]

DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ProtocolChoice = Literal["auto", "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolRules(_Model):
    """Which tools of a server clients may see and call (by the server's own tool names)."""

    allow: tuple[str, ...] = ()
    """If non-empty, only these tools are listed and callable."""
    deny: tuple[str, ...] = ()
    """Never listed, never callable; a call is refused exactly as for a tool that does not exist."""
    approve: tuple[str, ...] = ()
    """Calls wait for a person (the approval gate); refused at start-up until that gate exists."""
    risk: dict[str, RiskClass] = Field(default_factory=dict)
    """Overrides of the derived risk class, per tool name."""

    @model_validator(mode="after")
    def _no_overlap(self) -> ToolRules:
        both = sorted(set(self.allow) & set(self.deny))
        if both:
            raise ValueError(f"tools {both} are both allowed and denied; keep each in one list")
        return self


class ServerConfig(_Model):
    """One MCP server behind Bastion: a stdio subprocess (`command`) or a remote URL (`url`)."""

    command: str | None = None
    args: tuple[str, ...] = ()
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    """Fixed variables for the server's environment (no secrets here: they belong in the secret store)."""
    env_pass: tuple[str, ...] = ()
    """Names of Bastion's own environment variables passed through to this server."""
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    bearer_token_env: str | None = None
    """Name of an environment variable holding the bearer token for a remote server."""
    protocol: ProtocolChoice = "auto"
    """Protocol revision to speak to this server; `auto` probes the modern era, then falls back."""
    startup_timeout: Annotated[float, Field(gt=0, le=600)] = 30.0
    request_timeout: Annotated[float, Field(gt=0, le=86400)] = 300.0
    tools: ToolRules = Field(default_factory=ToolRules)
    read_only: bool | None = None
    """Read-only by default once policy lands; `false` opts out."""
    fs_read: tuple[str, ...] = ()
    fs_write: tuple[str, ...] = ()
    network: bool | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of `command` (a stdio server) or `url` (a remote server)")
        if self.url is not None and not re.match(r"^https?://", self.url):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        return self

    @field_validator("env_pass")
    @classmethod
    def _env_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
        return names

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"


class GatewayConfig(_Model):
    instance: str = "bastion"
    """This gateway's name in records and in the server-info it reports."""
    namespace: str = "{server}__{tool}"
    """How aggregated tool and prompt names are formed; must contain {server} and {tool}."""
    namespace_single: bool = False
    """Namespace names even when only one server is configured (off: one server is wrapped transparently)."""
    max_frame_bytes: Annotated[int, Field(ge=1024, le=256 * 1024 * 1024)] = DEFAULT_MAX_FRAME_BYTES
    max_depth: Annotated[int, Field(ge=8, le=1000)] = 64
    restart_backoff_max: Annotated[float, Field(gt=0, le=3600)] = 30.0

    @field_validator("namespace")
    @classmethod
    def _namespace_shape(cls, value: str) -> str:
        if "{server}" not in value or "{tool}" not in value:
            raise ValueError("namespace must contain both {server} and {tool}, e.g. '{server}__{tool}'")
        rest = value.replace("{server}", "").replace("{tool}", "")
        if not rest or "{" in rest or "}" in rest:
            raise ValueError("namespace needs a separator between {server} and {tool}, e.g. '{server}__{tool}'")
        if value.index("{server}") > value.index("{tool}"):
            raise ValueError("namespace must put {server} before {tool}")
        return value


class HttpConfig(_Model):
    listen: str = "127.0.0.1:8765"
    open: bool = False
    """Serve without bearer tokens; only allowed on a loopback address."""
    allowed_origins: tuple[str, ...] = ()
    """Extra browser origins allowed besides loopback ones, e.g. 'https://agent.example.com'."""
    allowed_hosts: tuple[str, ...] = ()
    """Extra Host header values accepted besides the listen address and loopback names."""


class AuditConfig(_Model):
    store: str | None = None
    """Where the audit log lives: unset for the embedded SQLite file in BASTION_HOME, or
    `postgresql://…` to share one database between gateways (each keeps its own log)."""

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise ValueError("store must be sqlite:PATH or postgresql://…")
        return value


class BastionConfig(_Model):
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    servers: dict[str, ServerConfig] = Field(default_factory=dict)

    @field_validator("servers")
    @classmethod
    def _server_names(cls, servers: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        for name in servers:
            if not SERVER_NAME.match(name):
                raise ValueError(
                    f"server name {name!r} must be 1-64 letters, digits, '-' or '_' and start with a letter or digit"
                )
        return servers

    def enabled_servers(self) -> dict[str, ServerConfig]:
        return {name: server for name, server in self.servers.items() if server.enabled}

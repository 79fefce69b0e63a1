"""The `bastion.toml` model: what a user may write, validated at the edge.

Everything the CLI flags of `bastion wrap` can say maps onto these same models, so a
wrapped server and a configured one are the same thing inside Bastion.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bastion.config.hosts import host_pattern
from bastion.types import RiskClass

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "CAPABILITIES",
    "DEFAULT_ALLOWED_NAMES",
    "DEFAULT_DENIED_NAMES",
    "DEFAULT_MAX_FRAME_BYTES",
    "ApprovalConfig",
    "ApprovalWhen",
    "ArgumentKinds",
    "AuditConfig",
    "AuthConfig",
    "BastionConfig",
    "Capability",
    "CheckConfig",
    "ClientConfig",
    "CommandConfig",
    "DashboardConfig",
    "GatewayConfig",
    "HttpConfig",
    "Isolation",
    "LimitsConfig",
    "PathConfig",
    "PolicyConfig",
    "PolicyMode",
    "PoolConfig",
    "ScreenConfig",
    "ServerApproval",
    "ServerConfig",
    "SinkConfig",
    "SqlConfig",
    "ToolRules",
    "UrlConfig",
    "WatchConfig",
    "parse_rate",
]

DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_NAME_FIX = "use letters, digits and '_', not starting with a digit"
RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
PER = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
Capability = Literal["write", "network", "destructive", "exec"]
CAPABILITIES: tuple[Capability, ...] = ("write", "network", "destructive", "exec")
"""What a grant can add to read-only: one per risk class above read."""
PolicyMode = Literal["enforce", "monitor"]
"""`enforce` applies every refusal; `monitor` computes and records them but lets the call through."""
Isolation = Literal["session", "client", "shared"]
"""Who shares a server's processes under `bastion serve`: each MCP session has its own (`session`),
each client identity has its own (`client`), or every client uses one bounded pool (`shared`)."""
ProtocolChoice = Literal["auto", "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
DEFAULT_DENIED_NAMES: tuple[str, ...] = (
    ".env", ".env.*", ".envrc", ".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube/config",
    ".docker/config.json", ".git/config", ".git-credentials", ".netrc", "_netrc", ".npmrc", ".pypirc",
    ".pgpass", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.pem", "*.key", "*.p12", "*.pfx",
)  # fmt: skip
"""File names no path argument may reach (`policy/paths.py` says how they match): the config's
default, and the path rules' when no config is given."""
DEFAULT_ALLOWED_NAMES: tuple[str, ...] = (".env.example", ".env.sample", ".env.template", ".env.dist")
"""Exceptions to the denied names: templates that list a project's variables, not their values."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_rate(text: str) -> tuple[int, float]:
    """`"60/minute"` as (60 calls, 60.0 seconds); ValueError names the accepted shape."""
    match = RATE.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"rate {text!r} must look like '60/minute' (a positive count per second, minute, hour or day)")
    return int(match.group(1)), PER[match.group(2)]


def _rate(value: str | None) -> str | None:
    if value is not None:
        parse_rate(value)
    return value


class ToolRules(_Model):
    """Which tools of a server clients may see and call (by the server's own tool names)."""

    allow: tuple[str, ...] = ()
    """If non-empty, only these tools are listed and callable."""
    deny: tuple[str, ...] = ()
    """Never listed, never callable; a call is refused exactly as for a tool that does not exist."""
    grant: tuple[str, ...] = ()
    """Tools callable whatever their risk class (a per-tool capability grant)."""
    approve: tuple[str, ...] = ()
    """Calls wait for a person (the approval gate); with no approval channel they are refused."""
    disabled: tuple[str, ...] = ()
    """The kill switch in config: hidden and refused, whatever else says (`bastion policy kill` does it live)."""
    risk: dict[str, RiskClass] = Field(default_factory=dict)
    """Overrides of the derived risk class, per tool name (only as a deliberate, reviewed decision)."""
    rate: dict[str, str] = Field(default_factory=dict)
    """Per-tool rate limits per client, e.g. {write_file = "10/minute"}."""

    @model_validator(mode="after")
    def _no_overlap(self) -> ToolRules:
        for first, second in (("allow", "deny"), ("grant", "deny"), ("approve", "deny")):
            both = sorted(set(getattr(self, first)) & set(getattr(self, second)))
            if both:
                raise ValueError(f"tools {both} are in both `{first}` and `{second}`; keep each in one list")
        for value in self.rate.values():
            parse_rate(value)
        return self


class ArgumentKinds(_Model):
    """Which arguments hold paths, URLs, SQL or commands, by name (`arg`, or `tool.arg` for one tool).

    Names listed here are checked in addition to those Bastion recognises by itself
    (`path`, `url`, `sql`, `command` …; see docs/policy.md)."""

    path: tuple[str, ...] = ()
    url: tuple[str, ...] = ()
    sql: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    plain: tuple[str, ...] = ()
    """Arguments Bastion would recognise by name but that are not what the name says (e.g. a search `query`)."""


class UrlConfig(_Model):
    schemes: tuple[str, ...] = ("https", "http")
    allow_hosts: tuple[str, ...] = ()
    deny_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    """Permit private, loopback and link-local addresses (cloud metadata stays refused)."""

    @model_validator(mode="after")
    def _patterns(self) -> UrlConfig:
        for pattern in (*self.allow_hosts, *self.deny_hosts):
            host_pattern(pattern)  # raises ValueError naming it, as policy's UrlRules will
        return self


class SqlConfig(_Model):
    dialect: str | None = None
    """sqlglot dialect: sqlite, postgres, mysql, duckdb …; unset parses generic SQL."""
    tables: tuple[str, ...] = ()
    schemas: tuple[str, ...] = ()
    deny_functions: tuple[str, ...] = ()
    """Side-effecting functions refused besides the built-in list."""

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, value: str | None) -> str | None:
        if value is not None:
            # sqlglot costs ~17 MB; it loads only when a config uses SQL (stdio gateways stay lean).
            from sqlglot.dialects.dialect import Dialect

            try:
                Dialect.get_or_raise(value)
            except ValueError:
                raise ValueError(f"unknown SQL dialect {value!r}; use e.g. sqlite, postgres, mysql, duckdb") from None
        return value


class PathConfig(_Model):
    """`[servers.NAME.paths]`: which file names are secrets wherever they are (the roots are `fs_read`/`fs_write`)."""

    denied_names: tuple[str, ...] = DEFAULT_DENIED_NAMES
    """Glob patterns of names no path may reach, even inside a root (`.env`, `id_rsa*`, `.git/config` …)."""
    allowed_names: tuple[str, ...] = DEFAULT_ALLOWED_NAMES
    """Exceptions to `denied_names`: templates such as `.env.example` that hold no secrets."""

    @field_validator("denied_names", "allowed_names")
    @classmethod
    def _names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not name.strip("/") or "\0" in name:
                raise ValueError(f"{name!r} is not a file name pattern (e.g. '.env', '*.pem', '.git/config')")
        return names


class CommandConfig(_Model):
    allow: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Executable -> regular expressions each argument must match fully; e.g. {git = ["status", "log", "--oneline"]}."""
    shell: bool = False
    """The server runs a command string through a shell (`sh -c`): refuse what a shell would expand too."""
    unlisted: Literal["deny", "approve"] = "deny"
    """An executable outside `allow`: refused, or sent to a person (the approval gate)."""

    @field_validator("allow")
    @classmethod
    def _patterns_compile(cls, allow: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for executable, patterns in allow.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(
                        f"pattern {pattern!r} for {executable!r} is not a regular expression: {exc}"
                    ) from None
        return allow


class LimitsConfig(_Model):
    """Resource limits inside the sandbox (per server process; processes for the whole tree)."""

    memory_mb: Annotated[int, Field(ge=64, le=1024 * 1024)] = 4096
    cpu_seconds: Annotated[int, Field(ge=1, le=10**9)] = 3600
    open_files: Annotated[int, Field(ge=16, le=1_048_576)] = 1024
    processes: Annotated[int, Field(ge=1, le=1_000_000)] = 256


class ApprovalWhen(_Model):
    """An argument condition under which a call needs a person's approval."""

    tool: str | None = None
    """Only for this tool (default: every tool of the server that has the argument)."""
    argument: str
    outside: tuple[str, ...] = ()
    """The argument is a path not inside these directories (e.g. a write outside a scratch directory)."""
    matching: str | None = None
    """The argument's text matches this regular expression (searched anywhere in it)."""
    not_matching: str | None = None
    """The argument's text does not fully match this regular expression (e.g. an address outside a domain)."""

    @model_validator(mode="after")
    def _one_condition(self) -> ApprovalWhen:
        given = [bool(self.outside), self.matching is not None, self.not_matching is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of `outside`, `matching` or `not_matching`")
        for pattern in (self.matching, self.not_matching):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return self


ScreenAction = Literal["flag", "strip", "block"]


class ScreenConfig(_Model):
    """What to do with what a server says (`[servers.NAME.screen]`; docs/screening.md)."""

    listing: ScreenAction = "strip"
    """Tool definitions, prompts and instructions: flag (record only), strip (remove the hidden
    part, keep the tool), or block (the tool is not listed; instructions: the server is silent)."""
    injections: ScreenAction = "strip"
    """Results: `strip` (default) replaces each sentence with a HIGH injection finding by a marker;
    MEDIUM and LOW findings are only recorded. `flag` records all; `block` refuses the result."""
    exfiltration: ScreenAction = "strip"
    secrets: ScreenAction = "strip"
    invisible: Literal["strip", "flag"] = "strip"
    block_at: Literal["medium", "high"] = "medium"
    """With `listing = "block"`: the lowest severity that drops a tool, prompt or resource, and
    at which a finding in the server's instructions blocks the whole server (LOW never blocks)."""


class PoolConfig(_Model):
    """`[servers.NAME.pool]`: the bounds of a server's processes under `isolation = "client"` or `"shared"`."""

    max_processes: Annotated[int, Field(ge=1, le=10_000)] = 16
    """At most this many processes of the server at once (one per client identity, or the shared pool)."""
    sessions_per_process: Annotated[int, Field(ge=1, le=100_000)] = 32
    """At most this many MCP sessions on one process; past that a shared pool starts another, and a
    client's own process refuses more (503 with Retry-After)."""
    idle_timeout: Annotated[float, Field(ge=0, le=86400)] = 5.0
    """A process no session uses is stopped after this many seconds (kept for a client's next session)."""


class ServerApproval(_Model):
    classes: tuple[RiskClass, ...] = ()
    """Every tool of these risk classes waits for a person, e.g. ["destructive"]."""
    when: tuple[ApprovalWhen, ...] = ()


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
    read_only: bool = True
    """Only read tools are callable unless `grants` say more; `false` grants every capability (not advised)."""
    grants: tuple[Capability, ...] = ()
    """Capabilities beyond read for every client of this server: write, network, destructive, exec."""
    fs_read: tuple[str, ...] = ()
    """Directories whose files path arguments may name (and, sandboxed, the only ones the server sees)."""
    fs_write: tuple[str, ...] = ()
    """Directories write tools may change (readable too)."""
    path_base: str | None = None
    """Where the server resolves relative path arguments (default: the first of fs_read, fs_write)."""
    network: bool | None = None
    """Grant the network capability (same as `grants = ["network"]`); `false` refuses it even if granted."""
    arguments: ArgumentKinds = Field(default_factory=ArgumentKinds)
    urls: UrlConfig = Field(default_factory=UrlConfig)
    sql: SqlConfig = Field(default_factory=SqlConfig)
    commands: CommandConfig = Field(default_factory=CommandConfig)
    paths: PathConfig = Field(default_factory=PathConfig)
    strict_arguments: bool = True
    """Refuse arguments the tool's input schema does not declare."""
    max_argument_bytes: Annotated[int, Field(ge=64, le=256 * 1024 * 1024)] = 1024 * 1024
    rate: str | None = None
    """Calls per client to this server, e.g. "120/minute"."""
    approval: ServerApproval = Field(default_factory=ServerApproval)
    outbound_secrets: Literal["deny", "approve", "allow"] = "deny"
    """A key, token or private key (also base64- or percent-encoded) in a call's arguments: refused,
    held for a person (the approval gate), or let through (`arguments.secret`)."""
    sampling: Literal["allow", "approve", "deny"] = "allow"
    """What a `sampling/createMessage` from this server to the client gets: passed on (the client's own
    review applies), held for a person (the approval gate), or refused."""
    screen: ScreenConfig = Field(default_factory=ScreenConfig)
    sandbox: Literal["on", "off"] = "on"
    """Run a stdio server inside bubblewrap (default); "off" is recorded and reported as a finding."""
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    isolation: Isolation = "client"
    """Under `bastion serve`, who shares this server's processes (docs/configuration.md, "Isolation")."""
    pool: PoolConfig = Field(default_factory=PoolConfig)
    enabled: bool = True
    mode: PolicyMode | None = None
    """`monitor`: this server's refusals, approval waits and screening blocks are recorded, not applied
    (default: `[policy] mode`). The audit log and the sandbox stay on (docs/operations.md)."""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What every client may do on this server beyond reading."""
        granted = set(CAPABILITIES if not self.read_only else self.grants)
        if self.network is True:
            granted.add("network")
        elif self.network is False:
            granted.discard("network")
        return frozenset(granted)

    @model_validator(mode="after")
    def _one_transport(self) -> ServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of `command` (a stdio server) or `url` (a remote server)")
        if self.url is not None and not re.match(r"^https?://", self.url):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")
        return self

    @field_validator("rate")
    @classmethod
    def _rate_shape(cls, value: str | None) -> str | None:
        return _rate(value)

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


class PolicyConfig(_Model):
    """`[policy]`: how the policy is rolled out (docs/operations.md, "Monitor mode and rollout")."""

    mode: PolicyMode = "enforce"
    """Every server's mode unless `[servers.NAME] mode` says otherwise."""
    candidate: str | None = None
    """A bastion.toml-shaped file whose policy is decided beside the live one on every call and
    recorded with it (`bastion policy shadow`, `bastion policy promote`); relative to this file."""


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
    pinning: Literal["auto", "enforce", "off"] = "auto"
    """Compare every listing with bastion.lock: `auto` enforces it once the file exists (`bastion pin`
    writes it); `enforce` also blocks every server while there is no lock yet."""

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
    max_sessions: Annotated[int, Field(ge=1)] = 1000
    """MCP sessions one gateway holds at once; a request that would open one more gets 503 and Retry-After."""
    max_starting: Annotated[int, Field(ge=1)] = 4
    """Sessions starting their servers at once; a burst beyond this is told to retry (503) rather than queued."""
    session_idle_timeout: Annotated[float, Field(gt=0)] = 1800.0
    """Seconds after its last request that an idle session is closed and its servers released."""


ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Signature algorithms a resource server can check with an issuer's public keys (JWKS)."""


def _loopback_url(url: str) -> bool:
    return is_loopback((urlsplit(url).hostname or "").lower())


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _scope_word(scope: str) -> str:
    if not scope or any(c.isspace() or c in '"\\' for c in scope):
        raise ValueError(f"scope {scope!r} must be a non-empty word without spaces, quotes or backslashes")
    return scope


class AuthConfig(_Model):
    """`[auth]`: the HTTP front as an OAuth 2.1 resource server (docs/oauth.md).

    JWT access tokens are checked against the issuer's keys; opaque ones go to Bastion's own
    tokens, then (if configured) to the issuer's introspection endpoint."""

    issuer: str
    """The authorization server's issuer identifier; a token's `iss` must equal it exactly."""
    resource: str | None = None
    """This gateway's MCP endpoint as clients reach it (RFC 9728 `resource`); default http://LISTEN/mcp."""
    audience: str | None = None
    """The `aud` a token must name (RFC 8707); default: `resource`."""
    jwks_url: str | None = None
    """Where the issuer's keys are; default: `jwks_uri` from its RFC 8414 or OpenID metadata, fetched once."""
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    """Signature algorithms accepted; never `none` or a shared-secret (HS*) one."""
    client_claim: str | None = None
    """The claim naming the Bastion client (`[clients.NAME]`); default: `client_id`, else `azp`, else `sub`."""
    scopes: dict[str, tuple[Capability, ...]] = Field(default_factory=dict)
    """Scope -> capabilities it carries, e.g. {"mcp:write" = ["write"]}; a token's capabilities are a
    ceiling on what the configuration grants its client, never more (a token with none is read-only)."""
    required_scopes: tuple[str, ...] = ()
    """Scopes every token must carry (else 403 `insufficient_scope`)."""
    leeway: Annotated[float, Field(ge=0, le=300)] = 30.0
    """Seconds of clock skew allowed for `exp`, `nbf` and `iat`."""
    jwks_max_age: Annotated[float, Field(ge=1, le=86400)] = 300.0
    """Seconds the fetched keys are used before they are fetched again."""
    jwks_cooldown: Annotated[float, Field(ge=0, le=3600)] = 10.0
    """Least seconds between two fetches of the keys (an unknown `kid` triggers one, rate-limited so)."""
    timeout: Annotated[float, Field(gt=0, le=60)] = 5.0
    """Seconds to wait for the issuer (metadata, keys, introspection)."""
    introspection_url: str | None = None
    """RFC 7662 endpoint for opaque tokens that are not Bastion's own."""
    introspection_client_id: str | None = None
    """The client id Bastion authenticates to the introspection endpoint with (HTTP Basic)."""
    introspection_secret_env: str | None = None
    """The environment variable holding that client's secret."""

    @field_validator("issuer", "resource", "audience", "jwks_url", "introspection_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(r"^https?://[^/?#\s]+", value) or not value.isascii() or any(c.isspace() for c in value):
            raise ValueError(f"{value!r} must be an absolute http(s) URL, in ASCII (IDNA for host names)")
        if "#" in value:
            raise ValueError(f"{value!r} must not have a fragment (#...)")
        if value.startswith("http://") and not _loopback_url(value):
            raise ValueError(f"{value!r} must use https:// (http:// is accepted for loopback addresses only)")
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        if not algorithms:
            raise ValueError(f"give at least one algorithm, e.g. {list(ASYMMETRIC_ALGORITHMS[:1])}")
        for algorithm in algorithms:
            if algorithm.lower() == "none":
                raise ValueError("`none` would accept unsigned tokens; list signature algorithms, e.g. RS256")
            if algorithm.upper().startswith("HS"):
                raise ValueError(
                    f"{algorithm} is a shared-secret algorithm: a resource server checks tokens with the "
                    "issuer's public keys; use RS256, ES256 or EdDSA"
                )
            if algorithm not in ASYMMETRIC_ALGORITHMS:
                raise ValueError(f"unknown algorithm {algorithm!r}; use some of {', '.join(ASYMMETRIC_ALGORITHMS)}")
        return algorithms

    @field_validator("scopes")
    @classmethod
    def _scope_names(cls, scopes: dict[str, tuple[Capability, ...]]) -> dict[str, tuple[Capability, ...]]:
        for scope in scopes:
            _scope_word(scope)
        return scopes

    @field_validator("required_scopes")
    @classmethod
    def _required_names(cls, scopes: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_scope_word(scope) for scope in scopes)

    @field_validator("client_claim")
    @classmethod
    def _claim(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("client_claim names a claim, e.g. client_id")
        return value

    @field_validator("introspection_secret_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _introspection_credentials(self) -> AuthConfig:
        given = (self.introspection_client_id is not None, self.introspection_secret_env is not None)
        if any(given) and not all(given):
            raise ValueError("give both `introspection_client_id` and `introspection_secret_env`, or neither")
        if any(given) and self.introspection_url is None:
            raise ValueError("introspection credentials need `introspection_url`")
        return self


class AuditConfig(_Model):
    store: str | None = None
    """Where the audit log lives: unset for the embedded SQLite file in BASTION_HOME, or
    `postgresql://…` to share one database between gateways (each keeps its own log)."""
    retention: Literal["none", "soc2", "hipaa"] | Annotated[int, Field(ge=1)] = "none"
    """How long payloads (arguments, results) are kept: `soc2` one year, `hipaa` six years
    (2190 days), or a number of days; entries themselves are never pruned (docs/compliance.md)."""

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise ValueError("store must be sqlite:PATH or postgresql://…")
        return value


class ClientConfig(_Model):
    """What one client identity (an HTTP front token's client name, or `local` on stdio) may do."""

    servers: tuple[str, ...] | None = None
    """Only these servers are visible to the client (unset: every server)."""
    grants: dict[str, tuple[Capability, ...]] = Field(default_factory=dict)
    """Capabilities this client has on a server beyond that server's own grants, e.g. {files = ["write"]}."""
    deny_tools: tuple[str, ...] = ()
    """Tools (`server.tool`) hidden from this client."""
    rate: str | None = None
    """Calls per minute (or second, hour, day) for this client across all servers."""

    @field_validator("rate")
    @classmethod
    def _rate_shape(cls, value: str | None) -> str | None:
        return _rate(value)


class CheckConfig(_Model):
    """A silence check (`[watch.checks.NAME]`): an agent or job that should ping on a cadence."""

    period: Annotated[float, Field(gt=0)] | None = None
    cron: str | None = None
    tz: str = "UTC"
    grace: Annotated[float, Field(ge=0)] = 60.0
    server: str | None = None
    """Pinged by every call to this server (besides explicit heartbeats to /hb/NAME)."""

    @model_validator(mode="after")
    def _one_schedule(self) -> CheckConfig:
        if self.period is not None and self.cron is not None:
            raise ValueError("give `period` or `cron`, not both (neither: the cadence is learned from the pings)")
        return self


SinkKind = Literal["webhook", "slack", "email", "pagerduty", "command"]


class SinkConfig(_Model):
    """Where alerts go (`[[watch.sinks]]`)."""

    kind: SinkKind
    channel: Literal["primary", "secondary"] = "primary"
    url: str | None = None
    """webhook, slack: where to POST; pagerduty: the Events v2 endpoint (default PagerDuty's)."""
    template: dict[str, Any] | None = None
    """webhook: the JSON body, with $key, $summary, $severity, $kind, $state, $server, $at substituted in strings."""
    routing_key_env: str | None = None
    """pagerduty: the environment variable holding the integration's routing key."""
    smtp: str | None = None
    """email: HOST:PORT of the SMTP server."""
    sender: str | None = None
    to: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    """command: argv run with ALERT_KEY, ALERT_SUMMARY, ALERT_SEVERITY, ALERT_KIND in its environment."""

    @model_validator(mode="after")
    def _complete(self) -> SinkConfig:
        needs = {
            "webhook": ("url",),
            "slack": ("url",),
            "email": ("smtp", "sender", "to"),
            "pagerduty": ("routing_key_env",),
            "command": ("command",),
        }[self.kind]
        missing = [name for name in needs if not getattr(self, name)]
        if missing:
            raise ValueError(f"a {self.kind} sink needs {', '.join(missing)}")
        if self.url is not None and not re.match(r"^https?://", self.url):
            raise ValueError(f"{self.url!r} must start with http:// or https://")
        return self


class WatchConfig(_Model):
    """Detectors, silence checks, alert lifecycle and sinks (`[watch]`; docs/watch.md)."""

    enabled: bool = True
    learn_until: str | None = None
    """ISO 8601 moment until which first uses are learned silently (a new deployment stays quiet)."""
    expected: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Tools expected per server: their first use never alerts."""
    volume_window: Annotated[float, Field(ge=10, le=86400)] = 300.0
    volume_min_calls: Annotated[int, Field(ge=1)] = 20
    error_window: Annotated[int, Field(ge=2, le=10000)] = 20
    error_threshold: Annotated[int, Field(ge=1, le=10000)] = 5
    remind_every: Annotated[float, Field(gt=0)] | None = 3600.0
    escalate_after: Annotated[float, Field(gt=0)] | None = 1800.0
    heartbeat_url: str | None = None
    """An external dead-man's switch Bastion itself pings, so a gateway that stops is noticed."""
    heartbeat_every: Annotated[float, Field(ge=5, le=86400)] = 60.0
    checks: dict[str, CheckConfig] = Field(default_factory=dict)
    sinks: tuple[SinkConfig, ...] = ()
    maintenance: tuple[tuple[str, str], ...] = ()
    """Windows (ISO 8601 start, end) in which alerts are recorded but nobody is notified."""

    @field_validator("maintenance")
    @classmethod
    def _windows(cls, windows: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for start, end in windows:
            try:
                if datetime.fromisoformat(end) <= datetime.fromisoformat(start):
                    raise ValueError(f"maintenance window {start} .. {end} ends before it starts")
            except TypeError:
                raise ValueError("maintenance times need a time zone, e.g. 2026-12-01T02:00:00+00:00") from None
        return windows

    @field_validator("learn_until")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO 8601 time, e.g. 2026-12-01T00:00:00+00:00") from None
        return value


ApprovalChannel = Literal["cli", "dashboard", "webhook", "elicitation"]


class ApprovalConfig(_Model):
    """How calls that need a person are asked about (`[approvals]`)."""

    timeout: Annotated[float, Field(gt=0, le=86400)] = 120.0
    """Seconds to wait; then the call is refused."""
    channels: tuple[ApprovalChannel, ...] = ("cli", "dashboard")
    webhook_url: str | None = None
    """Where to POST a Slack-compatible message with signed approve and deny links."""
    public_url: str | None = None
    """The dashboard's address as approvers reach it, for the webhook's links (e.g. https://bastion.example:8765)."""
    link_ttl: Annotated[float, Field(gt=0, le=86400)] = 900.0
    elicitation_for_destructive: bool = False
    """Let the client's own user approve destructive tools by elicitation (off: that is a weak assurance)."""

    @model_validator(mode="after")
    def _webhook_needs_urls(self) -> ApprovalConfig:
        if "webhook" in self.channels and (not self.webhook_url or not self.public_url):
            raise ValueError("the webhook channel needs `webhook_url` and `public_url` (where its links lead)")
        for url in (self.webhook_url, self.public_url):
            if url is not None and not re.match(r"^https?://", url):
                raise ValueError(f"{url!r} must start with http:// or https://")
        return self


class DashboardConfig(_Model):
    payload_roles: tuple[Literal["admin", "approver", "auditor"], ...] = ("admin",)
    """Dashboard roles that see decrypted arguments and results (auditors see commitments only by default)."""


class DnsConfig(_Model):
    """`[dns]`: how URL hosts are resolved for the SSRF check (the I/O edge of policy)."""

    nameservers: tuple[str, ...] = ()
    """DNS servers to ask, as `ADDRESS` or `ADDRESS:PORT` (`[ADDRESS]:PORT` for IPv6); empty: the system resolver.
    A host that does not resolve is refused (`urls.unresolvable`): on a host without DNS, URL arguments
    naming hosts are refused, and literal public addresses still pass."""
    timeout: Annotated[float, Field(gt=0, le=30)] = 2.0
    """Seconds to wait for an answer, per lookup."""

    @field_validator("nameservers")
    @classmethod
    def _addresses(cls, servers: tuple[str, ...]) -> tuple[str, ...]:
        for server in servers:
            host, _port = split_nameserver(server)
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(f"nameserver {server!r} must be an IP address, optionally with :PORT") from None
        return servers


def split_nameserver(text: str) -> tuple[str, int]:
    """`1.1.1.1`, `127.0.0.1:5353`, `[::1]:53` or `::1` as (address, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else 53
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port) if port.isdigit() else 53
    return text, 53


class BastionConfig(_Model):
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    dns: DnsConfig = Field(default_factory=DnsConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    approvals: ApprovalConfig = Field(default_factory=ApprovalConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    auth: AuthConfig | None = None
    """`[auth]`: OAuth 2.1 access tokens at the HTTP front, beside Bastion's own tokens."""
    servers: dict[str, ServerConfig] = Field(default_factory=dict)
    clients: dict[str, ClientConfig] = Field(default_factory=dict)

    @field_validator("servers")
    @classmethod
    def _server_names(cls, servers: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        for name in servers:
            if not SERVER_NAME.match(name):
                raise ValueError(
                    f"server name {name!r} must be 1-64 letters, digits, '-' or '_' and start with a letter or digit"
                )
        return servers

    @model_validator(mode="after")
    def _clients_name_servers(self) -> BastionConfig:
        for client, rules in self.clients.items():
            named = [*(rules.servers or ()), *rules.grants, *(t.split(".", 1)[0] for t in rules.deny_tools)]
            unknown = sorted({name for name in named if name not in self.servers})
            if unknown:
                raise ValueError(f"clients.{client} names servers that are not configured: {', '.join(unknown)}")
            if any("." not in tool for tool in rules.deny_tools):
                raise ValueError(f"clients.{client}.deny_tools entries must be written server.tool")
        return self

    def enabled_servers(self) -> dict[str, ServerConfig]:
        return {name: server for name, server in self.servers.items() if server.enabled}

"""Bastion's one error tree: every error it raises on purpose, and where the rest go.

    BastionError
    ├── ConfigError            invalid bastion.toml or flags (file, line, field, fix)
    ├── ClientConfigError      an MCP client's config file that cannot be read or rewritten
    ├── TransportError         a connection to a peer failed (only its subclasses are raised)
    │   ├── ServerUnavailable  a configured server is down, crashed or did not start
    │   ├── GatewayFull        no room for another session or call now (HTTP 503 with Retry-After)
    │   ├── ListenError        the HTTP address to serve on cannot be bound
    │   ├── NoServerStarted    a stdio gateway whose every server failed its first start
    │   └── IssuerUnavailable  an OAuth issuer's metadata, keys or introspection failed  (identity/oauth_io.py)
    ├── StoreError             the state store cannot be opened, read or written
    ├── AuditIntegrityError    the audit log does not verify (tampered, truncated, rolled back)
    ├── SandboxError           a server cannot be sandboxed as configured (no working bwrap …)
    ├── SecretError            a server's secret is missing, revoked or does not decrypt
    ├── PinError               bastion.lock cannot be read or written, or is not a lock file
    ├── PackageLookupError     a package registry lookup failed or went unanswered  (inventory/packages.py)
    └── RenderError            Chromium ran but did not print an evidence pack  (compliance/render.py)

The three marked with a module are defined beside the only code that raises them; the rest are
defined here. Exceptions carry fields; the CLI turns them into exit codes in one place (2 for the
two config errors, 1 for the others) and the proxy turns them into JSON-RPC errors in one place.

Outside the tree on purpose: the pure cores that check untrusted bytes raise `ValueError`
subclasses (`CheckpointError`, `ProofError`, `BundleError` in audit/, `PeriodError` and
`AttestError` in compliance/, `InvalidCursor` in proxy/), which their callers catch and turn
into a verification report, a refusal, or one of the errors above. A malformed JSON-RPC frame
is a value (`FrameError`), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AuditIntegrityError",
    "BastionError",
    "ClientConfigError",
    "ConfigError",
    "ConfigProblem",
    "GatewayFull",
    "ListenError",
    "NoServerStarted",
    "PinError",
    "SandboxError",
    "SecretError",
    "ServerUnavailable",
    "StoreError",
    "TransportError",
]


class BastionError(Exception):
    """Base of every error Bastion raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a config: where it is and what to write instead."""

    location: str
    message: str
    fix: str = ""
    line: int | None = None

    def render(self, path: Path | None) -> str:
        where = f"{path}" if path else "<flags>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: {self.location}: {self.message}"
        return f"{text}\n  fix: {self.fix}" if self.fix else text


class ConfigError(BastionError):
    """The configuration is invalid; nothing was started."""

    def __init__(self, path: Path | None, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(p.render(path) for p in problems))


class ClientConfigError(BastionError):
    """An MCP client's configuration file could not be read, understood or rewritten."""

    def __init__(self, path: Path, message: str, fix: str = "") -> None:
        self.path = path
        self.message = message
        self.fix = fix
        super().__init__(f"{path}: {message}" + (f"\n  fix: {fix}" if fix else ""))


class TransportError(BastionError):
    """A connection to a peer failed."""


class ServerUnavailable(TransportError):
    """A configured server cannot take requests right now."""

    def __init__(self, server: str, reason: str) -> None:
        self.server = server
        self.reason = reason
        super().__init__(f"server {server!r} is unavailable: {reason}")


class GatewayFull(TransportError):
    """A bound was reached (a server's pool, one client's sessions on its process): try again later.

    The HTTP front answers it with 503 and `Retry-After: retry_after`, never by holding the request.
    """

    def __init__(self, server: str, limit: str, retry_after: int) -> None:
        self.server = server
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(f"server {server!r} is at its limit ({limit}); retry after {retry_after}s")


class ListenError(TransportError):
    """The address `serve` or `dashboard` was asked to listen on cannot be bound."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(
            f"cannot listen on {host}:{port}: {reason} (another process may hold the port: "
            "stop it, or give another with --listen HOST:PORT)"
        )


class NoServerStarted(TransportError):
    """Not one of a gateway's servers started: there is nothing to serve (the client got the reasons)."""

    def __init__(self, reasons: dict[str, str]) -> None:
        self.reasons = reasons
        super().__init__("no server could be started: " + "; ".join(f"{k}: {v}" for k, v in reasons.items()))


class StoreError(BastionError):
    """The state store could not be opened, read or written."""


class AuditIntegrityError(BastionError):
    """Security state that does not verify: Bastion stops rather than resetting it."""

    def __init__(self, log_id: str, index: int | None, detail: str) -> None:
        self.log_id = log_id
        self.index = index
        self.detail = detail
        where = f"audit log {log_id}" + (f" at index {index}" if index is not None else "")
        super().__init__(f"{where}: {detail}")


class SandboxError(BastionError):
    """A server cannot be started inside the sandbox it is configured for; it is not started at all."""

    def __init__(self, server: str, detail: str, fix: str = "") -> None:
        self.server = server
        self.detail = detail
        self.fix = fix
        super().__init__(f"server {server!r}: {detail}" + (f"\n  fix: {fix}" if fix else ""))


class SecretError(BastionError):
    """A server's secret is missing, revoked, or cannot be decrypted; the server is not started."""

    def __init__(self, server: str, name: str, detail: str, fix: str = "") -> None:
        self.server = server
        self.name = name
        self.detail = detail
        self.fix = fix
        super().__init__(f"secret {name!r} of server {server!r}: {detail}" + (f"\n  fix: {fix}" if fix else ""))


class PinError(BastionError):
    """bastion.lock cannot be read or written, or does not match what a server offers."""

    def __init__(self, path: Path, detail: str, fix: str = "") -> None:
        self.path = path
        self.detail = detail
        self.fix = fix
        super().__init__(f"{path}: {detail}" + (f"\n  fix: {fix}" if fix else ""))

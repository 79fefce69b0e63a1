"""Everything that happens before a stdio server's process starts: its environment (the
allowlist, what config passes through, and this server's own secrets, nothing else), its
sandbox, and the facts every audit entry about it then carries (identity, credential
versions, how it is confined).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bastion.config.model import ServerConfig
from bastion.errors import SandboxError, SecretError, ServerUnavailable
from bastion.sandbox.launcher import sandboxed_launch
from bastion.sandbox.spec import Limits
from bastion.transport.stdio_back import Launch, plain_launch, server_environment

__all__ = ["Launcher", "Secrets", "ServerFacts"]

logger = logging.getLogger(__name__)

Secrets = Callable[[str], tuple[dict[str, str], dict[str, int]]]
"""A server's secrets as (environment variables, their credential versions); raises SecretError."""


class ServerFacts:
    """What every audit entry about a server states besides its name: identity, credential
    versions, sandbox. Filled in at each launch, read by the audit stage."""

    def __init__(self, identities: Mapping[str, str] | None = None) -> None:
        self._facts: dict[str, dict[str, Any]] = {name: {"id": ident} for name, ident in (identities or {}).items()}

    def of(self, server: str) -> dict[str, Any]:
        return self._facts.get(server, {})

    def launched(self, server: str, credentials: Mapping[str, int], sandbox: str) -> None:
        facts = self._facts.setdefault(server, {})
        facts["sandbox"] = sandbox
        if credentials:
            facts["credentials"] = dict(credentials)
        else:
            facts.pop("credentials", None)


def no_secrets(_server: str) -> tuple[dict[str, str], dict[str, int]]:
    return {}, {}


class Launcher:
    """The gateway's way to start a stdio server (a `Prepare` for the connector)."""

    def __init__(
        self,
        environ: Mapping[str, str],
        facts: ServerFacts,
        secrets: Secrets = no_secrets,
    ) -> None:
        self._environ = environ
        self._facts = facts
        self._secrets = secrets

    async def __call__(self, name: str, server: ServerConfig) -> Launch:
        try:
            values, versions = self._secrets(name)
            env = {**server_environment(server, self._environ), **values}
            if server.sandbox == "off":
                launch = plain_launch(server, env)
            else:
                limits = Limits(**server.limits.model_dump())
                launch = await sandboxed_launch(name, server, env, limits=limits, home=self._environ.get("HOME"))
        except (SandboxError, SecretError) as exc:
            # Not started at all: the supervisor reports why and tries again with backoff.
            raise ServerUnavailable(name, f"not started: {exc.detail}" + (f" ({exc.fix})" if exc.fix else "")) from exc
        self._facts.launched(name, versions, launch.sandbox)
        return launch

"""Everything that happens before a stdio server's process starts: its environment (the
allowlist, what config passes through, and this server's own secrets, nothing else), its
sandbox, and the facts every audit entry about it then carries (identity, credential
versions, how it is confined).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from bastion.config.model import ServerConfig
from bastion.errors import SandboxError, SecretError, ServerUnavailable
from bastion.identity.secrets import SecretStore
from bastion.sandbox.launcher import PidsCgroup, sandboxed_launch
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


def secrets_of(store: SecretStore) -> Secrets:
    """A server's secrets from the encrypted store, read at each launch (so a rotation takes effect on restart)."""

    def read(server: str) -> tuple[dict[str, str], dict[str, int]]:
        return store.environment(server), store.versions(server)

    return read


Finding = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Where sandbox findings go (the audit log): (server, fields)."""


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
        self._cgroups: dict[str, tuple[PidsCgroup, int]] = {}

    async def watch(self, report: Finding, period: float = 2.0) -> None:
        """Report each time a server's process tree runs into its process limit (a fork bomb, or a leak)."""
        while True:
            await anyio.sleep(period)
            for server, (cgroup, seen) in list(self._cgroups.items()):
                hits = cgroup.limit_hits()
                if hits > seen:
                    self._cgroups[server] = (cgroup, hits)
                    logger.warning("server %s hit its process limit (%d refused forks)", server, hits)
                    await report(server, {"finding": "process limit reached", "refused_forks": hits})

    async def __call__(self, name: str, server: ServerConfig) -> Launch:
        try:
            values, versions = self._secrets(name)
            env = {**server_environment(server, self._environ), **values}
            if server.sandbox == "off":
                launch = plain_launch(server, env)
            else:
                limits = Limits(**server.limits.model_dump())
                launch = await sandboxed_launch(name, server, env, limits=limits, host=self._environ)
        except (SandboxError, SecretError) as exc:
            # Not started at all: the supervisor reports why and tries again with backoff.
            raise ServerUnavailable(name, f"not started: {exc.detail}" + (f" ({exc.fix})" if exc.fix else "")) from exc
        self._facts.launched(name, versions, launch.sandbox)
        if launch.cgroup is not None:
            self._cgroups[name] = (PidsCgroup(launch.cgroup), 0)
        return launch

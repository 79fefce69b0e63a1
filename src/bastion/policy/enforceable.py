"""What this release can enforce: a gateway refuses to start on settings it would silently ignore."""

from __future__ import annotations

from bastion.config.model import BastionConfig, ServerConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.policy.lint import lint

__all__ = ["check_enforceable"]


def check_enforceable(config: BastionConfig) -> None:
    """Refuse settings this release cannot enforce yet, rather than silently ignoring them."""
    problems = [
        ConfigProblem(finding.where, finding.message, finding.fix)
        for finding in lint(config)
        if finding.severity == "error"
    ]
    for name, server in config.enabled_servers().items():
        problems += _unenforceable(name, server)
    if problems:
        raise ConfigError(None, problems)


def _unenforceable(name: str, server: ServerConfig) -> list[ConfigProblem]:
    found: list[ConfigProblem] = []
    if server.transport == "http" and server.protocol == "2026-07-28":
        found.append(
            ConfigProblem(
                f"servers.{name}.protocol", "2026-07-28 to a remote server is not supported yet", 'use "auto"'
            )
        )
    return found

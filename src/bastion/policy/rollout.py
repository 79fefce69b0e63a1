"""Rolling a policy out by watching before blocking: which servers only monitor, the candidate
policy decided beside the live one, and promoting it (docs/operations.md, "Monitor mode and rollout").

Monitor mode skips applying policy refusals (tool and call level, rate limits, no approval
channel), approval waits and screening blocks; it never turns off the audit log, the sandbox,
pins, authentication or a kill switch. A candidate is a bastion.toml-shaped file: only its
policy (`[servers.*]` rules and `[clients.*]`) is used, and it must load and lint cleanly or the
gateway does not start.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bastion.config.load import load_config
from bastion.config.model import BastionConfig, ScreenConfig, ServerConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.files import current_mode, replace_atomically
from bastion.policy.lint import lint

__all__ = [
    "candidate_file",
    "load_candidate",
    "monitored",
    "screen_as_monitored",
    "with_candidate",
    "write_promoted",
]


def monitored(config: BastionConfig) -> frozenset[str]:
    """The enabled servers whose refusals are recorded, not applied."""
    default = config.policy.mode
    return frozenset(name for name, server in config.enabled_servers().items() if (server.mode or default) == "monitor")


def with_candidate(config: BastionConfig, config_path: Path, option: Path | None) -> BastionConfig:
    """The config with its candidate as an absolute path: `--candidate` wins over `[policy] candidate`,
    which is read relative to the config file's directory."""
    named = option if option is not None else (Path(config.policy.candidate) if config.policy.candidate else None)
    if named is None:
        return config
    if option is None and not named.is_absolute():
        named = config_path.parent / named
    policy = config.policy.model_copy(update={"candidate": str(named.absolute())})
    return config.model_copy(update={"policy": policy})


def candidate_file(config: BastionConfig) -> Path | None:
    return Path(config.policy.candidate) if config.policy.candidate else None


def load_candidate(path: Path) -> BastionConfig:
    """The candidate's config, validated like bastion.toml (file, line and fix) and linted: an error
    stops the gateway rather than leaving a candidate silently unevaluated."""
    if not path.is_file():
        fix = "give the path of a bastion.toml-shaped file with the policy to try, or remove [policy] candidate"
        raise ConfigError(None, [ConfigProblem("policy.candidate", f"{path} is not a file", fix)])
    loaded = load_config(path)
    errors = [
        ConfigProblem(finding.where, finding.message, finding.fix)
        for finding in lint(loaded)
        if finding.severity == "error"
    ]
    if errors:
        raise ConfigError(path, errors)
    return loaded


def screen_as_monitored(servers: Mapping[str, ServerConfig], monitor: frozenset[str]) -> dict[str, ServerConfig]:
    """The servers as screening sees them: on a monitored server `block` becomes `flag` (the finding is
    recorded, nothing is dropped); `strip` still rewrites what it removes."""
    screened: dict[str, ServerConfig] = {}
    for name, server in servers.items():
        screened[name] = server
        if name in monitor:
            screen = server.screen
            update = {
                field: "flag"
                for field in ("listing", "injections", "exfiltration", "secrets")
                if getattr(screen, field) == "block"
            }
            flagged = ScreenConfig.model_validate({**screen.model_dump(), **update})
            screened[name] = server.model_copy(update={"screen": flagged})
    return screened


def write_promoted(config_path: Path, text: str) -> Path:
    """Replace the config file with the candidate's text, atomically (a temporary file beside it,
    fsynced, renamed over it); the file it replaces is kept as `NAME.previous`."""
    previous = config_path.with_name(config_path.name + ".previous")
    mode = current_mode(config_path, 0o600)
    if config_path.exists():
        previous.write_bytes(config_path.read_bytes())
    replace_atomically(config_path, text.encode("utf-8"), mode=mode)
    return previous

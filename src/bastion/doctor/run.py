"""`diagnose`: every probe, in order, judged by its check; the one place the doctor's parts meet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bastion.config.load import load_config
from bastion.config.model import BastionConfig
from bastion.doctor.checks import (
    Check,
    StoreFacts,
    chromium_check,
    clock_checks,
    config_checks,
    exit_code,
    home_check,
    key_checks,
    needs_sandbox,
    sandbox_checks,
    server_check,
    sink_check,
    store_check,
)
from bastion.doctor.probes import (
    probe_chromium,
    probe_clock,
    probe_home,
    probe_keys,
    probe_postgres,
    probe_sandbox,
    probe_server,
    probe_sink,
    probe_sqlite,
)
from bastion.errors import ConfigError
from bastion.store.home import bastion_home

__all__ = ["AUDIT_STORE_ENV", "Diagnosis", "diagnose"]

AUDIT_STORE_ENV = "BASTION_AUDIT_STORE"
"""The store `bastion status` and `bastion dashboard` read when no config names one."""
DEFAULT_CONFIG = Path("bastion.toml")


@dataclass(frozen=True, slots=True)
class Diagnosis:
    home: str
    config: str | None
    """The config file read; None when there is none (the defaults)."""
    checks: tuple[Check, ...]

    @property
    def exit_code(self) -> int:
        return exit_code(list(self.checks))


def diagnose(config_path: Path | None, environ: Mapping[str, str]) -> Diagnosis:
    """Check this host against what the config needs. `config_path` None: `./bastion.toml` if there is one."""
    path = config_path if config_path is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    config: BastionConfig | None = None
    error: ConfigError | None = None
    if path is not None:
        try:
            config = load_config(path)
        except ConfigError as exc:
            error = exc
    settings = config or BastionConfig()
    home = bastion_home(environ)
    checks = config_checks(str(path) if path else None, config, error)
    checks.append(home_check(probe_home(home)))

    store = settings.audit.store or environ.get(AUDIT_STORE_ENV)
    postgres = bool(store and store.startswith(("postgresql://", "postgres://")))
    sqlite = None if postgres else _sqlite_path(home, store)
    checks += key_checks(probe_keys(home, environ, sqlite))

    checks += sandbox_checks(probe_sandbox(environ), needed=needs_sandbox(settings))
    for name, server in settings.enabled_servers().items():
        checks.append(server_check(probe_server(name, server, environ)))

    server_time: float | None = None
    if store is not None and postgres:
        found = probe_postgres(store)
        server_time = found.server_time
        checks.append(store_check(found))
    elif store is not None:
        checks.append(store_check(probe_sqlite(sqlite or home / "audit.db")))
    else:  # in the state directory, whose check above says whether it can be written
        checks.append(store_check(StoreFacts("sqlite", str(home / "audit.db"))))
    checks.append(chromium_check(probe_chromium(environ)))
    checks += clock_checks(probe_clock(server_time))
    for number, sink in enumerate(settings.watch.sinks, 1):
        checks.append(sink_check(probe_sink(number, sink, environ)))
    return Diagnosis(str(home), str(path) if path else None, tuple(checks))


def _sqlite_path(home: Path, store: str | None) -> Path:
    """The audit log's SQLite file, read the way the audit service opens it."""
    if store and store.startswith("sqlite:"):
        return Path(store.removeprefix("sqlite:").removeprefix("//")).expanduser()
    return home / "audit.db"

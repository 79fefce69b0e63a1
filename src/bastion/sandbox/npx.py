"""What `npx` would run, found outside the sandbox.

`npx -y PKG@1.2.3 ARGS` cannot work inside the sandbox: npm takes a lock in its cache, writes
logs, and asks the registry for the package, and the sandbox has neither a writable home nor a
network. So Bastion does npx's part before the launch, outside the sandbox and as the user:

1. `npx_request` reads the argv the way npx does: the packages (`-p`/`--package`, else the first
   positional), the bin to run, and the arguments after it (pure).
2. `npx_directory` is the directory npx itself installs those packages into: npm's cache,
   `_npx/` and the first 16 hex digits of the SHA-512 of the sorted specs (npm's libnpmexec).
3. `resolve_npx` installs the packages there when they are missing, with npm's own client and
   `--ignore-scripts` (no code of the package runs outside the sandbox), and returns the bin's
   path in that tree. The sandbox then runs the bin directly and sees only that tree, read-only,
   instead of the whole npm cache.

A package whose install scripts matter does not work this way: install it yourself
(`npm install --prefix DIR PKG`) and give the bin's absolute path as the command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import SandboxError

__all__ = ["NpxRequest", "npm_cache", "npx_directory", "npx_request", "resolve_npx"]

_FLAGS = frozenset({"-y", "--yes", "-q", "--quiet", "--no", "--prefer-offline", "--prefer-online", "--offline"})
_NOT_REGISTRY = ("git+", "git:", "github:", "gitlab:", "bitbucket:", "gist:", "file:", "http:", "https:")
INSTALL_TIMEOUT = 300.0
FIX_ABSOLUTE = "install the package yourself (`npm install --prefix DIR PKG`) and give its bin's absolute path"


@dataclass(frozen=True, slots=True)
class NpxRequest:
    packages: tuple[str, ...]
    """The package specs npx installs, as written."""
    bin: str | None
    """The executable asked for, or None: the package's own bin (its only one, or its unscoped name)."""
    args: tuple[str, ...]


def npx_request(argv: Sequence[str]) -> NpxRequest | None:
    """The packages, bin and arguments of an `npx …`, `npm exec …` or `npm x …` argv; None for any other command."""
    program = os.path.basename(argv[0]) if argv else ""
    if program == "npx":
        start = 1
    elif program == "npm" and argv[1:2] in (["exec"], ["x"]):
        start = 2
    else:
        return None
    packages: list[str] = []
    i = start
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if arg in ("-p", "--package"):
            if i + 1 >= len(argv):
                raise SandboxError("*", f"npx: {arg} needs a package", "write it as `npx -y PKG@VERSION ARGS`")
            packages.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith("--package="):
            packages.append(arg.split("=", 1)[1])
        elif not arg.startswith("-"):
            break
        elif arg not in _FLAGS:
            raise SandboxError(
                "*", f"npx option {arg!r} cannot be run inside the sandbox", "write it as `npx -y PKG@VERSION ARGS`"
            )
        i += 1
    if i >= len(argv):
        raise SandboxError("*", "npx without a package to run", "write it as `npx -y PKG@VERSION ARGS`")
    if packages:
        return NpxRequest(tuple(packages), argv[i], tuple(argv[i + 1 :]))
    return NpxRequest((argv[i],), None, tuple(argv[i + 1 :]))


def npx_directory(cache: str, packages: Sequence[str]) -> Path:
    """Where npx installs these packages: `CACHE/_npx/` and a hash of the sorted specs, as npm computes it."""
    joined = "\n".join(sorted(packages, key=str.casefold))
    return Path(cache, "_npx", hashlib.sha512(joined.encode()).hexdigest()[:16])


def _package_name(spec: str) -> str:
    at = spec.find("@", 1)
    return spec if at < 0 else spec[:at]


def _bin_of(tree: Path, spec: str) -> str:
    """The executable npx runs for a package: its only bin, or the bin named like the unscoped package."""
    name = _package_name(spec)
    try:
        manifest = json.loads((tree / "node_modules" / name / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SandboxError("*", f"npx: package {name!r} is not installed in {tree}", FIX_ABSOLUTE) from exc
    bins = manifest.get("bin") or {}
    if isinstance(bins, str):
        return name.rsplit("/", 1)[-1]
    if isinstance(bins, dict) and len(set(bins.values())) == 1:
        return str(next(iter(bins)))
    unscoped = name.rsplit("/", 1)[-1]
    if isinstance(bins, dict) and unscoped in bins:
        return unscoped
    raise SandboxError("*", f"npx: cannot tell which executable of {name!r} to run", "name it: `npx -p PKG BIN ARGS`")


def npm_cache(env: Mapping[str, str]) -> str:
    """npm's cache directory: `npm_config_cache` where set, else `~/.npm` (npm's default)."""
    for name in ("npm_config_cache", "NPM_CONFIG_CACHE"):
        if env.get(name):
            return env[name]
    home = env.get("HOME")
    if not home:
        raise SandboxError("*", "npx: no HOME, so npm's cache cannot be found", "set HOME, or npm_config_cache")
    return os.path.join(home, ".npm")


def resolve_npx(request: NpxRequest, env: Mapping[str, str]) -> list[str]:
    """The argv that runs what npx would run: the bin in npx's own install tree, installed first
    if missing (outside the sandbox, as the user with `env`, scripts off). Blocks; run it in a
    worker thread."""
    for spec in request.packages:
        if spec.startswith(_NOT_REGISTRY) or spec.startswith((".", "/", "~")):
            raise SandboxError("*", f"npx: {spec!r} is not a registry package", FIX_ABSOLUTE)
    cache = npm_cache(env)
    tree = npx_directory(cache, request.packages)
    if not all((tree / "node_modules" / _package_name(p) / "package.json").is_file() for p in request.packages):
        _install(request.packages, env, cache)
    name = request.bin or _bin_of(tree, request.packages[0])
    executable = tree / "node_modules" / ".bin" / name
    if not executable.exists():
        raise SandboxError("*", f"npx: no executable {name!r} in {tree / 'node_modules' / '.bin'}", FIX_ABSOLUTE)
    return [str(executable), *request.args]


def _install(packages: Sequence[str], env: Mapping[str, str], cache: str) -> None:
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm is None:
        raise SandboxError(
            "*", "npx: npm is not on PATH", "install Node.js and npm, or give the server's absolute path"
        )
    argv = [npm, "exec", "--yes", "--ignore-scripts", "--cache", cache]
    argv += [f"--package={spec}" for spec in packages]
    argv += ["--", "node", "-e", ""]
    # An empty working directory, so that npm installs into its npx cache rather than using a
    # project's node_modules it happens to find.
    with tempfile.TemporaryDirectory(prefix="bastion-npx-") as empty:
        try:
            done = subprocess.run(
                argv, cwd=empty, env=dict(env), capture_output=True, timeout=INSTALL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise SandboxError(
                "*", f"npx: installing {' '.join(packages)} took longer than {INSTALL_TIMEOUT:.0f}s", FIX_ABSOLUTE
            ) from exc
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        last = lines[-1] if lines else f"npm exited with {done.returncode}"
        raise SandboxError(
            "*", f"npx: installing {' '.join(packages)} failed: {last}", "check the package name and the registry"
        )

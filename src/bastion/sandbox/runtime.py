"""What a server's command really runs, and what its runtime needs to see: found outside the
sandbox, before launch.

A command as a user's config writes it is often not the program that runs. `python3` on a
machine with pyenv, asdf or mise is a shim script that execs the version manager, and volta's
`node` is a shim binary; inside the sandbox the manager is not there, and the server would exit
127. So `resolve_runtime` asks the interpreter itself, through the shim, where it really is
(`sys.executable`, `process.execPath`) and the sandbox then runs that interpreter directly, with
the script a `#!` line named, seeing only that runtime (read-only), never the manager's root.
A shim that cannot be resolved stops the start with an error naming it and the fix.

`runtime_paths` lists what the resolved runtime needs mounted: the interpreter's prefixes and
`sys.path` (a venv, editable installs), the script's package (`node_modules` tree).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson

from bastion.errors import SandboxError
from bastion.sandbox.spec import SYSTEM_DIRS

__all__ = ["executable", "resolve_runtime", "runtime_paths"]

_PYTHON_PATHS = (
    "import sys, json; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]))"
)
_NODE_EXEC_PATH = "process.execPath"
_SHIM_DIR = re.compile(r"/(?:shims|\.volta/bin|\.asdf/shims|mise/shims|\.proto/shims|\.rtx/shims)(?:/|$)")
QUERY_TIMEOUT = 30


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


def resolve_runtime(name: str, command: str, args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """The argv to run in the sandbox: a Python or Node interpreter (named, or on a `#!` line) replaced
    by the real one it reports, so no version manager's shim has to run inside."""
    interpreter, script = _interpreter(command, list(args))
    kind = _runtime_kind(interpreter)
    if kind is None:
        if _is_shim(command):
            raise _unresolved(name, command, "it is not a Python or Node interpreter Bastion can ask")
        return [command, *args]
    real = _python_query(interpreter, env)[0] if kind == "python" else _node_exec_path(interpreter, env)
    if not real or not os.path.isfile(real):
        if _is_shim(interpreter):
            raise _unresolved(name, interpreter, "asking it for its real interpreter failed")
        return [command, *args]
    if script is not None and interpreter != command:
        return [real, command, *args]  # a `#!` script, now run by its real interpreter
    return [real, *args]


def _unresolved(name: str, shim: str, why: str) -> SandboxError:
    return SandboxError(
        name,
        f"{shim!r} is a version manager's shim that cannot run inside the sandbox, and {why}",
        "give the real interpreter's absolute path as the command (e.g. the output of `pyenv which python3`, "
        "`asdf which node` or `mise which python`)",
    )


def _is_shim(path: str) -> bool:
    return bool(_SHIM_DIR.search(path))


def _runtime_kind(interpreter: str) -> str | None:
    base = os.path.basename(interpreter)
    real = os.path.basename(os.path.realpath(interpreter))
    if base.startswith("python") or real.startswith("python"):
        return "python"
    if base in ("node", "nodejs") or real in ("node", "nodejs"):
        return "node"
    return None


def runtime_paths(command: str, args: Sequence[str], env: Mapping[str, str], home: str | None) -> list[str]:
    """The directories the server's own runtime and package live in, to be mounted read-only."""
    real = os.path.realpath(command)
    paths = {os.path.dirname(command), os.path.dirname(real)}
    interpreter, script = _interpreter(command, list(args))
    # Ask a Python interpreter by the path it is invoked with: a venv is recognised by that path.
    if _runtime_kind(interpreter) == "python":
        paths.update(os.path.realpath(p) for p in _python_query(interpreter, env)[1:] if p)
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
    if _runtime_kind(command) is not None:
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


def _python_query(interpreter: str, env: Mapping[str, str]) -> list[str]:
    """A Python interpreter's real executable, then its prefixes and `sys.path` (venvs, editable installs)."""
    if interpreter not in _python_cache:
        found = _ask([interpreter, "-c", _PYTHON_PATHS], env)
        try:
            values = orjson.loads(found) if found else []
        except orjson.JSONDecodeError:
            values = []
        answer = [str(v) for v in values] if isinstance(values, list) else []
        _python_cache[interpreter] = answer
        if answer and answer[0]:
            # The real interpreter answers the same: `runtime_paths` asks it after a shim was resolved.
            _python_cache.setdefault(answer[0], answer)
    return _python_cache[interpreter] or [""]


def _node_exec_path(interpreter: str, env: Mapping[str, str]) -> str:
    return _ask([interpreter, "-p", _NODE_EXEC_PATH], env).strip()


def _ask(argv: list[str], env: Mapping[str, str]) -> str:
    try:
        done = subprocess.run(argv, env=dict(env), capture_output=True, timeout=QUERY_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.decode(errors="replace") if done.returncode == 0 else ""


def _package_root(path: str) -> str:
    """The outermost `node_modules` tree holding a file, else its directory."""
    parts = Path(path).parts
    if "node_modules" in parts:
        return str(Path(*parts[: parts.index("node_modules") + 1]))
    return os.path.dirname(path)


def _is_system(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS if os.path.isdir(d))

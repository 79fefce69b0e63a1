"""The sandbox plan as a command line: namespaces, dropped capabilities, grants, limits, and no
secret ever on the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bastion.config.model import ServerConfig
from bastion.sandbox.runtime import runtime_paths
from bastion.sandbox.spec import Limits, Mount, SandboxPlan, bwrap_argv


def plan(network: bool = False, mounts: tuple[Mount, ...] = ()) -> SandboxPlan:
    return SandboxPlan(
        ("server", "--flag"), mounts, network, "/srv/data", {"API_KEY": "sk-secret-value"}, Limits(512, 60, 64, 16)
    )


def test_every_namespace_is_new_and_every_capability_dropped() -> None:
    argv = bwrap_argv("/usr/bin/bwrap", "/usr/bin/prlimit", plan())
    assert argv[:6] == ["/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    assert "--share-net" not in argv
    assert "--share-net" in bwrap_argv("b", "p", plan(network=True))


def test_grants_become_binds_and_private_places_come_first() -> None:
    mounts = (Mount("ro", "/srv/data", "/srv/data"), Mount("rw", "/tmp/work", "/tmp/work"))
    argv = bwrap_argv("b", "p", plan(mounts=mounts))
    assert argv[argv.index("/srv/data") - 1] == "--ro-bind"
    # A writable grant below /tmp is mounted after the private tmpfs, or it would be hidden.
    assert argv.index("--bind") > argv.index("--tmpfs")


def test_limits_are_set_inside_and_the_server_runs_last() -> None:
    argv = bwrap_argv("b", "/usr/bin/prlimit", plan())
    inner = argv[argv.index("--", argv.index("--chdir")) + 1 :]
    assert inner == [
        "/usr/bin/prlimit",
        f"--as={512 * 1024 * 1024}",
        "--cpu=60",
        "--nofile=64",
        "--core=0",
        "--",
        "server",
        "--flag",
    ]


def test_no_secret_is_on_the_command_line() -> None:
    assert not any("sk-secret-value" in part for part in bwrap_argv("b", "p", plan()))


def test_a_python_server_sees_its_interpreter_and_packages_but_no_home() -> None:
    paths = runtime_paths(sys.executable, ["-m", "bastion.demo.server"], {"PATH": "/usr/bin:/bin"}, str(Path.home()))
    assert sys.prefix in paths
    assert str(Path.home()) not in paths
    assert not any(path in ("/", "/etc", "/usr") for path in paths)


def test_server_config_sandbox_is_on_by_default() -> None:
    assert ServerConfig(command="x").sandbox == "on"
    with pytest.raises(ValueError, match="sandbox"):
        ServerConfig(command="x", sandbox="maybe")  # pyright: ignore[reportArgumentType]

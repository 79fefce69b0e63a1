"""Launching inside bubblewrap: a working bwrap is found once, the command is wrapped with the server's
grants and a private home, a cwd the sandbox would not show is refused, and the process limit is read back."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from bastion.config.model import ServerConfig
from bastion.errors import SandboxError
from bastion.sandbox.launcher import SANDBOX_TMP, PidsCgroup, find_bwrap, sandboxed_launch
from bastion.sandbox.spec import Limits
from bastion.transport.stdio_back import Launch

pytestmark = pytest.mark.anyio

LIMITS = Limits(512, 60, 64, 16)
HOST = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent-home"}


@pytest.fixture
def granted(tmp_path: Path) -> tuple[Path, Path]:
    """A directory the server is granted (holding `note`), and one it is not (holding `secret`)."""
    shown, hidden = tmp_path / "shown", tmp_path / "hidden"
    shown.mkdir()
    hidden.mkdir()
    (shown / "note").write_text("granted\n", encoding="utf-8")
    (hidden / "secret").write_text("not for the server\n", encoding="utf-8")
    return shown, hidden


def test_a_working_bwrap_is_found_once_and_kept() -> None:
    bwrap = find_bwrap()
    assert os.access(bwrap.path, os.X_OK)
    assert bwrap.source in ("system", "bundled")
    assert find_bwrap() is bwrap


async def test_the_command_is_wrapped_with_a_private_home_and_its_grants(granted: tuple[Path, Path]) -> None:
    shown, _ = granted
    server = ServerConfig(command="/bin/sh", args=("-c", "true"), fs_read=(str(shown),))
    launch = await sandboxed_launch("srv", server, {"PATH": "/usr/bin:/bin"}, limits=LIMITS, host=HOST)
    try:
        assert find_bwrap().path in launch.argv
        assert launch.argv[-3:] == ["/bin/sh", "-c", "true"]
        assert (launch.env["HOME"], launch.env["TMPDIR"]) == (SANDBOX_TMP, SANDBOX_TMP)  # private inside
        assert launch.argv[launch.argv.index(str(shown)) - 1] == "--ro-bind"
        assert launch.argv[launch.argv.index("--chdir") + 1] == str(shown)  # the first grant, where paths resolve
        assert launch.sandbox.startswith("bwrap (")
    finally:
        launch.cleanup()


async def test_the_sandboxed_server_sees_what_it_was_granted_and_nothing_beside_it(granted: tuple[Path, Path]) -> None:
    shown, hidden = granted
    check = f"cat {shown}/note; test -e {hidden}/secret && echo visible || echo hidden"
    server = ServerConfig(command="/bin/sh", args=("-c", check), fs_read=(str(shown),))
    launch: Launch = await sandboxed_launch("srv", server, {"PATH": "/usr/bin:/bin"}, limits=LIMITS, host=HOST)
    try:
        with anyio.fail_after(30):
            done = await anyio.run_process(launch.argv, env=launch.env, check=False)
    finally:
        launch.cleanup()
    assert done.stdout.decode().split() == ["granted", "hidden"], done.stderr.decode()


async def test_a_cwd_the_sandbox_would_not_show_is_refused(granted: tuple[Path, Path]) -> None:
    shown, hidden = granted
    server = ServerConfig(command="/bin/sh", fs_read=(str(shown),), cwd=str(hidden))
    with pytest.raises(SandboxError) as refused:
        await sandboxed_launch("srv", server, {"PATH": "/usr/bin:/bin"}, limits=LIMITS, host=HOST)
    assert refused.value.server == "srv"


def test_refused_forks_are_counted_from_the_cgroups_events(tmp_path: Path) -> None:
    cgroup = PidsCgroup(str(tmp_path))
    assert cgroup.limit_hits() == 0  # no events file yet
    (tmp_path / "pids.events").write_text("max 3\n", encoding="ascii")
    assert cgroup.limit_hits() == 3
    assert cgroup.procs == str(tmp_path / "cgroup.procs")
    cgroup.remove()  # a cgroup that cannot be removed is left, not an error
    assert tmp_path.exists()


@pytest.fixture
def cgroup() -> Iterator[PidsCgroup]:
    """A real pids cgroup below this process's own (the launcher's way); removed afterwards."""
    made = PidsCgroup.create("test", 16)
    if made is None:
        pytest.fail("no pids cgroup can be made here: the sandbox's process limit would not hold")
    yield made
    made.remove()


def dead_pid() -> int:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    return child.pid


def test_the_empty_cgroups_of_a_killed_gateway_are_removed_at_the_next_start(cgroup: PidsCgroup) -> None:
    parent = Path(cgroup.path).parent
    stale = parent / f"bastion-{dead_pid()}-notes-abcdef"
    stale.mkdir()
    ours = PidsCgroup.create("next", 16)  # a start sweeps first
    assert ours is not None
    ours.remove()
    assert not stale.exists()
    assert Path(cgroup.path).exists()  # a live gateway's cgroup (this process's) is left alone


def test_removing_a_cgroup_kills_what_its_server_left_running(cgroup: PidsCgroup) -> None:
    lingering = subprocess.Popen(["/bin/sleep", "60"])
    Path(cgroup.procs).write_text(str(lingering.pid), encoding="ascii")
    cgroup.remove()
    assert lingering.wait(timeout=5) == -signal.SIGKILL
    assert not Path(cgroup.path).exists()

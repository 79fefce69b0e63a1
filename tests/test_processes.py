"""A process is alive while it runs (whoever owns it), and not once it has exited and been reaped."""

from __future__ import annotations

import os
import subprocess

from bastion.processes import pid_alive


def test_this_process_and_init_are_alive() -> None:
    assert pid_alive(os.getpid())
    assert pid_alive(1)  # another owner's, or ours in a container: alive either way


def test_a_reaped_child_is_not_alive() -> None:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    assert not pid_alive(child.pid)

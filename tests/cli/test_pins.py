"""`bastion pin`: a clean exit, and a clear refusal of a server that is not configured."""

from __future__ import annotations

import os
import signal
from contextlib import suppress
from pathlib import Path

import pytest

from tests.cli.conftest import USAGE, bastion
from tests.conftest import PYTHON

pytestmark = pytest.mark.e2e

VULNERABLE = Path(__file__).parents[1] / "servers" / "vulnerable.py"


def test_pinning_a_server_that_is_not_configured_is_refused_naming_those_that_are(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text('[servers.fs]\ncommand = "x"\n[servers.sh]\ncommand = "y"\n', encoding="utf-8")
    done = bastion(home, "pin", "nope", "--config", str(config))
    assert done.returncode == USAGE
    assert "fs, sh" in done.stderr
    assert not (tmp_path / "bastion.lock").exists()


def test_pin_exits_quietly_when_a_server_leaves_a_helper_holding_its_stderr(home: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    script = tmp_path / "helped.py"
    script.write_text(
        "import runpy, subprocess, sys\n"
        "helper = subprocess.Popen([sys.executable, '-c', 'import signal; signal.pause()'],"
        " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # keeps the server's stderr open\n"
        f"open({str(pid_file)!r}, 'w', encoding='utf-8').write(str(helper.pid))\n"
        "sys.argv = sys.argv[:1]\n"
        f"runpy.run_path({str(VULNERABLE)!r}, run_name='__main__')\n",
        encoding="utf-8",
    )
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[servers.helped]\ncommand = "{PYTHON}"\nargs = ["{script}"]\nsandbox = "off"\n', encoding="utf-8"
    )
    try:
        done = bastion(home, "pin", "--config", str(config))
    finally:
        if pid_file.exists():
            with suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text(encoding="utf-8")), signal.SIGKILL)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "bastion.lock").exists()
    assert done.stderr == ""

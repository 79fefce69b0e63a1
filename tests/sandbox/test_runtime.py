"""What a server's command really runs: a path or a PATH match, and a version manager's shim replaced by the
interpreter it stands for, or refused with the fix when it cannot be asked."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bastion.errors import SandboxError
from bastion.sandbox.runtime import executable, resolve_runtime

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def script(path: Path, text: str, *, mode: int = 0o755) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return str(path)


def test_a_command_with_a_path_is_itself_and_a_bare_name_its_match_on_path(tmp_path: Path) -> None:
    tool = script(tmp_path / "bin" / "tool", "#!/bin/sh\n")
    assert executable("srv", tool, None) == tool
    assert executable("srv", "tool", str(tmp_path / "bin")) == tool


@pytest.mark.parametrize("case", ["missing", "not executable", "not on path"])
def test_a_command_that_cannot_run_is_a_sandbox_error_naming_the_server(tmp_path: Path, case: str) -> None:
    plain = script(tmp_path / "plain", "data", mode=0o644)
    command = {"missing": str(tmp_path / "nope"), "not executable": plain, "not on path": "no-such-tool-here"}[case]
    with pytest.raises(SandboxError) as refused:
        executable("srv", command, str(tmp_path))
    assert refused.value.server == "srv"
    assert refused.value.fix


def test_a_command_that_is_no_interpreter_runs_as_written(tmp_path: Path) -> None:
    tool = script(tmp_path / "tool", "#!/bin/sh\necho hi\n")
    assert resolve_runtime("srv", tool, ["--flag"], ENV) == [tool, "--flag"]


def test_a_python_script_is_run_by_the_real_interpreter_its_shebang_names(tmp_path: Path) -> None:
    server = script(tmp_path / "server.py", f"#!{sys.executable}\nprint('hi')\n")
    argv = resolve_runtime("srv", server, ["--port", "1"], ENV)
    assert argv[1:] == [server, "--port", "1"]
    assert os.path.realpath(argv[0]) == os.path.realpath(sys.executable)


def test_a_shim_that_is_no_interpreter_is_refused_with_the_fix(tmp_path: Path) -> None:
    shim = script(tmp_path / ".asdf" / "shims" / "mytool", '#!/bin/sh\nexec asdf exec mytool "$@"\n')
    with pytest.raises(SandboxError) as refused:
        resolve_runtime("srv", shim, [], ENV)
    assert (refused.value.server, bool(refused.value.fix)) == ("srv", True)

"""Servers launched the way users' configs launch them: through a version manager's shim
(pyenv-style, made here), an nvm-style node, and a shim Bastion cannot resolve."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.e2e.support import NPM_BIN, through_stdio
from tests.e2e.test_first_run import INITIALIZE, exchange

pytestmark = [pytest.mark.e2e]

LOOSE = Path(__file__).parents[1] / "servers" / "loose.py"


def pyenv_layout(root: Path) -> Path:
    """A pyenv-style install: `shims/python3` is a bash script that execs `libexec/pyenv exec`,
    which finds the real interpreter; neither script exists inside the sandbox."""
    shims, libexec = root / ".pyenv" / "shims", root / ".pyenv" / "libexec"
    shims.mkdir(parents=True)
    libexec.mkdir(parents=True)
    (libexec / "pyenv").write_text(f'#!/usr/bin/env bash\nshift 2\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    (shims / "python3").write_text(
        f'#!/usr/bin/env bash\nset -e\nexec "{libexec / "pyenv"}" exec "${{0##*/}}" "$@"\n', encoding="utf-8"
    )
    for script in (libexec / "pyenv", shims / "python3"):
        script.chmod(0o755)
    return shims


@pytest.mark.anyio
async def test_a_pyenv_style_shim_runs_its_real_interpreter_in_the_sandbox(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shims = pyenv_layout(tmp_path / "user")
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "logs" / "calls.jsonl"
    log.parent.mkdir()
    args = ["wrap", "--fs-write", str(log.parent), "--", "python3", str(LOOSE), str(log)]
    async with through_stdio(home, args) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "lookup" in names
        result = await client.call_tool("lookup", {"q": "hello"})
        assert not result.is_error
    assert log.read_text(encoding="utf-8").count("hello") == 1


@pytest.mark.anyio
@pytest.mark.npm
async def test_an_nvm_style_node_runs_a_node_server(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = shutil.which("node")
    assert node is not None
    bin_dir = tmp_path / ".nvm" / "versions" / "node" / "v20.0.0" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "node").symlink_to(node)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    script = (NPM_BIN / "mcp-server-filesystem").resolve()
    (tmp_path / "data").mkdir()
    args = ["wrap", "--fs-read", str(tmp_path / "data"), "--", "node", str(script), str(tmp_path / "data")]
    async with through_stdio(home, args) as client:
        assert "list_directory" in {tool.name for tool in (await client.list_tools()).tools}


def test_a_shim_bastion_cannot_resolve_fails_with_its_name_and_the_fix(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shims = tmp_path / ".asdf" / "shims"
    shims.mkdir(parents=True)
    (shims / "ruby").write_text('#!/usr/bin/env bash\nexec asdf exec ruby "$@"\n', encoding="utf-8")
    (shims / "ruby").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    done = exchange(home, ["wrap", "--", "ruby", "server.rb"], [INITIALIZE])
    assert done.returncode == 1
    assert f"{shims / 'ruby'}" in done.stdout
    assert "version manager's shim" in done.stdout
    assert "absolute path" in done.stdout

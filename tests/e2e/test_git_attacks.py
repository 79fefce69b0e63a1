"""Git option injection against the official `mcp-server-git` (PyPI) in a real repository: each
attack is refused by Bastion before the server sees it, and each benign look-alike works."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mcp_types as mt
import pytest

from tests.conftest import PYTHON
from tests.e2e.support import through_stdio
from tests.e2e.test_policy_attacks import refused

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose history holds a `.env` that was committed once and then removed."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    (root / ".env").write_text("API_KEY=very-secret\n", encoding="utf-8")
    (root / "notes.txt").write_text("hello\n", encoding="utf-8")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    git(root, "rm", "-q", ".env")
    git(root, "commit", "-q", "-m", "remove the env file")
    return root


def text(result: mt.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, mt.TextContent))


async def test_git_option_injection_is_refused_and_ordinary_git_use_works(
    home: Path, tmp_path: Path, repo: Path
) -> None:
    outside = tmp_path / "written-by-git"
    args = ["wrap", "--name", "git", "--grant", "write", "--fs-write", str(repo), "--"]
    args += [PYTHON, "-m", "mcp_server_git", "--repository", str(repo)]
    at = {"repo_path": str(repo)}
    async with through_stdio(home, args) as client:
        assert (await refused(client, "git_show", {**at, "revision": "HEAD~1:.env"})).startswith("paths.")
        assert (await refused(client, "git_diff", {**at, "target": f"--output={outside}"})).endswith("option_injection")
        assert await refused(client, "git_diff", {**at, "target": "main..HEAD~1"}) == "git.range"
        assert (await refused(client, "git_add", {**at, "files": ["--force", "x"]})).endswith("option_injection")
        branch: dict[str, object] = {**at, "branch_name": "x", "base_branch": "--orphan"}
        assert (await refused(client, "git_create_branch", branch)).endswith("option_injection")
        contains: dict[str, object] = {**at, "branch_type": "local", "contains": "--exec=touch /tmp/pwned"}
        assert (await refused(client, "git_branch", contains)).endswith("option_injection")
        # The benign look-alikes.
        assert text(await client.call_tool("git_show", {**at, "revision": "HEAD:notes.txt"})).strip().endswith("hello")
        assert "remove the env file" in text(await client.call_tool("git_show", {**at, "revision": "HEAD"}))
        assert "first" in text(
            await client.call_tool("git_log", {**at, "max_count": 5, "start_timestamp": "2 weeks ago"})
        )
        created = await client.call_tool("git_create_branch", {**at, "branch_name": "feature/x"})
        assert not created.is_error, text(created)
        (repo / "notes.txt").write_text("hello again\n", encoding="utf-8")
        assert not (await client.call_tool("git_add", {**at, "files": ["notes.txt"]})).is_error
        committed = await client.call_tool("git_commit", {**at, "message": "- fix typo"})
        assert not committed.is_error, text(committed)
    assert not outside.exists()
    assert "feature/x" in git(repo, "branch", "--list")
    assert "- fix typo" in git(repo, "log", "-1", "--format=%s")

"""Git arguments: options smuggled into refs, paths and URLs, dangerous transports, ranges
where one ref is asked for, and `revision:path` reads of secrets are refused; real refs,
messages and paths pass. The argument names are those of the official `mcp-server-git`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client, StdioServerParameters

from bastion.policy.git import GitKind, check_git_argument, check_git_arguments, git_kind, is_git_tool
from bastion.policy.paths import PathRules, resolve_root

# Every argument of every tool of mcp-server-git 2026.10.19, as it lists them, and what git takes each as.
MCP_SERVER_GIT: dict[str, dict[str, GitKind | None]] = {
    "git_status": {"repo_path": "path"},
    "git_diff_unstaged": {"repo_path": "path", "context_lines": None},
    "git_diff_staged": {"repo_path": "path", "context_lines": None},
    "git_diff": {"repo_path": "path", "target": "ref", "context_lines": None},
    "git_commit": {"repo_path": "path", "message": None},
    "git_add": {"repo_path": "path", "files": "path"},
    "git_reset": {"repo_path": "path"},
    "git_log": {"repo_path": "path", "max_count": None, "start_timestamp": "option", "end_timestamp": "option"},
    "git_create_branch": {"repo_path": "path", "branch_name": "ref", "base_branch": "ref"},
    "git_checkout": {"repo_path": "path", "branch_name": "ref"},
    "git_show": {"repo_path": "path", "revision": "ref"},
    "git_branch": {"repo_path": "path", "branch_type": None, "contains": "ref", "not_contains": "ref"},
}


def rule(name: str, value: object, paths: PathRules | None = None, repo: str | None = None) -> str | None:
    refusal = check_git_argument(name, value, paths, repo=repo)
    return refusal.rule if refusal else None


@pytest.mark.parametrize(
    ("name", "kind"), [(name, kind) for arguments in MCP_SERVER_GIT.values() for name, kind in arguments.items()]
)
def test_every_argument_of_mcp_server_git_has_the_kind_git_takes_it_as(name: str, kind: GitKind | None) -> None:
    assert git_kind(name) == kind


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("target", "--output=/tmp/pwned"),
        ("revision", "--output=/etc/passwd"),
        ("branch_name", "--upload-pack=touch /tmp/pwned"),
        ("base_branch", "-c"),
        ("contains", "--exec=sh"),
        ("not_contains", "-c core.sshCommand=touch /tmp/pwned"),
        ("ref", "--open-files-in-pager=sh"),
        ("target", " --output=x"),
        ("revision", "\uff0d\uff0doutput=x"),  # fullwidth hyphens, '--' under NFKC
        ("files", ["notes.txt", "--force"]),
        ("files", ["-A"]),
        ("repo_path", "--git-dir=/tmp/evil"),
        ("path", "-p"),
        ("url", "--upload-pack=touch /tmp/pwned"),
        ("url", "-oProxyCommand=touch /tmp/pwned:x"),
        ("url", "ssh://-oProxyCommand=touch%20/tmp/pwned/x"),
        ("remote_url", "ssh://git@-oProxyCommand=x/y"),
        ("url", "git@-oProxyCommand=x:repo.git"),
        ("start_timestamp", "--all"),
        ("end_timestamp", "-1"),
        ("range", "--output=x"),
        ("range", "main..-x"),
    ],
)
def test_options_where_git_takes_a_ref_path_url_or_date_are_refused(name: str, value: object) -> None:
    assert rule(name, value) == "git.option_injection"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("url", "ext::sh -c touch% /tmp/pwned"),
        ("url", "EXT::sh -c id"),
        ("url", " ext::sh"),
        ("url", "fd::17"),
        ("remote", "fd::0,1"),
        ("clone_url", "ext::git-upload-pack %S"),
    ],
)
def test_transports_that_run_commands_or_use_file_descriptors_are_refused(name: str, value: str) -> None:
    assert rule(name, value) == "git.transport"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("target", "main..feature"),
        ("target", "main...feature"),
        ("revision", "HEAD~3..HEAD"),
        ("branch_name", "a..b"),
        ("revision", "^main"),
        ("revision", "main^!"),
        ("revision", "main^@"),
        ("revision", "main^-"),
        ("revision", "main^-2"),
        ("contains", "..HEAD"),
    ],
)
def test_a_range_where_one_ref_is_asked_for_is_refused(name: str, value: str) -> None:
    assert rule(name, value) == "git.range"


@pytest.mark.parametrize("value", ["main\n--output=x", "HEAD\x00", "main\x1b[2J"])
def test_refs_with_control_characters_are_refused(value: str) -> None:
    assert rule("revision", value) == "git.ref"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("target", "main"),
        ("target", "HEAD~1"),
        ("target", "a1b2c3d"),
        ("revision", "HEAD^"),
        ("revision", "HEAD^2"),
        ("revision", "HEAD@{1}"),
        ("revision", "main@{upstream}"),
        ("revision", "@{-1}"),
        ("revision", "HEAD^{tree}"),
        ("revision", "HEAD^{/fix: the parser}"),
        ("revision", ":/fix bug"),
        ("revision", "v1.2.3"),
        ("revision", "HEAD:src/main.py"),
        ("revision", "HEAD~2:docs/a..b.md"),
        ("revision", "HEAD:.env.example"),
        ("revision", "HEAD:"),
        ("branch_name", "feature/new-parser"),
        ("branch_name", "fix-1"),
        ("base_branch", None),
        ("contains", None),
        ("files", ["src/a.py", "notes-v2.txt", "."]),
        ("files", ["./-weird-name.txt"]),
        ("repo_path", "/srv/repo"),
        ("url", "https://github.com/modelcontextprotocol/servers.git"),
        ("url", "git@github.com:owner/repo.git"),
        ("url", "ssh://git@example.com/repo.git"),
        ("url", "https://example.com/ext::x"),
        ("start_timestamp", "2 weeks ago"),
        ("end_timestamp", "2024-01-15T14:30:25"),
        ("range", "main..feature"),
        ("range", "main...feature"),
        ("range", "^main"),
        ("message", "- fix typo\n\n--output=x is not an option here"),
        ("branch_type", "-r"),  # an enum the server maps itself
        ("max_count", -1),
        ("context_lines", 3),
    ],
)
def test_real_refs_paths_urls_and_other_arguments_pass(name: str, value: object) -> None:
    assert rule(name, value) is None


@pytest.mark.parametrize(
    "value", ["HEAD:.env", "HEAD~1:.env", "main:config/.env.production", "HEAD:.ssh/id_rsa", ":.env", ":0:.env"]
)
def test_a_revision_path_to_a_secret_is_refused_by_the_denied_names(value: str) -> None:
    assert rule("revision", value) == "paths.denied_name"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return Path(resolve_root(str(tmp_path))) / "repo"


def test_a_revision_path_is_checked_against_the_roots_joined_to_the_repository(repo: Path) -> None:
    rules = PathRules(read_roots=(str(repo),), write_roots=(), base=str(repo))
    assert rule("revision", "HEAD:src/a.py", rules, str(repo)) is None
    assert rule("revision", "HEAD:src/a.py", rules) is None  # the base is the repository
    assert rule("revision", "HEAD:../../etc/passwd", rules, str(repo)) == "paths.outside_roots"
    # git does not decode, but a path is refused when any reading of it leaves the roots
    assert rule("revision", "HEAD:%2e%2e/%2e%2e/etc/passwd", rules, str(repo)) == "paths.encoded"
    assert rule("revision", "HEAD:.env", rules, str(repo)) == "paths.denied_name"
    assert rule("revision", "HEAD:.env.example", rules, str(repo)) is None
    narrowed = PathRules(read_roots=(str(repo),), write_roots=(), denied_names=("*.secret",))
    assert rule("revision", "HEAD:.env", narrowed, str(repo)) is None
    assert rule("revision", "HEAD:a.secret", narrowed, str(repo)) == "paths.denied_name"


def test_all_arguments_of_a_call_are_checked_with_the_calls_repository(repo: Path) -> None:
    rules = PathRules(read_roots=(str(repo),), write_roots=())
    call = {"repo_path": str(repo), "revision": "HEAD:../outside.txt"}
    refusal = check_git_arguments(call, rules)
    assert refusal is not None
    assert refusal.rule == "paths.outside_roots"
    assert refusal.reason.startswith("argument 'revision':")
    assert check_git_arguments({"repo_path": str(repo), "revision": "HEAD:src/a.py"}, rules) is None
    assert check_git_arguments({"repo_path": str(repo), "message": "--amend"}, rules) is None


def test_the_reason_quotes_the_value_and_names_what_git_would_do() -> None:
    refusal = check_git_argument("target", "--output=/tmp/x\x1b")
    assert refusal is not None
    assert "'--output=/tmp/x\\x1b'" in refusal.reason
    assert "option" in refusal.reason


@pytest.mark.parametrize(
    ("name", "description", "expected"),
    [
        ("git_show", None, True),
        ("gitLog", None, True),
        ("status", "Shows the working tree status of a Git repository", True),
        ("digital_sign", None, False),
        ("edit_file", "Make line-based edits. Returns a git-style diff showing the changes made.", False),
        ("list_issues", "List GitHub issues", False),
        ("read_file", None, False),
    ],
)
def test_git_tools_are_recognised_by_name_or_description(name: str, description: str | None, expected: bool) -> None:
    assert is_git_tool(name, description) is expected


@given(st.sampled_from(["target", "revision", "branch_name", "files", "repo_path", "url"]), st.text(max_size=30))
def test_any_value_gets_a_decision_not_an_exception(name: str, value: str) -> None:
    refusal = check_git_argument(name, value)
    assert refusal is None or refusal.rule.startswith(("git.", "paths."))
    if value.lstrip().startswith("-"):
        assert refusal is not None


# The real server: its schemas, and the leak the `revision:path` check closes.

HAS_GIT_SERVER = importlib.util.find_spec("mcp_server_git") is not None


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A repository whose history holds a `.env` that is no longer in the working tree."""
    path = tmp_path / "repo"
    path.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "dev@example.com")
    git("config", "user.name", "dev")
    (path / "notes.txt").write_text("hello\n", encoding="utf-8")
    (path / ".env").write_text("API_KEY=topsecret\n", encoding="utf-8")
    git("add", "notes.txt", ".env")
    git("commit", "-qm", "first")
    git("rm", "-q", "--cached", ".env")
    git("commit", "-qm", "untrack the secret")
    (path / ".env").unlink()
    return path


@pytest.mark.e2e
@pytest.mark.anyio
@pytest.mark.skipif(not HAS_GIT_SERVER, reason="mcp-server-git is not installed (pip install -e '.[dev]')")
async def test_the_argument_names_match_the_real_mcp_server_git_and_its_history_leak_is_caught(
    git_repo: Path,
) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server_git", "--repository", str(git_repo)])
    async with Client(params, read_timeout_seconds=60) as client:
        tools = (await client.list_tools()).tools
        listed = {tool.name: sorted((tool.input_schema or {}).get("properties", {})) for tool in tools}
        assert listed == {name: sorted(arguments) for name, arguments in MCP_SERVER_GIT.items()}
        assert all(is_git_tool(tool.name, tool.description) for tool in tools)
        # Unguarded, the server reads a secret out of the history:
        leak = {"repo_path": str(git_repo), "revision": "HEAD~1:.env"}
        result = await client.call_tool("git_show", leak)
        assert "topsecret" in "".join(getattr(block, "text", "") for block in result.content)
    rules = PathRules(read_roots=(resolve_root(str(git_repo)),), write_roots=())
    refusal = check_git_arguments(leak, rules)
    assert refusal is not None
    assert refusal.rule == "paths.denied_name"
    assert check_git_arguments({"repo_path": str(git_repo), "revision": "HEAD~1:notes.txt"}, rules) is None

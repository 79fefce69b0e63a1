"""Git arguments: refs, paths and URLs a git server hands to `git`, judged before it does.

A git MCP server (the official `mcp-server-git`: `git_diff {target}`, `git_show {revision}`,
`git_checkout {branch_name}`, `git_create_branch {branch_name, base_branch}`, `git_branch
{contains, not_contains}`, `git_add {files}`, `git_log {start_timestamp, end_timestamp}`,
every tool's `repo_path`) builds a `git` command line from its arguments. Each argument
name says what git takes it as (`git_kind`), and each kind has its rules (ids are stable):

- `git.option_injection`: a ref, range, path, URL or date that starts with `-`, which git
  would read as an option: `--output=/etc/passwd` (diff writes a file), `--upload-pack=…`
  and `--exec=…` (fetch, clone and archive run a program), `-c core.sshCommand=…`,
  `--open-files-in-pager=…`; also an `ssh://` URL whose user or host starts with `-`
  (`ssh://-oProxyCommand=…`, which an old git passed to ssh as an option).
- `git.transport`: a URL for the `ext::` transport (runs a command) or `fd::` (reads and
  writes file descriptors), in any case.
- `git.range`: a range where one ref is asked for: `a..b`, `a...b`, `^a`, `a^!`, `a^@`,
  `a^-`. No ref name can contain `..`, so this refuses no single ref. Arguments named as
  ranges (`range`, `revision_range` …) may hold one; each end is still checked.
- `git.ref`: a ref with a control character.
- `paths.*`: the path of a `revision:path` (`HEAD:.env`, `main~3:config/id_rsa`, `:0:.env`
  for the index) names a file in the repository's history; it is checked like a path
  argument, against the roots (joined to the repository) and the denied names, so `git_show`
  cannot read a secret the filesystem rules would refuse. `:/text` (a commit message
  search) names no path.

Values that are not strings (an omitted optional ref is null) are not judged here; a list
is judged item by item. Other arguments (a commit message, a branch type) are not git's
to read as options, so they pass: `- fix typo` is a fine message.

Honest limits: pathspec magic in path arguments (`:(top)`, `:!x`) is git's own syntax and
stays inside the repository; a ref that exists with a hostile name (made through the
filesystem) is only refused when it starts with `-` or holds `..`. Other transports and
hosts in URLs (`file://`, `ssh://host`) are for the URL and path rules to judge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, cast

from bastion.policy.commands import starts_like_option
from bastion.policy.paths import PathRules, check_name, check_path
from bastion.policy.refusal import Refusal, quote

__all__ = ["GitKind", "check_git_argument", "check_git_arguments", "git_kind", "is_git_tool"]

GitKind = Literal["ref", "range", "path", "url", "option"]
"""What git takes an argument as: one ref (or `rev:path`), a range, a path, a remote URL, or
the value of an option (a date) that is checked only for a leading `-`."""

_REF_NAMES = frozenset(
    {
        "ref", "rev", "revision", "branch", "branch_name", "base_branch", "new_branch", "source_branch",
        "target_branch", "tag", "tag_name", "commit", "commit_sha", "commit_id", "commit_hash", "sha", "hash",
        "target", "source", "start_point", "base", "head", "upstream", "onto", "contains", "not_contains",
        "merged", "no_merged", "treeish", "tree_ish", "object", "from_ref", "to_ref", "old", "new",
    }
)  # fmt: skip
_REF_SUFFIXES = ("_ref", "_rev", "_revision", "_branch", "_tag", "_sha", "_commit")
_RANGE_NAMES = frozenset({"range", "revision_range", "rev_range", "commit_range", "revisions", "revs", "refs"})
_PATH_NAMES = frozenset(
    {
        "path", "paths", "file", "files", "filename", "filepath", "file_path", "repo_path", "repo", "repository",
        "directory", "dir", "cwd", "worktree", "pathspec", "pathspecs",
    }
)  # fmt: skip
_PATH_SUFFIXES = ("_path", "_paths", "_file", "_files", "_dir", "_directory", "_pathspec")
_URL_NAMES = frozenset({"url", "remote", "remote_url", "repo_url", "repository_url", "clone_url", "origin"})
_URL_SUFFIXES = ("_url", "_uri")
_OPTION_NAMES = frozenset({"since", "until", "after", "before", "date", "author", "committer", "grep"})
_OPTION_SUFFIXES = ("_timestamp", "_date", "_time")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RANGE = re.compile(r"\.\.|\^[!@]|\^-\d*$")
_TRANSPORT = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*)::")
_DANGEROUS_TRANSPORTS = frozenset({"ext", "fd"})
_SSH_AUTHORITY = re.compile(r"\s*(?:git\+ssh|ssh\+git|ssh)://([^/]*)", re.IGNORECASE)
_INDEX_STAGE = re.compile(r":[0-3]:")
_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_GIT_WORD = re.compile(r"\bgit\b(?![- ]style\b|[- ]like\b)", re.IGNORECASE)  # not "a git-style diff"


def git_kind(name: str) -> GitKind | None:
    """What git takes an argument of this name as, or None when it is not git's to read as an option."""
    lowered = name.lower()
    if lowered in _RANGE_NAMES:
        return "range"
    if lowered in _REF_NAMES or lowered.endswith(_REF_SUFFIXES):
        return "ref"
    if lowered in _PATH_NAMES or lowered.endswith(_PATH_SUFFIXES):
        return "path"
    if lowered in _URL_NAMES or lowered.endswith(_URL_SUFFIXES):
        return "url"
    if lowered in _OPTION_NAMES or lowered.endswith(_OPTION_SUFFIXES):
        return "option"
    return None


def is_git_tool(name: str, description: str | None = None) -> bool:
    """Whether a tool drives git, by its name (`git_show`, `gitLog`) or its description ("… a Git repository")."""
    if any(word.lower() == "git" for word in _NAME_WORDS.findall(name)):
        return True
    return description is not None and _GIT_WORD.search(description) is not None


def check_git_argument(
    name: str, value: object, paths: PathRules | None = None, *, repo: str | None = None
) -> Refusal | None:
    """Refuse a git argument git would read as something else; None when it may pass.

    `name` is the argument's name (`revision`, `target`, `branch_name`, `files`, `repo_path`,
    `url` …: see `git_kind`). `paths` are the server's path rules, for the path of a
    `revision:path`: it is joined to `repo` (the call's repository, else `paths.base`) and
    checked as a path to read. Without `paths` only the denied names are checked
    (`DEFAULT_DENIED_NAMES`).
    """
    kind = git_kind(name)
    if kind is None:
        return None
    items: list[object] = cast("list[object]", value) if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, str):
            continue
        refusal = _check(kind, item, paths, repo)
        if refusal is not None:
            return refusal
    return None


def check_git_arguments(arguments: Mapping[str, object], paths: PathRules | None = None) -> Refusal | None:
    """`check_git_argument` for every argument of one call, `repo_path` (or `repo`) as the repository."""
    repo = next((v for k in ("repo_path", "repo", "repository") if isinstance(v := arguments.get(k), str)), None)
    for name, value in arguments.items():
        refusal = check_git_argument(name, value, paths, repo=repo)
        if refusal is not None:
            return Refusal(refusal.rule, f"argument {name[:40]!r}: {refusal.reason}")
    return None


def _check(kind: GitKind, value: str, paths: PathRules | None, repo: str | None) -> Refusal | None:
    if starts_like_option(value):
        return Refusal("git.option_injection", f"{quote(value)} starts with '-', so git would read it as an option")
    if kind in ("path", "option"):
        return None
    if kind == "url":
        return _url_refusal(value)
    if _CONTROL.search(value):
        return Refusal("git.ref", f"{quote(value)} contains a control character")
    revision, path = _split_revision(value)
    if kind == "range":
        for end in re.split(r"\.\.\.?", revision):
            if starts_like_option(end.lstrip("^")):
                return Refusal("git.option_injection", f"the range {quote(value)} has an end that starts with '-'")
    elif not revision.startswith(":/") and (revision.startswith("^") or _RANGE.search(revision)):
        return Refusal("git.range", f"{quote(value)} is a range of commits where one ref is asked for")
    if path:
        return _path_refusal(value, path, paths, repo)
    return None


def _split_revision(value: str) -> tuple[str, str | None]:
    """(revision, path) as git splits `rev:path`; a `:` inside `@{…}` or `^{…}` does not count."""
    if value.startswith(":/"):
        return value, None  # the youngest commit whose message matches: no path
    if value.startswith(":"):
        stage = _INDEX_STAGE.match(value)
        return "", value[stage.end() if stage else 1 :]
    depth = 0
    for index, char in enumerate(value):
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == ":" and not depth:
            return value[:index], value[index + 1 :]
    return value, None


def _path_refusal(value: str, path: str, paths: PathRules | None, repo: str | None) -> Refusal | None:
    if paths is None:
        refusal = check_name(path, _DEFAULT_RULES)
    else:
        where = repo if repo else paths.base
        refusal = check_path(f"{where.rstrip('/')}/{path}", paths, write=False)
    if refusal is None:
        return None
    return Refusal(refusal.rule, f"the path of the revision {quote(value)} in the repository: {refusal.reason}")


_DEFAULT_RULES = PathRules(read_roots=(), write_roots=())


def _url_refusal(value: str) -> Refusal | None:
    if _CONTROL.search(value):
        return Refusal("git.option_injection", f"the URL {quote(value)} contains a control character")
    transport = _TRANSPORT.match(value)
    if transport is not None and transport[1].lower() in _DANGEROUS_TRANSPORTS:
        what = "runs a command" if transport[1].lower() == "ext" else "reads and writes file descriptors"
        return Refusal("git.transport", f"the {transport[1].lower()}:: transport {what}")
    ssh = _SSH_AUTHORITY.match(value)
    if ssh is not None:
        user, _, host = ssh[1].rpartition("@")
        if starts_like_option(host) or starts_like_option(user):
            return Refusal("git.option_injection", f"the ssh URL {quote(value)} names a host or user starting with '-'")
    elif "://" not in value and starts_like_option(value.partition(":")[0].rpartition("@")[2]):  # user@host:path
        return Refusal("git.option_injection", f"the URL {quote(value)} names a host starting with '-'")
    return None

"""A call's arguments against one server's rules: every string, at any depth, checked by the
name it sits under and else by its content; then git's own reading of a git tool's arguments.

    arguments.*           not an object, too large, too deep, not declared by the tool's schema,
                          or against it (`arguments.schema`; `schema.py`)
    paths.* urls.* sql.* commands.*   the constraints, on every string (`leaves.py`): the schema
                          the server declares never decides that a string goes unchecked
    arguments.stuffed     more than 8 KiB of text under a name that carries no content
    arguments.secret      a key or token in any string, also base64- or percent-encoded (outbound DLP;
                          `outbound_secrets = "approve"` sends the call to a person instead)
    commands.option_injection   a ref, pattern, path or target that starts with `-`
    commands.metacharacter      shell syntax in any string of a tool that runs or pings something,
                          or of a server that runs a shell; a `cmd`/`command` key nested in data
                          is a command line only there (`leaf_kind`)
    git.*                 a git tool's refs, ranges, paths and URLs as git would read them

The strings are walked once per call (`read_strings`): the same walk answers whether the call
needs DNS (`Strings.needs_resolution`, asked before the decision so that only calls carrying a URL
resolve in a worker thread) and is then judged.

Pure: values in, a `Refusal`, a `NeedsApproval` (an unlisted executable a person may allow,
`commands.unlisted = "approve"`) or None out.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any, NamedTuple
from urllib.parse import unquote

from bastion.policy.commands import NeedsApproval, check_option_injection, check_shell_argument, judge_command
from bastion.policy.git import check_git_arguments
from bastion.policy.leaves import MAX_DEPTH, Leaf, as_url, content_kind, strings_of
from bastion.policy.paths import check_path
from bastion.policy.profile import ArgKind, ToolProfile, recognise
from bastion.policy.refusal import Refusal
from bastion.policy.rules import ServerPolicy, SqlCheck, write_access
from bastion.policy.urls import Resolver, check_url, check_url_resolved
from bastion.screen.secrets import secret_rules

__all__ = [
    "CONTENT_NAMES",
    "STUFFED_CHARS",
    "Strings",
    "argument_refusal",
    "leaf_kind",
    "needs_resolution",
    "read_strings",
]

SECRET_MIN_CHARS = 16
"""Shorter strings are not scanned for secrets (no key format is that short)."""
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+_=-]{12,}")
_KEY_MARKERS = re.compile(r"BEGIN|://[^/\s]*@|hooks\.slack\.com|%[0-9A-Fa-f]{2}")


def _maybe_secret(value: str) -> bool:
    """Whether a string could hold a secret the scanner reports as HIGH: a long token mixing
    letters and digits, a key block, a URL with credentials, or percent-encoding. Most strings
    (paths, names, prose, plain URLs) do not, and skip the scan."""
    if _KEY_MARKERS.search(value):
        return True
    return any(not run.isalpha() and not run.isdigit() for run in _TOKEN_RUN.findall(value))


STUFFED_CHARS = 8192
"""The longest string allowed under a name that carries no content (`arguments.stuffed`)."""
CONTENT_NAMES = frozenset(
    {
        "content", "contents", "text", "body", "data", "message", "messages", "prompt", "code", "source",
        "html", "markdown", "md", "document", "doc", "input", "payload", "patch", "diff", "note", "notes",
        "comment", "description", "summary", "script", "query", "sql", "statement", "value", "values",
        "new_string", "old_string", "old_text", "new_text", "edits", "file_text", "json", "yaml", "csv",
        "template", "instructions", "context", "transcript", "log", "logs", "output", "stdin",
    }
)  # fmt: skip
"""Names under which long text is expected."""
CONTENT_SUFFIXES = ("_content", "_contents", "_text", "_body", "_data", "_code", "_html", "_markdown", "_message")


class Strings(NamedTuple):
    """A call's strings, each with what it is checked as: one walk of the arguments for one tool
    (a tuple: one is made per call)."""

    profile: ToolProfile
    arguments: object
    """The arguments walked (the decision uses this walk only for these very arguments)."""
    leaves: tuple[tuple[Leaf, ArgKind | None, bool], ...]
    """Each string outside `profile.plain`, with its kind and whether its content (not a name) said so."""
    too_deep: bool
    """The walk stopped after `leaves` at nesting deeper than `MAX_DEPTH`."""
    needs_resolution: bool
    """A string is checked as a URL, so DNS answers matter for the decision."""


def read_strings(profile: ToolProfile, arguments: object) -> Strings:
    """Walk a call's arguments once: every string, what it is checked as, and whether DNS matters."""
    given = arguments
    if not isinstance(given, dict):
        return Strings(profile, arguments, (), False, False)
    values: dict[str, object] = {str(key): value for key, value in given.items()}  # pyright: ignore[reportUnknownVariableType,reportUnknownArgumentType]
    leaves, too_deep = strings_of(values)  # judged up to a nesting too deep; the refusal follows them
    plain = profile.plain
    found: list[tuple[Leaf, ArgKind | None, bool]] = []
    url = False
    for leaf in leaves:
        if leaf.argument not in plain:
            kind, by_content = leaf_kind(profile, leaf)
            url = url or kind is ArgKind.URL
            found.append((leaf, kind, by_content))
    return Strings(profile, arguments, tuple(found), too_deep, url)


def argument_refusal(
    rules: ServerPolicy,
    profile: ToolProfile,
    arguments: object,
    size: int,
    sql_check: SqlCheck | None,
    resolve: Resolver | None,
    strings: Strings | None = None,
) -> Refusal | NeedsApproval | None:
    """`strings` is this call's walk when the caller has made it already (`read_strings`)."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return Refusal("arguments.not_object", "the arguments are not a JSON object")
    if size > rules.max_argument_bytes:
        return Refusal(
            "arguments.size", f"the arguments are {size} bytes; the limit is {rules.max_argument_bytes} bytes"
        )
    values: dict[str, Any] = {str(key): value for key, value in arguments.items()}  # pyright: ignore[reportUnknownVariableType]
    if rules.strict_arguments and not profile.open_schema and not (profile.declared or frozenset()).issuperset(values):
        undeclared = sorted(name for name in values if profile.declared is None or name not in profile.declared)
        if undeclared:
            names = ", ".join(repr(name[:40]) for name in undeclared[:5])
            return Refusal("arguments.undeclared", f"{profile.name!r} does not declare the argument(s) {names}")
    if profile.schema is not None:
        refusal = profile.schema.refusal(values)
        if refusal is not None:
            return refusal
    if strings is None or strings.arguments is not arguments or strings.profile is not profile:
        strings = read_strings(profile, values)
    write = write_access(profile.risk)
    approval: NeedsApproval | None = None
    for leaf, kind, by_content in strings.leaves:
        verdict = _leaf_verdict(rules, profile, leaf, kind, by_content, values, write, sql_check, resolve)
        if isinstance(verdict, NeedsApproval):
            approval = approval or verdict  # decided only once every other string has passed
        elif verdict is not None:
            return Refusal(verdict.rule, f"argument {_where(leaf)!r}: {verdict.reason}")
    if strings.too_deep:
        return Refusal("arguments.too_deep", f"the arguments nest deeper than {MAX_DEPTH} levels")
    if profile.git:
        plain = {name: value for name, value in values.items() if name not in profile.plain}
        refusal = check_git_arguments(plain, rules.paths)
        if refusal is not None:
            return refusal
    return approval


def _where(leaf: Leaf) -> str:
    return leaf.argument if leaf.key == leaf.argument else f"{leaf.argument}…{leaf.key}"


def leaf_kind(profile: ToolProfile, leaf: Leaf) -> tuple[ArgKind | None, bool]:
    """What a string is checked as, and whether its content (not a name) said so.

    A name the server declared or config named decides first; an undeclared or nested key is
    recognised by its name too; otherwise the content decides. Commands and SQL keep their own
    parsers; every other string that looks like a path or URL is checked as one.

    A `command` or `cmd` key nested in the arguments (`{"filter": {"cmd": "ls; rm"}}`, or the same
    as JSON inside a string) names a command line only where one may run: a tool that runs
    commands, takes a command argument, or belongs to a server that runs a shell
    (`profile.command_names`). Elsewhere it is a field of data, judged by its content like any other."""
    if leaf.key == leaf.argument:
        named = profile.kinds.get(leaf.key) or _named(leaf.key, profile.speaks_sql)
    else:
        named = _named(leaf.key, profile.speaks_sql)
        if named is ArgKind.COMMAND and not profile.command_names:
            named = None
    if named is not None and named is not ArgKind.ARGV:
        return named, False
    return content_kind(leaf.value), True


_MAX_CACHED_NAME = 64


def _named(key: str, speaks_sql: bool) -> ArgKind | None:
    """`recognise` for a key with no schema entry; short keys (nearly all of them) are remembered."""
    if len(key) > _MAX_CACHED_NAME:
        return recognise(key, None, speaks_sql=speaks_sql)
    return _named_cached(key, speaks_sql)


@functools.lru_cache(maxsize=4096)
def _named_cached(key: str, speaks_sql: bool) -> ArgKind | None:
    return recognise(key, None, speaks_sql=speaks_sql)


def needs_resolution(profile: ToolProfile, arguments: object) -> bool:
    """Whether deciding this call checks a URL, so DNS answers matter (the caller resolves in a worker thread).

    Prefer `read_strings(...).needs_resolution` and hand the `Strings` to the decision: one walk."""
    return read_strings(profile, arguments).needs_resolution


def _leaf_verdict(
    rules: ServerPolicy,
    profile: ToolProfile,
    leaf: Leaf,
    kind: ArgKind | None,
    by_content: bool,
    values: dict[str, Any],
    write: bool,
    sql_check: SqlCheck | None,
    resolve: Resolver | None,
) -> Refusal | NeedsApproval | None:
    refusal = check_option_injection(leaf.key, leaf.value) or _stuffed(leaf)
    if refusal is not None:
        return refusal
    secret = _outbound_secret(rules, leaf)
    if secret is not None:
        return secret
    if kind is ArgKind.COMMAND:
        # A top-level command is judged with its argv list; one nested elsewhere on its own.
        argv = _argv(profile, values) if leaf.key == leaf.argument else None
        return judge_command(leaf.value, argv, rules.commands)
    if profile.runs_commands and not _argv_item(profile, leaf):
        # A tool that runs or pings something may paste any of its strings into a command line.
        refusal = check_shell_argument(leaf.value)
        if refusal is not None:
            return refusal
    if kind is ArgKind.PATH:
        return check_path(leaf.value, rules.paths, write=write)
    if kind is ArgKind.URL:
        url = as_url(leaf.value) if by_content else leaf.value
        return check_url(url, rules.urls) if resolve is None else check_url_resolved(url, rules.urls, resolve)
    if kind is ArgKind.SQL:
        return sql_check(leaf.value, rules.sql) if sql_check is not None else _no_sql_check()
    return None


def _outbound_secret(rules: ServerPolicy, leaf: Leaf) -> Refusal | NeedsApproval | None:
    """A key or token leaving in an argument, as written or base64- or percent-encoded (outbound DLP)."""
    if rules.outbound_secrets == "allow" or len(leaf.value) < SECRET_MIN_CHARS:
        return None
    if not _maybe_secret(leaf.value):
        return None
    found = secret_rules(leaf.value)
    for decoded in _decodings(leaf.value):
        found += secret_rules(decoded)
    if not found:
        return None
    reason = f"it carries a secret ({found[0]}); keys belong in Bastion's secret store, not in a call"
    if rules.outbound_secrets == "approve":
        return NeedsApproval("arguments.secret", reason)
    return Refusal("arguments.secret", reason)


def _decodings(value: str) -> list[str]:
    """The value percent-decoded, and base64-decoded when it is one base64 token of printable text."""
    found: list[str] = []
    if "%" in value:
        unquoted = unquote(value)
        if unquoted != value:
            found.append(unquoted)
    token = value.strip()
    if len(token) >= SECRET_MIN_CHARS and _BASE64.fullmatch(token):
        try:
            decoded = base64.b64decode(
                token + "=" * (-len(token) % 4), altchars=b"-_" if "-" in token or "_" in token else None
            )
        except (binascii.Error, ValueError):
            return found
        if decoded.isascii() and decoded.decode("ascii").isprintable():
            found.append(decoded.decode("ascii"))
    return found


def _stuffed(leaf: Leaf) -> Refusal | None:
    """A conversation-sized string under a name that carries no content (a city, an id, a flag):
    how an injected model smuggles the conversation or a file out through an unrelated parameter."""
    if len(leaf.value) <= STUFFED_CHARS:
        return None
    key = leaf.key.lower()
    if key in CONTENT_NAMES or key.endswith(CONTENT_SUFFIXES):
        return None
    return Refusal(
        "arguments.stuffed",
        f"{len(leaf.value)} characters under {leaf.key[:40]!r}, a name that carries no content "
        f"(more than {STUFFED_CHARS} is allowed only in content arguments such as 'content' or 'text')",
    )


def _argv(profile: ToolProfile, values: dict[str, Any]) -> object:
    """The command's separate argument list (`args`, `argv`), when the tool has one and the call gives it."""
    return next((values[a] for a, k in profile.kinds.items() if k is ArgKind.ARGV and a in values), None)


def _argv_item(profile: ToolProfile, leaf: Leaf) -> bool:
    """A string of the command's own argv list: judged with the command, as data, not as shell text."""
    return profile.kinds.get(leaf.argument) is ArgKind.ARGV


def _no_sql_check() -> Refusal:
    return Refusal("sql.unavailable", "the SQL checker is not loaded, so the statement cannot be checked")

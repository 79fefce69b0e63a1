"""Command allowlists: an argument constraint for tools that run a program.

A shell server's tool takes either one string (`{command: "git status"}`) or an argv list
(`{command: "git", args: ["status"]}`, `{command: ["git", "status"]}`); `judge_command` sees
both forms the same way. A string is judged the way the server will run it
(`CommandRules.shell`):

- an argv server (the default) splits it like `shlex.split` and runs the words directly, so
  quoted and escaped characters are data: `grep "a|b" notes.txt` is `grep` with `a|b`, and
  unquoted globs, `~`, `#` and `!` are data too (the program receives them as written);
- a shell server hands it to `sh -c`, so besides that, what the shell would expand is
  refused: unquoted globs (`* ? [`), brace expansions (`{a,b}`), a leading `~` and a `#`
  comment.

Unquoted operators (`;`, `&&`, `||`, `|`, `&`), grouping parentheses, substitutions (`$(…)`,
backquotes, `${…}`, `<(…)`, `$NAME`) and redirections (`<`, `>`, `>>`) are refused in both
modes: in a shell they run something else, and a caller who writes them unquoted to an argv
server means a shell it does not have. Substitutions inside double quotes (`"$(id)"`,
`"$HOME"`) are refused in both modes too: a shell performs them there, and a server set up
as argv that really runs a shell must not get them. Single quotes keep everything literal.
Rules, in the order they are checked (ids are stable):

- `commands.not_text`: the command is not a non-blank string or a non-empty list of strings
  with a non-blank first element, or `args` is neither None nor a list of strings.
- `commands.metacharacter`: a command string with a control (tab included), format (bidi
  overrides, zero-width) or line-separator character, or shell syntax as above; an argv
  element (from a list or `args`) containing NUL, a newline or a carriage return.
- `commands.quoting`: an unterminated quote or a trailing backslash.
- `commands.env_assignment`: a leading `NAME=value` word (`FOO=1 git`), which a shell reads
  as an environment assignment for the program that follows.
- `commands.path_executable`: a relative path (`./git`, `bin/git`): what it runs depends on
  the working directory, so it never matches, whatever the allowlist says.
- `commands.executable`: the executable is not a key of `CommandRules.allow` (or nothing is
  allowed at all), and `CommandRules.unlisted` is "deny". The reason names the allowed ones.
  With `unlisted = "approve"` the verdict is `NeedsApproval("commands.unlisted", …)` instead:
  the call goes to the approval gate, where a person sees the whole command.
- `commands.argument`: an argument that fully matches none of the executable's patterns.

Besides commands, three helpers for the tools around them: `runs_commands` tells from a
tool's name and description whether it runs or pings something (so its other string
arguments are checked with `check_shell_argument`), and `check_option_injection` refuses an
argument that a server may hand to a CLI (a ref, a pattern, a path, a target host) when it
starts with `-` (rule `commands.option_injection`): `--upload-pack=…`, `-oProxyCommand=…`.

Honest limits: a bare name (`git`) runs whatever the server's PATH finds first; write an
absolute path (`/usr/bin/git`) to pin it. Patterns judge each argument alone, not its
position or the option before it: `("-c", ".*")` allows `git -c core.pager=sh log`. Argv
elements are not checked for shell syntax (a server that runs argv directly never interprets
them); a server that joins argv into a shell string is only as safe as the patterns are
tight, and `(".*",)` trusts the caller completely. `shell` is what the operator says of the
server; Bastion cannot see inside it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, cast

from bastion.policy.refusal import Refusal, quote

__all__ = [
    "SHELL_METACHARACTERS",
    "CommandRules",
    "NeedsApproval",
    "check_command",
    "check_option_injection",
    "check_shell_argument",
    "judge_command",
    "option_name",
    "runs_commands",
    "starts_like_option",
]

SHELL_METACHARACTERS: frozenset[str] = frozenset(";|&$`<>(){}[]*?~!#^'\"\\\n\r")
"""Characters a POSIX shell reads specially: separators (`; | &`) and line breaks,
substitution (`$`, backquote), redirection (`< >`), grouping (`( ) { }`), globbing
(`* ? [ ]`), home and history (`~ !`), comments (`#`), the Bourne shell's old pipe (`^`)
and quoting (`' " \\`)."""

Unlisted = Literal["deny", "approve"]


@dataclass(frozen=True, slots=True)
class NeedsApproval:
    """A command the rules neither allow nor refuse: a person decides (`commands.unlisted = "approve"`)."""

    rule: str
    reason: str


_ARGV_FORBIDDEN = frozenset("\0\n\r")
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})  # Unicode categories: control, format, line/paragraph separators
_ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_NAMES_SHOWN = 10

# One piece of a command string: spaces, a quoted run, an escape, a run of plain characters,
# or any other single character (shell syntax, or a quote or backslash left unterminated).
_PIECES = re.compile(r""" +|'[^']*'|"(?:[^"\\]|\\.)*"|\\.|[^ '"\\;&|<>()`$*?\[\]{}~#!]+|.""", re.DOTALL)
_PLAIN = re.compile(r"""[^'"\\;&|<>()`$*?\[\]{}~#!]*""")
_OPERATORS = frozenset(";&|()")
_REDIRECTIONS = frozenset("<>")
_SUBSTITUTIONS = frozenset("$`")
_GLOBS = frozenset("*?[")  # a shell replaces the word with file names; data to an argv server
_WORD_START = frozenset("~#")  # home and comments: special only where a word starts
_DATA = frozenset("]{}!")  # special only with company: `{a,b}` (checked), `[…]`, `${!x}`; `!` is history, off in sh -c
# After `$`, these make an expansion ($NAME, $1, ${…}, $(…), $[…], $'…', $"…", $@ …); anything else leaves `$` literal.
_EXPANSION = re.compile(r"""[A-Za-z0-9_{(\['"@*#?$!-]""")
_BRACE_EXPANSION = re.compile(r"[^ }]*?(?:,|\.\.)[^ }]*}")
_DQ_ESCAPES_SHELL = frozenset('$`"\\\n')  # what a backslash escapes inside "…" in sh
_DQ_ESCAPES_SHLEX = frozenset('"\\')  # … and in shlex.split (posix)
_ESCAPE_PAIR = re.compile(r"\\.", re.DOTALL)
_SHELL_ARGUMENT_FORBIDDEN = frozenset(";&|<>()$`'\"\\")  # what ends a word, a quoted string or a command


@dataclass(frozen=True, slots=True)
class CommandRules:
    """Which executables may run, with which arguments, and how the server runs a string.

    `allow` maps an executable to regular expressions; each argument must fully match one of
    them (`re.fullmatch`). An empty tuple allows no arguments; `(".*",)` allows any. A key is
    a bare name (`git`), which matches only the bare name given by the caller, or an absolute
    path (`/usr/bin/git`), which matches only that exact path: `/tmp/evil/git` never matches
    `git`. `shell` says the server hands a command string to a shell (default: it splits it
    and runs the words). `unlisted` is what an executable outside `allow` gets: "deny", or
    "approve" (a person decides). Raises ValueError for a relative-path key, a pattern that
    does not compile or an unknown `unlisted`.
    """

    allow: Mapping[str, tuple[str, ...]]
    shell: bool = False
    unlisted: Unlisted = "deny"
    compiled: Mapping[str, tuple[re.Pattern[str], ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        allow = MappingProxyType(dict(self.allow))  # a private, read-only copy
        compiled: dict[str, tuple[re.Pattern[str], ...]] = {}
        for executable, patterns in allow.items():
            if not executable or ("/" in executable and not executable.startswith("/")):
                raise ValueError(f"executable {executable!r} must be a bare name or an absolute path")
            try:
                compiled[executable] = tuple(re.compile(pattern) for pattern in patterns)
            except re.error as error:
                raise ValueError(f"a pattern for {executable!r} does not compile: {error}") from None
        if self.unlisted not in ("deny", "approve"):
            raise ValueError(f"unlisted must be 'deny' or 'approve', not {self.unlisted!r}")
        object.__setattr__(self, "allow", allow)
        object.__setattr__(self, "compiled", MappingProxyType(compiled))


def judge_command(command: object, args: object, rules: CommandRules) -> Refusal | NeedsApproval | None:
    """None when the command may run, a Refusal when it may not, NeedsApproval when a person decides.

    `command` is one string (judged and split as `rules.shell` says) or a list of strings
    (argv); `args` is an extra argument list, None when the tool has none.
    """
    argv = _argv(command, args, shell=rules.shell)
    if isinstance(argv, Refusal):
        return argv
    for element in argv:
        bad = next((c for c in element if c in _ARGV_FORBIDDEN), None)
        if bad is not None:
            return Refusal("commands.metacharacter", f"the argument {quote(element)} contains {bad!r}")
    executable, *arguments = argv
    if _ENV_ASSIGNMENT.match(executable):
        return Refusal("commands.env_assignment", f"{quote(executable)} sets an environment variable")
    if "/" in executable and not executable.startswith("/"):
        return Refusal("commands.path_executable", f"the relative path {quote(executable)} depends on the directory")
    patterns = rules.compiled.get(executable)
    if patterns is None:
        return _unlisted(executable, rules)
    for argument in arguments:
        if not any(pattern.fullmatch(argument) for pattern in patterns):
            return Refusal(
                "commands.argument", f"the argument {quote(argument)} is not allowed for {quote(executable)}"
            )
    return None


def check_command(command: object, args: object, rules: CommandRules) -> Refusal | None:
    """`judge_command` for a caller without an approval gate: what needs approval is refused."""
    verdict = judge_command(command, args, rules)
    if isinstance(verdict, NeedsApproval):
        return Refusal("commands.executable", f"{verdict.reason}, and no approval gate decides here")
    return verdict


def check_shell_argument(value: object) -> Refusal | None:
    """Refuse a string that could change a command line it is pasted into (for tools that run something).

    A server that pings `host` may build `ping -c 1 {host}` or `ping "{host}"` and run it in a
    shell; which template it uses cannot be seen. So every character that ends a word, a
    quoted string or a command there is refused, quotes and backslashes included, with
    substitutions and control characters: `; & | < > ( ) $` backquote `' " \\`. Globs,
    braces, `~`, `#` and `!` stay: they cannot end the command. Non-strings are not judged.
    """
    if not isinstance(value, str):
        return None
    for char in value:
        if char in _SHELL_ARGUMENT_FORBIDDEN or not char.isprintable():
            return Refusal("commands.metacharacter", f"{quote(value)} contains {char!r}, which a shell would read")
    return None


def _unlisted(executable: str, rules: CommandRules) -> Refusal | NeedsApproval:
    if rules.unlisted == "approve":
        return NeedsApproval("commands.unlisted", f"{quote(executable)} is not in commands.allow")
    if not rules.allow:
        return Refusal("commands.executable", "no executables are allowed; add them to commands.allow")
    names = sorted(rules.allow)
    shown = ", ".join(quote(name) for name in names[:_NAMES_SHOWN]) + (" …" if len(names) > _NAMES_SHOWN else "")
    return Refusal("commands.executable", f"{quote(executable)} is not allowed; allowed: {shown}")


def _argv(command: object, args: object, *, shell: bool) -> list[str] | Refusal:
    extra = _strings(args) if args is not None else []
    if extra is None:
        return Refusal("commands.not_text", "args must be a list of strings")
    if isinstance(command, str):
        if not command.strip():
            return Refusal("commands.not_text", "the command is blank")
        if not command.isprintable():  # cheap: most commands are printable, and then none is invisible
            bad = next((c for c in command if unicodedata.category(c) in _INVISIBLE), None)
            if bad is not None:
                return Refusal("commands.metacharacter", f"the command contains the invisible character {bad!r}")
        words = _split(command, shell=shell)
        if isinstance(words, Refusal):
            return words
        if not words or not words[0].strip():
            return Refusal("commands.not_text", "the command names no program")
        return [*words, *extra]
    argv = _strings(command)
    if not argv or not argv[0].strip():
        return Refusal("commands.not_text", "the command must be a string or a non-empty list of strings")
    return [*argv, *extra]


def _split(command: str, *, shell: bool) -> list[str] | Refusal:
    """The words of a command string as the server will see them, or why it must not run.

    Words are split as `shlex.split` (posix) splits them; `shell` adds what `sh` expands.
    Only ASCII spaces separate words (tabs and line breaks were refused before; other Unicode
    spaces are part of a word, as for a shell).
    """
    if _PLAIN.fullmatch(command):  # the common case: nothing quoted, escaped or special
        return [word for word in command.split(" ") if word]
    words: list[str] = []
    current: list[str] | None = None  # None between words; a quoted '' still makes a word
    escapes = _DQ_ESCAPES_SHELL if shell else _DQ_ESCAPES_SHLEX
    for match in _PIECES.finditer(command):
        piece = match[0]
        first = piece[0]
        if first == " ":
            if current is not None:
                words.append("".join(current))
                current = None
            continue
        starts_word = current is None
        if current is None:
            current = []
        if len(piece) == 1 and first in "'\"\\":
            what = "a trailing backslash" if first == "\\" else f"an unterminated {first} quote"
            return Refusal("commands.quoting", f"the command has {what}")
        if first == "'":
            current.append(piece[1:-1])
        elif first == '"':
            body = piece[1:-1]
            if ("$" in body or "`" in body) and _substitutes(_ESCAPE_PAIR.sub("", body)):
                return Refusal("commands.metacharacter", "a shell substitutes $ and ` inside double quotes")
            current.append(_unescape_double(body, escapes) if "\\" in body else body)
        elif first == "\\":
            current.append(piece[1])
        elif len(piece) > 1 or first not in _SPECIAL:
            current.append(piece)
        else:
            tilde_expands = starts_word or (first == "~" and bool(current) and current[-1].endswith("="))
            refusal = _special(first, command, match.end(), shell=shell, starts_word=tilde_expands)
            if refusal is not None:
                return refusal
            current.append(first)
    if current is not None:
        words.append("".join(current))
    return words


_SPECIAL = _OPERATORS | _REDIRECTIONS | _SUBSTITUTIONS | _GLOBS | _WORD_START | _DATA


def _special(char: str, command: str, after: int, *, shell: bool, starts_word: bool) -> Refusal | None:
    """Why an unquoted shell character must not pass, or None when it is data here."""
    following = command[after : after + 1]
    if char in _OPERATORS:
        doubled = following == char and char in "&|"
        what = "grouping" if char in "()" else "an operator"
        return Refusal("commands.metacharacter", f"the command contains {what} {char * (2 if doubled else 1)!r}")
    if char in _REDIRECTIONS:
        if following == "(":
            return Refusal("commands.metacharacter", f"the command contains a process substitution {char + '('!r}")
        return Refusal("commands.metacharacter", f"the command contains a redirection {char!r}")
    if char == "`" or (char == "$" and _EXPANSION.match(following)):
        shown = char + following if char == "$" else char
        return Refusal("commands.metacharacter", f"the command contains a substitution or expansion {shown!r}")
    if not shell:
        return None
    if char in _GLOBS:
        return Refusal("commands.metacharacter", f"a shell expands the unquoted glob {char!r} to file names; quote it")
    if char == "{" and _BRACE_EXPANSION.match(command, after):
        return Refusal("commands.metacharacter", "a shell expands the unquoted braces into several words; quote them")
    if char in _WORD_START and starts_word:  # ~ (also after `=`) and # mean something only where a word starts
        return Refusal("commands.metacharacter", f"a shell reads a word starting with {char!r}; quote it")
    return None


def _substitutes(body: str) -> bool:
    """Whether double-quoted text (escapes removed) holds a substitution a shell performs."""
    if "`" in body:
        return True
    return any(_EXPANSION.match(body, index + 1) for index, char in enumerate(body) if char == "$")


def _unescape_double(body: str, escapes: frozenset[str]) -> str:
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body) and body[index + 1] in escapes:
            out.append(body[index + 1])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _strings(value: object) -> list[str] | None:
    if not isinstance(value, (list, tuple)):
        return None
    items = cast("Sequence[object]", value)
    strings = [item for item in items if isinstance(item, str)]
    return strings if len(strings) == len(items) else None


# Tools that run or ping something.

_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_RUNNER_WORDS = frozenset(
    {
        "shell", "bash", "sh", "zsh", "fish", "powershell", "pwsh", "terminal", "subprocess", "popen", "system",
        "ping", "ping6", "traceroute", "tracert", "tracepath", "nslookup", "dig", "whois", "nmap", "mtr", "netcat",
        "nc", "telnet", "arping",
    }
)  # fmt: skip
_COMMAND_WORDS = frozenset({"command", "commands", "commandline", "cmd", "cmdline"})
"""A command is run, unless another verb in the name says what is done with it instead."""
_ABOUT_COMMANDS = frozenset(
    {
        "send", "list", "get", "show", "describe", "search", "find", "lookup", "help", "explain", "suggest",
        "history", "validate", "parse", "format", "log", "delete", "remove", "rename",
    }
)  # fmt: skip
"""Verbs that do something with a command other than run it on this host: `send_command` (to a
device), `list_commands`, `get_command_history`, `explain_command`. Verbs that may store one to run
later (`create`, `add`, `save`, `schedule`) are not among them."""
_RUN_VERBS = frozenset({"run", "runs", "exec", "execute", "executes", "spawn", "launch", "invoke"})
# What a run/exec verb may run that is not a command line (its arguments are code or queries).
_NOT_COMMAND_WORDS = frozenset(
    {
        "sql", "query", "queries", "statement", "statements", "code", "python", "py", "javascript", "js",
        "typescript", "ts", "node", "ruby", "lua", "notebook", "cell", "cells", "test", "tests", "workflow",
        "workflows", "job", "jobs", "pipeline", "pipelines", "migration", "migrations", "report", "reports",
        "search", "analysis", "model", "prompt", "agent", "tool", "tools", "action", "actions", "task", "tasks",
        "graphql", "cypher", "sparql", "promql", "kql", "jq", "regex",
    }
)  # fmt: skip
_RUNS_DESCRIPTION = re.compile(
    r"\b(?:runs?|execut(?:e|es|ing)|spawns?|launch(?:es)?|invokes?|starts?)\b[^.;\n]{0,40}?"
    r"\b(?:shell|terminal|command|commands|command[- ]line|program|programs|binary|binaries|executable|process|cli)\b"
    r"|\b(?:shell|bash|zsh|powershell|terminal|system)\s+commands?\b"
    r"|\b(?:pings?|traceroute|tracert|tracepath|nslookup|whois)\b",
    re.IGNORECASE,
)
_SHELL_CONTEXT = re.compile(
    r"\b(?:shell|bash|zsh|sh|powershell|pwsh|terminal|console|tmux|screen|tty|pty|ssh|subprocess|host)\b",
    re.IGNORECASE,
)
"""Where a command another verb handles may still end up in a shell (`send_command`: "… to the tmux pane")."""


def runs_commands(name: str, description: str | None = None) -> bool:
    """Whether a tool runs a program or pings a host, judged from its name and description.

    By name: a word such as `shell`, `terminal`, `ping`, `traceroute`, `nslookup`, `dig`
    (`shellExec`, `ping_host`), or a verb such as `run`, `exec`, `execute`, `spawn` unless the
    name says it runs SQL, code, tests or another non-command thing (`run_query`, `execute_sql`,
    `run_python`, `run_tests`). The noun `command` (`command`, `shell_command`, `cmd`) counts
    unless another verb says what is done with the command instead of running it
    (`send_command`, `list_commands`, `get_command_history`) and the description does not put it
    in a shell, a terminal, a console, tmux or ssh. By description: "runs a shell command",
    "executes a program", "shell commands", "pings". A tool that passes is not proven safe: this
    errs towards checking, never towards trust; the inventory may still classify it exec.
    """
    words = {word.lower() for word in _NAME_WORDS.findall(name)}
    if words & _RUNNER_WORDS:
        return True
    if words & _RUN_VERBS and not words & _NOT_COMMAND_WORDS:
        return True
    if words & _COMMAND_WORDS and (
        not words & _ABOUT_COMMANDS or (description is not None and _SHELL_CONTEXT.search(description) is not None)
    ):
        return True
    return bool(description) and _RUNS_DESCRIPTION.search(description or "") is not None


# Option injection.

_OPTION_NAMES = frozenset(
    {
        # refs and revisions
        "ref", "refs", "rev", "revs", "revision", "revisions", "branch", "branches", "branch_name", "tag", "tags",
        "tag_name", "commit", "commits", "sha", "commit_sha", "commit_id", "target", "source", "start_point",
        "base", "head", "upstream", "onto", "contains", "not_contains", "treeish", "tree_ish", "object",
        # patterns
        "pattern", "patterns", "regex", "regexp", "glob", "globs", "include", "exclude", "pathspec", "pathspecs",
        # paths
        "path", "paths", "file", "files", "filename", "filepath", "dir", "dirs", "directory", "dirname", "folder",
        "destination", "src", "dst", "dest", "root", "cwd", "workdir", "repo", "repo_path", "repository",
        # targets a diagnostic tool is pointed at
        "host", "hostname", "domain", "ip", "address", "server",
    }
)  # fmt: skip
_OPTION_SUFFIXES = (
    *("_ref", "_rev", "_revision", "_branch", "_tag", "_sha", "_commit", "_target"),
    *("_pattern", "_patterns", "_regex", "_glob", "_pathspec"),
    *("_path", "_paths", "_dir", "_directory", "_file", "_files", "_folder"),
    *("_host", "_hostname", "_domain"),
)
_DASHES = frozenset("-\ufe63\uff0d")  # every character whose NFKC form is '-': hyphen-minus, small, fullwidth


def option_name(name: str) -> bool:
    """Whether an argument of this name is one a server may hand to a CLI where an option could go."""
    return _option_name(name) if len(name) <= _MAX_CACHED_NAME else _is_option_name(name)


_MAX_CACHED_NAME = 64


@functools.lru_cache(maxsize=4096)
def _option_name(name: str) -> bool:
    return _is_option_name(name)


def _is_option_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _OPTION_NAMES or lowered.endswith(_OPTION_SUFFIXES)


def starts_like_option(value: str) -> bool:
    """Whether a program would read `value` as an option: a leading `-` (after any spaces, in
    any spelling that normalises to `-`, such as the fullwidth U+FF0D)."""
    text = value.lstrip()
    return bool(text) and text[0] in _DASHES


def check_option_injection(name: str, value: object) -> Refusal | None:
    """Refuse an option smuggled into an argument a server may pass to a CLI (`commands.option_injection`).

    `name` is the argument's name: a ref, revision, branch, pattern, path, target or host
    (`option_name`). A string, or any string of a list, that starts with `-` is refused:
    `--upload-pack=…`, `--output=/etc/passwd`, `-oProxyCommand=…`, `--pre=sh`. Other names
    (a message, a search query) are never judged: `- fix typo` is a fine commit message.
    A file really named `-x` is reached as `./-x`.
    """
    if not option_name(name):
        return None
    values: list[object] = cast("list[object]", value) if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, str) and starts_like_option(item):
            return Refusal(
                "commands.option_injection", f"{quote(item)} starts with '-', so a program would read it as an option"
            )
    return None

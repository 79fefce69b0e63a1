"""Command allowlists: an argument constraint for tools that run a program.

A shell server's tool takes either one string (`{command: "git status"}`) or an argv list
(`{command: "git", args: ["status"]}`, `{command: ["git", "status"]}`); `check_command` sees
both forms the same way. Rules, in the order they are checked (rule ids are stable):

- `commands.not_text`: the command is not a non-blank string or a non-empty list of strings
  with a non-blank first element, or `args` is neither None nor a list of strings.
- `commands.metacharacter`: a command given as one string containing any character of
  `SHELL_METACHARACTERS` or any control (tab included), format (bidi overrides, zero-width)
  or line-separator character; or any argv element (from a list or `args`) containing NUL,
  a newline or a carriage return. Quotes and backslashes are refused in the string form too,
  so it splits into words at spaces exactly as a shell (or `shlex`) would, and nothing is left
  for a shell to interpret; a command that needs quoting must be sent as an argv list.
- `commands.env_assignment`: a leading `NAME=value` word (`FOO=1 git`), which a shell reads
  as an environment assignment for the program that follows.
- `commands.executable`: no executable is allowed at all, or this one is not a key of
  `CommandRules.allow`. The reason names the allowed executables.
- `commands.path_executable`: a relative path (`./git`, `bin/git`): what it runs depends on
  the working directory, so it never matches, whatever the allowlist says.
- `commands.argument`: an argument that fully matches none of the executable's patterns.

Honest limits: a bare name (`git`) runs whatever the server's PATH finds first; write an
absolute path (`/usr/bin/git`) to pin it. Patterns judge each argument alone, not its
position or the option before it: `("-c", ".*")` allows `git -c core.pager=sh log`. Argv
elements are not checked for shell metacharacters (a server that runs argv directly never
interprets them); a server that joins argv into a shell string is only as safe as the
patterns are tight, and `(".*",)` trusts the caller completely.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import cast

from bastion.policy.refusal import Refusal, quote

__all__ = ["SHELL_METACHARACTERS", "CommandRules", "check_command"]

SHELL_METACHARACTERS: frozenset[str] = frozenset(";|&$`<>(){}[]*?~!#^'\"\\\n\r")
"""Characters a POSIX shell reads specially: separators (`; | &`) and line breaks,
substitution (`$`, backquote), redirection (`< >`), grouping (`( ) { }`), globbing
(`* ? [ ]`), home and history (`~ !`), comments (`#`), the Bourne shell's old pipe (`^`)
and quoting (`' " \\`)."""

_ARGV_FORBIDDEN = frozenset("\0\n\r")
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})  # Unicode categories: control, format, line/paragraph separators
_ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_NAMES_SHOWN = 10


@dataclass(frozen=True, slots=True)
class CommandRules:
    """Which executables may run, and with which arguments.

    `allow` maps an executable to regular expressions; each argument must fully match one of
    them (`re.fullmatch`). An empty tuple allows no arguments; `(".*",)` allows any. A key is
    a bare name (`git`), which matches only the bare name given by the caller, or an absolute
    path (`/usr/bin/git`), which matches only that exact path: `/tmp/evil/git` never matches
    `git`. Raises ValueError for a relative-path key or a pattern that does not compile.
    """

    allow: Mapping[str, tuple[str, ...]]
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
        object.__setattr__(self, "allow", allow)
        object.__setattr__(self, "compiled", MappingProxyType(compiled))


def check_command(command: object, args: object, rules: CommandRules) -> Refusal | None:
    """Refuse a command the rules do not allow; None when it may run.

    `command` is one string (split like a shell after the metacharacter check) or a list of
    strings (argv); `args` is an extra argument list, None when the tool has none.
    """
    argv = _argv(command, args)
    if isinstance(argv, Refusal):
        return argv
    for element in argv:
        bad = next((c for c in element if c in _ARGV_FORBIDDEN), None)
        if bad is not None:
            return Refusal("commands.metacharacter", f"the argument {quote(element)} contains {bad!r}")
    executable, *arguments = argv
    if _ENV_ASSIGNMENT.match(executable):
        return Refusal("commands.env_assignment", f"{quote(executable)} sets an environment variable")
    if not rules.allow:
        return Refusal("commands.executable", "no executables are allowed; add them to commands.allow")
    if "/" in executable and not executable.startswith("/"):
        return Refusal("commands.path_executable", f"the relative path {quote(executable)} depends on the directory")
    patterns = rules.compiled.get(executable)
    if patterns is None:
        names = sorted(rules.allow)
        shown = ", ".join(quote(name) for name in names[:_NAMES_SHOWN]) + (" …" if len(names) > _NAMES_SHOWN else "")
        return Refusal("commands.executable", f"{quote(executable)} is not allowed; allowed: {shown}")
    for argument in arguments:
        if not any(pattern.fullmatch(argument) for pattern in patterns):
            return Refusal(
                "commands.argument", f"the argument {quote(argument)} is not allowed for {quote(executable)}"
            )
    return None


def _argv(command: object, args: object) -> list[str] | Refusal:
    extra = _strings(args) if args is not None else []
    if extra is None:
        return Refusal("commands.not_text", "args must be a list of strings")
    if isinstance(command, str):
        if not command.strip():
            return Refusal("commands.not_text", "the command is blank")
        bad = next((c for c in command if c in SHELL_METACHARACTERS or unicodedata.category(c) in _INVISIBLE), None)
        if bad is not None:
            return Refusal("commands.metacharacter", f"the command contains the shell metacharacter {bad!r}")
        # No quote, escape or comment is left, so words are split at spaces, as a shell would
        # (tabs and line breaks were refused above; other Unicode spaces are part of a word).
        return [*(word for word in command.split(" ") if word), *extra]
    argv = _strings(command)
    if not argv or not argv[0].strip():
        return Refusal("commands.not_text", "the command must be a string or a non-empty list of strings")
    return [*argv, *extra]


def _strings(value: object) -> list[str] | None:
    if not isinstance(value, (list, tuple)):
        return None
    items = cast("Sequence[object]", value)
    strings = [item for item in items if isinstance(item, str)]
    return strings if len(strings) == len(items) else None

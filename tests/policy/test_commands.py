"""Command allowlists: only listed executables run, only with arguments their patterns allow,
and nothing a shell would interpret gets through the one-string form."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.policy.commands import SHELL_METACHARACTERS, CommandRules, check_command

GIT = CommandRules(
    allow={
        "git": ("status", "log", "diff", "--oneline", "-n", r"\d+", r"--format=[%a-zA-Z ]+"),
        "/usr/bin/ls": ("-l", "-a", r"[\w.][\w./-]*"),
        "pwd": (),
    }
)


def rule(command: object, args: object = None, rules: CommandRules = GIT) -> str | None:
    refusal = check_command(command, args, rules)
    return refusal.rule if refusal else None


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("git status", None),
        ("git log --oneline -n 5", None),
        ("  git   log  ", None),
        (["git", "log", "--format=%h %s"], None),
        ("git", ["log", "-n", "5"]),
        (["git"], ["status"]),
        ("git log", ["--oneline"]),
        ("/usr/bin/ls -l src/bastion", None),
        ("pwd", None),
        (["pwd"], []),
    ],
)
def test_allowed_commands_with_matching_arguments_pass(command: object, args: object) -> None:
    assert rule(command, args) is None


@pytest.mark.parametrize(
    "command",
    [
        "git status; rm -rf /",
        "git status && curl https://evil.example",
        "git status || true",
        "git status & sleep 100",
        "git $(id)",
        "git ${HOME}",
        "git `id`",
        "git status | sh",
        "git log > /etc/passwd",
        "git log < /dev/zero",
        "git log >> ~/.bashrc",
        "git status\nrm -rf /",
        "git status\rrm -rf /",
        "git status\x00rm",
        "git log 'quoted'",
        'git log "quoted"',
        "git log \\; id",
        "git log *",
        "git log ?",
        "git log [a]",
        "git log ~root",
        "git log !!",
        "git status # comment",
        "git status\tlog",
        "git status\x1b[2J",
        "git status\u202e",
        "git\u200bstatus",
        "git status\u2028rm -rf /",
        "(git status)",
        "{ git status; }",
    ],
)
def test_shell_metacharacters_in_the_string_form_are_refused(command: str) -> None:
    assert rule(command) == "commands.metacharacter"


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (["git", "status\nrm -rf /"], None),
        (["git", "status\x00"], None),
        (["git", "log\r"], None),
        ("git", ["status", "x\ny"]),
    ],
)
def test_nul_and_line_breaks_in_argv_elements_are_refused(command: object, args: object) -> None:
    assert rule(command, args) == "commands.metacharacter"


@pytest.mark.parametrize(
    ("command", "args"),
    [("FOO=1 git status", None), (["GIT_PAGER=sh", "git", "log"], None), ("LD_PRELOAD=/tmp/x.so git", None)],
)
def test_leading_environment_assignments_are_refused(command: object, args: object) -> None:
    assert rule(command, args) == "commands.env_assignment"


@pytest.mark.parametrize(
    "command",
    ["rm -rf /", "sh", "/tmp/git status", "/tmp/evil/git", "/usr/bin/git status", "ls", "GIT status", ["curl", "x"]],
)
def test_executables_outside_the_allowlist_are_refused(command: object) -> None:
    assert rule(command) == "commands.executable"


@pytest.mark.parametrize("command", ["./git status", "bin/git status", "../usr/bin/ls", ["./pwd"], "usr/bin/ls -l"])
def test_relative_paths_never_match(command: object) -> None:
    assert rule(command) == "commands.path_executable"


def test_an_empty_allowlist_refuses_everything() -> None:
    refusal = check_command("git status", None, CommandRules(allow={}))
    assert refusal is not None
    assert refusal.rule == "commands.executable"
    assert "commands.allow" in refusal.reason


def test_the_executable_refusal_names_the_allowed_executables() -> None:
    refusal = check_command("rm -rf /", None, GIT)
    assert refusal is not None
    assert "'git'" in refusal.reason
    assert "'pwd'" in refusal.reason


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("git -c core.pager=sh log", None),
        (["git", "fetch", "--upload-pack=touch /tmp/pwned"], None),
        (["git", "log", "--output=/etc/passwd"], None),
        ("git", ["log", "-n", "5x"]),
        ("git status --porcelain", None),
        ("pwd -P", None),
        (["git", "log", "--format=%h;id"], None),
        ("/usr/bin/ls -R", None),
    ],
)
def test_arguments_that_match_no_pattern_are_refused(command: object, args: object) -> None:
    assert rule(command, args) == "commands.argument"


def test_patterns_match_whole_arguments_not_prefixes() -> None:
    rules = CommandRules(allow={"git": ("status",)})
    assert rule("git status", rules=rules) is None
    assert rule("git statusx", rules=rules) == "commands.argument"
    assert rule("git xstatus", rules=rules) == "commands.argument"


def test_the_argument_refusal_quotes_the_argument() -> None:
    refusal = check_command(["git", "--upload-pack=evil\x1b"], None, GIT)
    assert refusal is not None
    assert "'--upload-pack=evil\\x1b'" in refusal.reason


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (None, None),
        (42, None),
        ("", None),
        ("   ", None),
        ([], None),
        ([""], None),
        (["git", 1], None),
        (b"git status", None),
        ({"command": "git"}, None),
        ("git", "status"),
        ("git", [1]),
        ("git", {"a": 1}),
    ],
)
def test_wrong_types_and_empty_commands_are_refused(command: object, args: object) -> None:
    assert rule(command, args) == "commands.not_text"


@pytest.mark.parametrize("key", ["bin/git", "./git", ""])
def test_rules_reject_relative_executables(key: str) -> None:
    with pytest.raises(ValueError, match="bare name or an absolute path"):
        CommandRules(allow={key: ()})


def test_rules_reject_patterns_that_do_not_compile() -> None:
    with pytest.raises(ValueError, match="does not compile"):
        CommandRules(allow={"git": ("(",)})


def test_rules_keep_a_private_copy_of_the_allowlist() -> None:
    allow = {"git": ("status",)}
    rules = CommandRules(allow=allow)
    allow["sh"] = (".*",)
    assert rule("sh", rules=rules) == "commands.executable"


ANYTHING = CommandRules(allow={"echo": (".*",)})


@given(st.text(min_size=0, max_size=20), st.sampled_from(sorted(SHELL_METACHARACTERS)), st.text(max_size=20))
def test_any_string_containing_a_metacharacter_is_refused(before: str, metacharacter: str, after: str) -> None:
    refusal = check_command(f"echo {before}{metacharacter}{after}", None, ANYTHING)
    assert refusal is not None
    assert refusal.rule == "commands.metacharacter"


_TOKENS = st.one_of(st.sampled_from(["status", "log", "diff", "--oneline", "-n"]), st.integers(0, 10**6).map(str))


@given(st.lists(_TOKENS, max_size=8))
def test_any_argv_of_allowed_tokens_passes_in_both_forms(arguments: list[str]) -> None:
    assert rule(["git", *arguments]) is None
    assert rule("git", arguments) is None
    assert rule(" ".join(["git", *arguments])) is None


@given(st.text(max_size=60))
def test_the_string_form_never_passes_what_the_argv_form_refuses(command: str) -> None:
    refusal = check_command(command, None, ANYTHING)
    if refusal is None:
        argv = shlex.split(command)
        assert argv[0] == "echo"
        assert check_command(argv, None, ANYTHING) is None


@given(st.from_type(object), st.one_of(st.none(), st.from_type(object)))
def test_any_value_gets_a_decision_not_an_exception(command: object, args: object) -> None:
    refusal = check_command(command, args, GIT)
    assert refusal is None or refusal.rule.startswith("commands.")

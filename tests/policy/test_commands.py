"""Command allowlists: only listed executables run, only with arguments their patterns allow,
and a command string is judged the way the server runs it: quoted metacharacters are data to
an argv server, and nothing a shell would interpret gets through to a shell server."""

from __future__ import annotations

import re
import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.policy.commands import (
    CommandRules,
    NeedsApproval,
    check_command,
    check_option_injection,
    check_shell_argument,
    judge_command,
    option_name,
    runs_commands,
    starts_like_option,
)

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


ANYTHING = CommandRules(allow={"echo": (".*",), "grep": (".*",), "git": (".*",), "find": (".*",), "ls": (".*",)})
SHELL = CommandRules(allow=ANYTHING.allow, shell=True)
BOTH = pytest.mark.parametrize("rules", [ANYTHING, SHELL], ids=["argv", "shell"])


@BOTH
@pytest.mark.parametrize(
    "command",
    [
        "git status; rm -rf /",
        "git status;rm -rf /",
        "git status && curl https://evil.example",
        "git status || true",
        "git status & sleep 100",
        "git status | sh",
        "git $(id)",
        'git "a"$(id)',
        "git ${HOME}",
        "git $HOME",
        "git $1",
        "git $'\\x3b'",
        "git `id`",
        "git log > /etc/passwd",
        "git log >> ~/.bashrc",
        "git log < /dev/zero",
        "git log 2>/dev/null",
        "echo <(id)",
        "echo >(tee /tmp/x)",
        "(git status)",
        "{ git status; }",
        "git status\nrm -rf /",
        "git status\rrm -rf /",
        "git status\x00rm",
        "git status\tlog",
        "git status\x1b[2J",
        "git status\u202e",
        "git\u200bstatus",
        "git status\u2028rm -rf /",
    ],
)
def test_operators_substitutions_and_redirections_are_refused_in_both_modes(rules: CommandRules, command: str) -> None:
    assert rule(command, rules=rules) == "commands.metacharacter"


@BOTH
@pytest.mark.parametrize(
    "command", ['echo "$(id)"', 'echo "${HOME}"', 'echo "$HOME"', 'echo "`id`"', 'echo "price $5"', 'echo "a$(id)b"']
)
def test_substitutions_inside_double_quotes_are_refused_in_both_modes(rules: CommandRules, command: str) -> None:
    # A shell performs them there; an argv server does not, but one set up wrongly would.
    assert rule(command, rules=rules) == "commands.metacharacter"


@pytest.mark.parametrize(
    "command",
    [
        "ls *.py",
        "ls notes?.txt",
        "ls [ab].txt",
        "echo {a,b}",
        "echo {1..3}",
        "echo ~root",
        "echo ~/x",
        "echo --dir=~/x",
        "git status # comment",
        "echo #",
    ],
)
def test_what_a_shell_expands_is_refused_when_the_server_runs_a_shell(command: str) -> None:
    assert rule(command, rules=SHELL) == "commands.metacharacter"
    assert rule(command, rules=ANYTHING) is None  # an argv server passes it as written


@BOTH
@pytest.mark.parametrize(
    "command",
    [
        "grep 'a|b' notes.txt",
        "grep 'a;b && c' notes.txt",
        "grep '$(id)' notes.txt",
        "grep '`id`' notes.txt",
        "grep 'a > b' notes.txt",
        "echo 'it''s'",
        "grep a\\|b notes.txt",
        "find . -name '*.py'",
        "find . -exec rm {} \\;",
        "echo \\$HOME",
        "grep foo$ notes.txt",
        'echo "a$"',
        'echo "\\$HOME"',
        "git log HEAD~1",
        "git log HEAD^!",
        "git show HEAD@{1}",
        "git show HEAD:src/a.py",
        "echo a#b",
        "echo 100%",
        "echo a=b",
        "ls ''",
        "grep -e 'x' -- notes.txt",
    ],
)
def test_quoted_and_escaped_metacharacters_are_data(rules: CommandRules, command: str) -> None:
    assert rule(command, rules=rules) is None


@pytest.mark.parametrize(
    "command",
    [
        'grep "a|b" notes.txt',
        'grep "a;b" notes.txt',
        'git log --format="%h %s"',
        'echo "it\'s"',
        'grep "(x)" notes.txt',
        'echo "a > b"',
        'echo "*.py ~ #"',
    ],
)
def test_double_quoted_text_is_data_to_an_argv_server(command: str) -> None:
    assert rule(command, rules=ANYTHING) is None


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ('grep "a|b" notes.txt', ["grep", "a|b", "notes.txt"]),
        ("grep 'a b'  x", ["grep", "a b", "x"]),
        ("echo a\\ b", ["echo", "a b"]),
        ("echo ''", ["echo", ""]),
        ('echo "a\\"b"', ["echo", 'a"b']),
        ('echo "\\$x"', ["echo", "\\$x"]),
        ("echo 'x'\"y\"z", ["echo", "xyz"]),
    ],
)
def test_an_argv_server_gets_the_words_shlex_makes(command: str, words: list[str]) -> None:
    assert shlex.split(command) == words
    allow = CommandRules(allow={words[0]: tuple(re.escape(word) for word in words[1:])})
    assert rule(command, rules=allow) is None


def test_a_shell_server_gets_the_words_the_shell_makes() -> None:
    # Inside double quotes sh takes `\$` as `$` (shlex keeps the backslash).
    assert rule('echo "\\$x"', rules=CommandRules(allow={"echo": (r"\$x",)}, shell=True)) is None
    assert rule('echo "\\$x"', rules=CommandRules(allow={"echo": (r"\\\$x",)})) is None


@BOTH
@pytest.mark.parametrize("command", ["echo 'unterminated", 'echo "unterminated', "echo x\\", "echo 'a' \"b"])
def test_unterminated_quotes_and_a_trailing_backslash_are_refused(rules: CommandRules, command: str) -> None:
    assert rule(command, rules=rules) == "commands.quoting"


@pytest.mark.parametrize(
    "command", ["git log 'quoted'", 'git log "quoted"', "git log \\; id", "git log *", "git log ~root", "git log !!"]
)
def test_data_that_matches_no_pattern_is_still_refused_by_the_patterns(command: str) -> None:
    # These were refused as metacharacters before; quoted, escaped or unexpanded, they are arguments.
    assert rule(command) == "commands.argument"


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
    assert rule(command, rules=CommandRules(allow={}, unlisted="approve")) == "commands.path_executable"


APPROVE = CommandRules(allow={"git": ("status",)}, unlisted="approve")


@pytest.mark.parametrize("command", ["curl https://example.com", ["make", "test"], "sh"])
def test_an_unlisted_executable_goes_to_a_person_when_unlisted_is_approve(command: object) -> None:
    verdict = judge_command(command, None, APPROVE)
    assert isinstance(verdict, NeedsApproval)
    assert verdict.rule == "commands.unlisted"
    refusal = check_command(command, None, APPROVE)  # no approval gate: fail closed
    assert refusal is not None
    assert refusal.rule == "commands.executable"


def test_an_empty_allowlist_sends_everything_to_a_person_when_unlisted_is_approve() -> None:
    assert isinstance(judge_command("ls -la", None, CommandRules(allow={}, unlisted="approve")), NeedsApproval)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("curl x; rm -rf /", "commands.metacharacter"),
        ("FOO=1 curl x", "commands.env_assignment"),
        ("git log", "commands.argument"),
        ("git status", None),
    ],
)
def test_approve_never_softens_the_other_rules(command: str, expected: str | None) -> None:
    verdict = judge_command(command, None, APPROVE)
    assert (verdict.rule if verdict is not None else None) == expected


def test_unlisted_must_be_deny_or_approve() -> None:
    with pytest.raises(ValueError, match="unlisted"):
        CommandRules(allow={}, unlisted="allow")  # pyright: ignore[reportArgumentType]


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


_PLAIN = st.text(alphabet=st.characters(blacklist_characters="'\"\\;&|<>()`$", codec="utf-8"), max_size=12)


@BOTH
@given(_PLAIN, st.sampled_from([";", "&", "&&", "|", "||", "<", ">", ">>", "(", ")", "`", "$(", "${", "$x"]), _PLAIN)
def test_any_unquoted_operator_substitution_or_redirection_is_refused(
    rules: CommandRules, before: str, syntax: str, after: str
) -> None:
    refusal = check_command(f"echo {before}{syntax}{after}", None, rules)
    assert refusal is not None
    assert refusal.rule.startswith("commands.")
    assert refusal.rule != "commands.argument"


@given(st.text(alphabet=st.characters(blacklist_characters="'", codec="utf-8"), max_size=30))
def test_any_single_quoted_text_without_control_characters_is_data(inside: str) -> None:
    refusal = check_command(f"echo '{inside}'", None, SHELL)
    if inside.isprintable():
        assert refusal is None


_TOKENS = st.one_of(st.sampled_from(["status", "log", "diff", "--oneline", "-n"]), st.integers(0, 10**6).map(str))


@given(st.lists(_TOKENS, max_size=8))
def test_any_argv_of_allowed_tokens_passes_in_both_forms(arguments: list[str]) -> None:
    assert rule(["git", *arguments]) is None
    assert rule("git", arguments) is None
    assert rule(" ".join(["git", *arguments])) is None


@BOTH
@given(st.text(alphabet="echo gr'\"\\|;$`*~#{}(),. ab", max_size=40))
def test_the_string_form_never_passes_what_the_argv_form_refuses(rules: CommandRules, command: str) -> None:
    refusal = check_command(command, None, rules)
    if refusal is None:
        argv = shlex.split(command)
        assert argv[0] in rules.allow
        assert check_command(argv, None, rules) is None


@given(st.text(max_size=60))
def test_an_accepted_string_splits_exactly_as_shlex_splits_it(command: str) -> None:
    words = shlex.split(command) if check_command(command, None, ANYTHING) is None else None
    if words is not None:
        only = CommandRules(allow={words[0]: tuple(re.escape(word) for word in words[1:])})
        assert check_command(command, None, only) is None


@given(st.from_type(object), st.one_of(st.none(), st.from_type(object)))
def test_any_value_gets_a_decision_not_an_exception(command: object, args: object) -> None:
    refusal = check_command(command, args, GIT)
    assert refusal is None or refusal.rule.startswith("commands.")


# Tools that run or ping something.


@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("run_command", None),
        ("execute_command", "Execute a command"),
        ("shell", None),
        ("shellExec", None),
        ("bash", None),
        ("terminal_run", None),
        ("exec", None),
        ("run", None),
        ("start_process", "Start a new terminal process with intelligent state detection."),
        ("ping", None),
        ("ping_host", None),
        ("traceroute", None),
        ("nslookup", None),
        ("dns_lookup", "Look a name up with nslookup"),
        ("network_check", "Pings a host and reports the round trip time."),
        ("do_it", "Runs the given shell command and returns its output."),
        ("tool", "Executes an arbitrary program on the host"),
        ("tool", "Run shell commands in a persistent session"),
        ("command", None),
        ("cmd", None),
        ("handle_command", None),
        ("create_command", "Save a command to run later"),
        ("send_command", "Send a command to the tmux pane"),
        ("send_command", "Send a command over SSH"),
    ],
)
def test_tools_that_run_or_ping_something_are_recognised(name: str, description: str | None) -> None:
    assert runs_commands(name, description)


@pytest.mark.parametrize(
    ("name", "description"),
    [
        # The official reference servers' tools run nothing (descriptions as they list them).
        ("read_text_file", "Read the complete contents of a file from the file system as text."),
        ("search_files", "Recursively search for files and directories matching a pattern. Use glob-style patterns."),
        ("edit_file", "Make line-based edits to a text file. Returns a git-style diff showing the changes made."),
        ("git_status", "Shows the working tree status"),
        ("git_show", "Shows the contents of a commit, or of a file or directory given as <revision>:<path>"),
        ("get_current_time", "Get current time in a specific timezone"),
        ("trigger-long-running-operation", "Demonstrates a long running operation with progress updates."),
        ("fetch", "Fetches a URL from the internet and optionally extracts its contents as markdown."),
        # A verb that runs a query, code or tests: its arguments are not command lines.
        ("run_query", "Run a SQL query"),
        ("execute_sql", None),
        ("read_query", "Execute a SELECT query on the SQLite database"),
        ("run_python", "Run Python code in a sandbox"),
        ("execute_code", None),
        ("run_tests", None),
        ("runWorkflow", None),
        ("summarise", "Summarise the running order of the meeting"),
        # A command another verb handles: sent to a device, listed, looked up, explained.
        ("send_command", "Send a device command."),
        ("list_commands", "List the editor's commands"),
        ("get_command_history", None),
        ("explain_command", "Explain what a command line does"),
    ],
)
def test_tools_that_run_nothing_are_not(name: str, description: str | None) -> None:
    assert not runs_commands(name, description)


@pytest.mark.parametrize(
    "value",
    [
        "8.8.8.8; id",
        "8.8.8.8 && id",
        "example.com | sh",
        "$(id)",
        "`id`",
        "${HOME}",
        "example.com > /tmp/x",
        '"; id; "',
        "'; id; '",
        "a\\",
        "host\nid",
        "host\x00",
        "host\u202e",
    ],
)
def test_a_string_pasted_into_a_command_line_may_not_break_out_of_it(value: str) -> None:
    refusal = check_shell_argument(value)
    assert refusal is not None
    assert refusal.rule == "commands.metacharacter"


@pytest.mark.parametrize(
    "value", ["8.8.8.8", "example.com", "2001:db8::1", "host-1.example.com", "a b", "*.txt", "~/x", "#1", "100%"]
)
def test_plain_hosts_names_and_words_pass_the_command_line_argument_check(value: str) -> None:
    assert check_shell_argument(value) is None


@pytest.mark.parametrize("value", [None, 3, ["8.8.8.8; id"], {"a": 1}])
def test_the_command_line_argument_check_judges_strings_only(value: object) -> None:
    assert check_shell_argument(value) is None


# Option injection.


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("revision", "--output=/etc/passwd"),
        ("target", "--upload-pack=touch /tmp/pwned"),
        ("ref", "-c"),
        ("branch", "--exec=sh"),
        ("pattern", "--pre=sh"),
        ("path", "-rf"),
        ("files", ["notes.txt", "--force"]),
        ("host", "-oProxyCommand=id"),
        ("target", "-f"),
        ("base_branch", "  --orphan"),
        ("source_ref", "\uff0d\uff0doutput=x"),  # fullwidth hyphens: NFKC makes them '--'
        ("repo_path", "--git-dir=/tmp/x"),
        ("output_file", "-"),
        ("Pattern", "-e"),
    ],
)
def test_an_option_where_a_ref_pattern_path_or_target_goes_is_refused(name: str, value: object) -> None:
    refusal = check_option_injection(name, value)
    assert refusal is not None
    assert refusal.rule == "commands.option_injection"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("message", "- fix typo"),
        ("query", "-draft notes"),
        ("text", "--verbose is a flag"),
        ("pattern", "a-b"),
        ("path", "./-notes.txt"),
        ("path", "notes-v2.txt"),
        ("target", "HEAD~1"),
        ("branch", "feature/x-y"),
        ("host", "example.com"),
        ("count", "-1"),
        ("files", ["a.txt", "b-c.txt"]),
        ("path", None),
        ("path", 3),
        ("revision", "\u2010flag"),  # a typographic hyphen is not an option to getopt
    ],
)
def test_benign_values_and_other_arguments_pass_the_option_check(name: str, value: object) -> None:
    assert check_option_injection(name, value) is None


@pytest.mark.parametrize(
    "name", ["ref", "revision", "branch_name", "target", "pattern", "path", "repo_path", "files", "host", "my_dir"]
)
def test_option_names_cover_refs_patterns_paths_and_targets(name: str) -> None:
    assert option_name(name)


@pytest.mark.parametrize("name", ["message", "query", "content", "text", "branch_type", "max_count", "title"])
def test_other_names_are_not_option_names(name: str) -> None:
    assert not option_name(name)


@pytest.mark.parametrize(
    ("value", "expected"), [("-x", True), (" -x", True), ("\ufe63x", True), ("x-", False), ("", False)]
)
def test_starts_like_option(value: str, expected: bool) -> None:
    assert starts_like_option(value) is expected

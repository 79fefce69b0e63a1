"""Risk classes of MCP tools: the official servers' tools, lying annotations, tokenising, fail-closed defaults."""

from __future__ import annotations

from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.policy.risk import RISK_ORDER, Classification, classify
from bastion.types import RiskClass

READ, WRITE, NETWORK, DESTRUCTIVE, EXEC = (
    RiskClass.READ,
    RiskClass.WRITE,
    RiskClass.NETWORK,
    RiskClass.DESTRUCTIVE,
    RiskClass.EXEC,
)
STRING = {"type": "string"}
NUMBER = {"type": "number"}
READ_ONLY = {"readOnlyHint": True, "openWorldHint": False}


def tool(name: object, description: object = None, annotations: object = None, **properties: object) -> dict[str, Any]:
    definition: dict[str, Any] = {"name": name, "inputSchema": {"type": "object", "properties": properties}}
    if description is not None:
        definition["description"] = description
    if annotations is not None:
        definition["annotations"] = annotations
    return definition


def risk_of(name: str, **properties: object) -> RiskClass:
    return classify(tool(name, **properties)).risk


# The official reference servers, as they list their tools (trimmed to what the classifier reads).


@pytest.mark.parametrize(
    "name",
    ["read_file", "read_text_file", "read_media_file", "read_multiple_files", "list_directory", "directory_tree"],
)
def test_filesystem_reading_tools_are_read(name: str) -> None:
    assert classify(tool(name, "Read the complete contents of a file", READ_ONLY, path=STRING)).risk is READ


@pytest.mark.parametrize(
    "name", ["list_directory_with_sizes", "search_files", "get_file_info", "list_allowed_directories"]
)
def test_filesystem_listing_and_searching_tools_are_read(name: str) -> None:
    assert classify(tool(name, annotations=READ_ONLY, path=STRING, pattern=STRING)).risk is READ


@pytest.mark.parametrize("name", ["write_file", "edit_file", "create_directory", "move_file"])
def test_filesystem_changing_tools_are_write_by_their_names_alone(name: str) -> None:
    assert risk_of(name, path=STRING) is WRITE


def test_filesystem_write_file_as_served_is_destructive_because_the_server_says_so() -> None:
    served = tool(
        "write_file",
        "Create a new file or completely overwrite an existing file with new content.",
        {"readOnlyHint": False, "idempotentHint": True, "destructiveHint": True, "openWorldHint": False},
        path=STRING,
        content=STRING,
    )
    result = classify(served)
    assert result.risk is DESTRUCTIVE
    assert result.signals == (WRITE, DESTRUCTIVE)
    assert result.reasons[0] == "annotation destructiveHint=true"
    assert "input takes a path and content" in result.reasons
    assert "description says 'overwrite'" in result.reasons


def test_filesystem_create_directory_as_served_is_write() -> None:
    served = tool("create_directory", annotations={"readOnlyHint": False, "destructiveHint": False}, path=STRING)
    assert classify(served).risk is WRITE


@pytest.mark.parametrize(
    "name", ["git_status", "git_diff", "git_diff_staged", "git_diff_unstaged", "git_log", "git_show"]
)
def test_git_inspection_tools_are_read(name: str) -> None:
    assert risk_of(name, repo_path=STRING) is READ


@pytest.mark.parametrize("name", ["git_commit", "git_add", "git_create_branch", "git_checkout", "git_init"])
def test_git_tools_that_change_the_repository_are_write(name: str) -> None:
    assert risk_of(name, repo_path=STRING, files={"type": "array", "items": STRING}) is WRITE


def test_git_reset_is_destructive() -> None:
    assert classify(tool("git_reset", repo_path=STRING)).reasons == ("name contains 'reset'",)
    assert risk_of("git_reset") is DESTRUCTIVE


def test_force_pushing_is_destructive_where_pushing_is_write() -> None:
    assert risk_of("git_push") is WRITE
    assert risk_of("git_push_force") is DESTRUCTIVE
    assert risk_of("forcePush") is DESTRUCTIVE


@pytest.mark.parametrize("name", ["get_current_time", "convert_time"])
def test_time_server_tools_are_read(name: str) -> None:
    served = tool(name, annotations={"readOnlyHint": True, "destructiveHint": False}, timezone=STRING)
    assert classify(served).risk is READ


def test_fetch_reaches_the_network() -> None:
    served = tool(
        "fetch",
        "Fetches a URL from the internet and optionally extracts its contents as markdown.",
        url={"type": "string", "format": "uri"},
        max_length={"type": "integer"},
    )
    result = classify(served)
    assert result.risk is NETWORK
    assert result.reasons == (
        "name contains 'fetch'",
        "description says 'fetches a url'",
        "description says 'from the internet'",
        "input has a 'url' argument",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("echo", READ),
        ("get-sum", READ),
        ("get-env", READ),
        ("printEnv", READ),
        ("getTinyImage", READ),
        ("toggle-simulated-logging", WRITE),
        ("startElicitation", WRITE),
    ],
)
def test_everything_server_tools(name: str, expected: RiskClass) -> None:
    assert risk_of(name, message=STRING) is expected


def test_the_arithmetic_add_is_read_when_every_argument_is_a_number() -> None:
    result = classify(tool("add", "Adds two numbers", a=NUMBER, b={"type": ["integer", "null"]}))
    assert result.risk is READ
    assert result.reasons == ("name contains 'add' and every argument is a number (arithmetic)",)


@pytest.mark.parametrize("properties", [{}, {"a": NUMBER, "label": STRING}, {"a": {}}, {"a": True}])
def test_add_is_write_unless_its_arguments_are_all_declared_numbers(properties: dict[str, object]) -> None:
    assert risk_of("add", **properties) is WRITE


def test_long_running_and_sampling_demos_have_no_evidence_so_they_fail_closed_to_write() -> None:
    for name in ("longRunningOperation", "sampleLLM"):
        assert classify(tool(name)).reasons == ("no evidence of read-only behaviour",)


def test_a_side_effect_verb_outweighs_read_only_hint() -> None:
    served = tool("trigger-long-running-operation", annotations=READ_ONLY, duration=NUMBER)
    assert classify(served).risk is WRITE


def test_openworld_hint_makes_a_tool_network() -> None:
    served = tool(
        "gzip-file-as-resource", annotations={"readOnlyHint": False, "openWorldHint": True}, outputType=STRING
    )
    assert classify(served).risk is NETWORK


@pytest.mark.parametrize(
    "name", ["run_command", "execute_command", "bash", "shell", "run-shell", "runScript", "exec", "spawn_process"]
)
def test_shell_tools_are_exec(name: str) -> None:
    assert risk_of(name) is EXEC


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("read_query", READ),
        ("query", READ),
        ("list_tables", READ),
        ("describe_table", READ),
        ("write_query", WRITE),
        ("create_table", WRITE),
        ("append_insight", WRITE),
        ("execute_sql", WRITE),
        ("run_query", WRITE),
        ("drop_table", DESTRUCTIVE),
        ("execute", EXEC),
    ],
)
def test_sql_tools(name: str, expected: RiskClass) -> None:
    assert risk_of(name, query=STRING) is expected


# Annotations can only add danger.


def test_read_only_hint_cannot_hide_a_destructive_name() -> None:
    result = classify(tool("delete_everything", annotations={"readOnlyHint": True}))
    assert result.risk is DESTRUCTIVE
    assert result.signals == (READ, DESTRUCTIVE)
    assert result.reasons == ("name contains 'delete'", "annotation readOnlyHint=true")


def test_destructive_hint_makes_a_getter_destructive() -> None:
    result = classify(tool("get_thing", annotations={"destructiveHint": True}))
    assert result.risk is DESTRUCTIVE
    assert result.reasons == ("annotation destructiveHint=true", "name contains 'get'")


def test_read_only_hint_alone_is_read_evidence() -> None:
    result = classify(tool("frobnicate", annotations={"readOnlyHint": True}))
    assert (result.risk, result.reasons) == (READ, ("annotation readOnlyHint=true",))


def test_read_only_hint_false_alone_is_write() -> None:
    result = classify(tool("frobnicate", annotations={"readOnlyHint": False}))
    assert (result.risk, result.reasons) == (WRITE, ("annotation readOnlyHint=false",))


def test_hints_that_claim_safety_lower_nothing() -> None:
    calm = {"destructiveHint": False, "openWorldHint": False, "idempotentHint": True, "readOnlyHint": True}
    assert classify(tool("rm", annotations=calm)).risk is DESTRUCTIVE
    assert classify(tool("curl", annotations=calm)).risk is NETWORK


def test_absent_destructive_hint_is_not_assumed_from_the_spec_default() -> None:
    assert classify(tool("frobnicate", annotations={"readOnlyHint": False, "title": "Frobnicate"})).risk is WRITE


def test_a_destructive_title_counts_but_a_reading_title_does_not() -> None:
    assert classify({"name": "op", "title": "Delete Repository"}).risk is DESTRUCTIVE
    assert classify(tool("op", annotations={"title": "Run Shell"})).risk is WRITE  # prose: only strong verbs
    assert classify({"name": "op", "title": "Read File"}).risk is WRITE


# Tokenising: whole words, camelCase, kebab-case, dotted and namespaced names.


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("deleteFile", DESTRUCTIVE),
        ("DELETE_FILE", DESTRUCTIVE),
        ("files.delete", DESTRUCTIVE),
        ("mcp__github__create_issue", WRITE),
        ("github/get-issue", READ),
        ("HTTPRequest", NETWORK),
        ("getURL", NETWORK),
        ("brave_web_search", NETWORK),
        ("browser_navigate", NETWORK),
        ("send_email", NETWORK),
        ("slack_post_message", NETWORK),
        ("search_and_replace", WRITE),
        ("find_and_delete", DESTRUCTIVE),
    ],
)
def test_names_are_split_into_words(name: str, expected: RiskClass) -> None:
    assert risk_of(name) is expected


@pytest.mark.parametrize(
    "name",
    [
        "get_address",  # not 'add'
        "get_readme",  # 'readme' is not 'read' (and 'get' is the read evidence)
        "get_settings",  # not 'set'
        "list_datasets",
        "count_accounts",
        "get_skill",  # not 'kill'
        "describe_category",  # 'category' is not 'cat'
        "get_post_title",  # 'post' is the object of 'get'
        "list_posts",  # plurals are nouns
        "list_commits",
        "show_commit",
        "get_command_history",
        "get_workflow_run",
        "list_runs",
        "list_pull_requests",
        "get_checkout_session",
    ],
)
def test_words_inside_words_and_nouns_after_a_read_verb_are_not_evidence(name: str) -> None:
    assert risk_of(name) is READ


@pytest.mark.parametrize("name", ["scheduled_task", "cmdline_parser", "executor_pool", "running_total", "nodejs"])
def test_near_misses_of_dangerous_words_are_no_evidence_at_all(name: str) -> None:
    assert classify(tool(name)).reasons == ("no evidence of read-only behaviour",)


def test_a_strong_verb_counts_even_after_a_read_verb() -> None:
    assert risk_of("get_and_delete_item") is DESTRUCTIVE
    assert risk_of("read_then_execute") is EXEC


def test_a_pull_request_is_a_noun() -> None:
    assert risk_of("create_pull_request") is WRITE
    assert risk_of("merge_pull_request") is WRITE


def test_a_name_with_non_ascii_characters_is_never_read() -> None:
    result = classify(tool("get_d\u0435lete_all"))  # a Cyrillic 'ie' splits the word
    assert result.risk is WRITE
    assert "name has non-ASCII characters" in result.reasons


# Description and schema evidence.


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Executes a shell command on the host.", EXEC),
        ("Permanently removes the record.", DESTRUCTIVE),
        ("Deletes the branch.", DESTRUCTIVE),
        ("This cannot be undone!", DESTRUCTIVE),
        ("The change can't be undone.", DESTRUCTIVE),
        ("Writes to the configuration file.", WRITE),
        ("Sends an email to the recipient.", NETWORK),
        ("Makes HTTP requests on your behalf.", NETWORK),
    ],
)
def test_strong_description_phrases_add_danger(description: str, expected: RiskClass) -> None:
    assert classify(tool("get_item", description)).risk is expected


@pytest.mark.parametrize(
    "description",
    ["Lists undeleted items.", "Shows the rewrites", "Returns the shell's command history", "Reads a file."],
)
def test_descriptions_match_whole_phrases_only_and_never_give_read_evidence(description: str) -> None:
    assert classify(tool("get_item", description)).risk is READ
    assert classify(tool("frobnicate", description)).risk is WRITE


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"command": STRING}, EXEC),
        ({"commandLine": STRING}, EXEC),
        ({"cmd": {"type": "array", "items": STRING}}, EXEC),
        ({"code": {}}, EXEC),
        ({"script": True}, EXEC),
        ({"url": STRING}, NETWORK),
        ({"webhookUrl": STRING}, NETWORK),
        ({"target": {"type": "string", "format": "uri"}}, NETWORK),
        ({"targets": {"type": "array", "items": {"type": "string", "format": "URL"}}}, NETWORK),
        ({"to": STRING, "subject": STRING, "body": STRING}, NETWORK),
        ({"path": STRING, "content": STRING}, WRITE),
        ({"filePath": STRING, "contents": STRING}, WRITE),
    ],
)
def test_input_schema_arguments_add_danger(properties: dict[str, object], expected: RiskClass) -> None:
    assert risk_of("get_item", **properties) is expected


@pytest.mark.parametrize(
    "properties",
    [
        {"country_code": STRING},
        {"code": {"type": "integer"}},
        {"command": {"type": "boolean"}},
        {"uri": STRING},
        {"path": STRING},
        {"content": STRING},
        {"format": {"type": "string", "format": ["uri"]}},
    ],
)
def test_harmless_arguments_add_nothing(properties: dict[str, object]) -> None:
    assert risk_of("get_item", **properties) is READ


def test_a_query_argument_is_read_evidence_on_its_own() -> None:
    result = classify(tool("sqlite", query=STRING))
    assert (result.risk, result.reasons) == (READ, ("input has a 'query' argument",))


# Fail closed, overrides, and the shape of a classification.


def test_a_tool_with_no_evidence_is_write() -> None:
    assert classify(tool("frobnicate")) == Classification(
        WRITE, (WRITE,), ("no evidence of read-only behaviour",), "derived"
    )


def test_an_override_wins_and_keeps_the_evidence() -> None:
    result = classify(tool("delete_cache", "Deletes the cache."), override=READ)
    assert result == Classification(
        READ,
        (DESTRUCTIVE,),
        ("configured risk override", "name contains 'delete'", "description says 'deletes'"),
        "override",
    )


def test_an_override_can_raise_the_class_of_a_read_tool() -> None:
    assert classify(tool("read_file"), override=EXEC).risk is EXEC


def test_signals_are_ordered_by_danger_and_reasons_list_the_most_dangerous_first() -> None:
    result = classify(tool("read_and_write", "Executes a shell command.", {"openWorldHint": True}, url=STRING))
    assert result.signals == (READ, WRITE, NETWORK, EXEC)
    assert result.reasons == (
        "description says 'shell command'",
        "input has a 'url' argument",
        "annotation openWorldHint=true",
        "name contains 'write'",
        "name contains 'read'",
    )


def test_repeated_evidence_is_listed_once() -> None:
    assert classify(tool("delete_delete")).reasons == ("name contains 'delete'",)


def test_the_risk_order_lists_every_class_once_from_read_to_exec() -> None:
    assert RISK_ORDER == (READ, WRITE, NETWORK, DESTRUCTIVE, EXEC)
    assert set(RISK_ORDER) == set(RiskClass)


def test_a_very_long_name_is_classified() -> None:
    assert risk_of("A" * 50_000 + "a" * 50_000 + "_delete") is DESTRUCTIVE


# Malformed definitions come from untrusted servers: never raise, never READ.


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        ({"name": 42, "annotations": READ_ONLY}, "name is missing or not a string"),
        ({"annotations": READ_ONLY}, "name is missing or not a string"),
        ({"name": "", "annotations": READ_ONLY}, "name is missing or not a string"),
        ({"name": "read_file", "annotations": ["readOnlyHint"]}, "annotations are not an object"),
        ({"name": "read_file", "annotations": {"readOnlyHint": "true"}}, "annotation readOnlyHint is not a boolean"),
        ({"name": "read_file", "annotations": {"destructiveHint": 1}}, "annotation destructiveHint is not a boolean"),
        ({"name": "read_file", "inputSchema": "object"}, "input schema is not an object"),
        ({"name": "read_file", "inputSchema": {"properties": []}}, "input schema properties are not an object"),
        ({"name": "read_file", "description": ["Reads"]}, "description is not a string"),
        ({"name": "read_file", "title": {"en": "Read"}}, "title is not a string"),
        ({"name": "read_file", "annotations": {"title": 3}}, "annotation title is not a string"),
    ],
)
def test_malformed_fields_are_write_evidence(definition: dict[str, Any], reason: str) -> None:
    result = classify(definition)
    assert result.risk is WRITE
    assert reason in result.reasons


def test_a_definition_that_is_not_an_object_is_write() -> None:
    result = classify(cast("dict[str, Any]", ["read_file"]))
    assert (result.risk, result.reasons) == (WRITE, ("tool definition is not an object",))


def test_json_nulls_are_absent_fields() -> None:
    definition = {"name": "read_file", "title": None, "description": None, "annotations": None, "inputSchema": None}
    assert classify(definition).risk is READ


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
WORDS = st.sampled_from(
    ["get", "Delete", "run", "post", "force", "push", "add", "pull", "request", "execute", "SQL", "x"]
)
NAMES = st.lists(WORDS, max_size=5).flatmap(
    lambda words: st.sampled_from(["_", "-", ".", ""]).map(lambda sep: sep.join(words))
)
HINT = st.sampled_from(["readOnlyHint", "destructiveHint", "openWorldHint", "idempotentHint", "title"])
TOOLS = cast(
    "st.SearchStrategy[dict[str, Any]]",
    st.one_of(
        st.dictionaries(st.text(max_size=12), JSON, max_size=6),
        st.fixed_dictionaries(
            {},
            optional={
                "name": NAMES | st.text(max_size=30) | JSON,
                "title": st.text(max_size=30) | JSON,
                "description": st.text(max_size=80) | JSON,
                "annotations": st.dictionaries(HINT, JSON | st.booleans(), max_size=5) | JSON,
                "inputSchema": st.fixed_dictionaries(
                    {}, optional={"properties": st.dictionaries(st.text(max_size=12), JSON, max_size=5) | JSON}
                )
                | JSON,
            },
        ),
    ),
)


@given(TOOLS, st.none() | st.sampled_from(RiskClass))
def test_classify_never_raises_and_its_answer_is_consistent(
    definition: dict[str, Any], override: RiskClass | None
) -> None:
    result = classify(definition, override)
    assert isinstance(result.risk, RiskClass)
    assert result.signals
    assert list(result.signals) == sorted(set(result.signals), key=RISK_ORDER.index)
    assert len(result.reasons) == len(set(result.reasons)) >= len(result.signals)
    assert all(reason.isascii() and reason.isprintable() for reason in result.reasons)
    if override is None:
        assert (result.source, result.risk) == ("derived", result.signals[-1])
    else:
        assert (result.source, result.risk, result.reasons[0]) == ("override", override, "configured risk override")


@given(st.one_of(st.integers(), st.none(), st.lists(st.text(max_size=5)), st.dictionaries(st.text(max_size=5), JSON)))
def test_a_malformed_name_falls_back_to_a_dangerous_class_with_a_reason(name: object) -> None:
    result = classify({"name": name, "annotations": {"readOnlyHint": True}})
    assert result.risk is not READ
    assert "name is missing or not a string" in result.reasons

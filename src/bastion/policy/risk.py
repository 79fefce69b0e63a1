"""Risk classification of MCP tools: read, write, network, destructive, exec.

`classify` looks at a tool definition as the server sent it and collects evidence, each piece
pointing at one class and carrying a reason. The overall class is the most dangerous class any
evidence points at, in `RISK_ORDER`: READ < WRITE < NETWORK < DESTRUCTIVE < EXEC. NETWORK ranks
above WRITE because reaching outside systems is how data leaves and effects there cannot be
undone locally; DESTRUCTIVE above that because loss is irreversible; EXEC on top because running
arbitrary programs subsumes every other class.

Evidence, in order of weight:

* The name, split into lower-case words at `_`, `-`, `.`, `/`, spaces, digits and camelCase humps
  (`deleteFile`, `run-shell`, `git_commit`). Only whole words and a few two-word compounds
  (`force push`, `pull request`, `execute sql`) match, so `get_address` is not `add`, `readme` is
  not `read`, `settings` is not `set` and `scheduled_task` is not anything. Words that are also
  common nouns (post, update, commit, run, command, script, ...) are ignored after a read verb:
  `get_post_title`, `show_commit` and `get_command_history` read; plurals are nouns
  (`list_commits`). A name with non-ASCII characters cannot be split reliably and counts as WRITE.
* The titles (`title`, `annotations.title`): only unambiguous verbs (delete, execute, write ...),
  since titles are prose.
* The description: only strong phrases, matched as whole words ("shell command", "deletes",
  "permanently", "writes", "sends an email", "HTTP requests", "from the internet"). Negations are
  not understood, which errs towards danger.
* The input schema's top-level properties: a `command`/`cmd`/`script`/`code` argument that may be a
  string is EXEC; an argument named `*url` or with format uri/url/iri is NETWORK; `to` + `subject`
  is NETWORK (mail); `path` + `content` is WRITE; `sql`/`query` is READ.
* Annotations come from an untrusted server, so they can only add danger: `destructiveHint=true`
  is DESTRUCTIVE, `openWorldHint=true` NETWORK, `readOnlyHint=false` WRITE. `readOnlyHint=true` is
  read evidence that never outweighs anything else. Absent hints are no evidence (the spec's
  default destructiveHint=true for non-read-only tools is not assumed).

Decisions:

* Fail closed: READ needs positive evidence (a read word in the name, a `query` argument, or
  `readOnlyHint=true`). A tool with no evidence at all is WRITE, "no evidence of read-only
  behaviour". Malformed fields (a name that is not a string, annotations that are not an object,
  a hint that is not a boolean ...) are WRITE evidence too, so a broken definition is never READ.
* `fetch` is NETWORK (the reference fetch server); so is anything reading from the web or mail.
* Arbitrary SQL (`execute_sql`, `run_query`, `write_query`) is WRITE, not EXEC: it changes data but
  does not run host programs. `query` and `read_query` are READ. A bare `execute` is EXEC.
* `add` whose arguments are all numbers is arithmetic (READ), as in the everything server; `git_add`
  is WRITE. Pure verbs (echo, convert, calculate, print) are READ.
* `git_reset` is DESTRUCTIVE (reset), `git_checkout` and `git_commit` WRITE.
* Reasons quote only words from the vocabulary below or normalised argument names, never raw server
  text, so they are safe to print. They are listed most dangerous first.

A config override wins (source "override", first reason "configured risk override"); the derived
signals and reasons are kept for display. The module is pure and does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from bastion.types import RiskClass

__all__ = ["RISK_ORDER", "Classification", "classify"]


RISK_ORDER: tuple[RiskClass, ...] = (
    RiskClass.READ,
    RiskClass.WRITE,
    RiskClass.NETWORK,
    RiskClass.DESTRUCTIVE,
    RiskClass.EXEC,
)
"""Least to most dangerous; the overall class is the most dangerous signal."""


@dataclass(frozen=True, slots=True)
class Classification:
    risk: RiskClass
    signals: tuple[RiskClass, ...]
    reasons: tuple[str, ...]
    source: Literal["derived", "override"]


_R, _W, _N, _D, _X = RiskClass.READ, RiskClass.WRITE, RiskClass.NETWORK, RiskClass.DESTRUCTIVE, RiskClass.EXEC

# Read verbs mark what follows them as their object; read nouns are evidence but mark nothing.
_READ_VERBS = frozenset(
    "read get list search find query show describe view cat ls lookup count inspect check preview retrieve "
    "grep glob stat print echo explain summarize calculate compute convert validate verify peek display "
    "analyze sum multiply subtract divide".split()
)
_READ_NOUNS = frozenset(
    "status info diff log logs tree stats history metadata details docs help version whoami".split()
)
# Words that name an action whatever their position.
_STRONG: dict[RiskClass, frozenset[str]] = {
    _X: frozenset("exec execute eval spawn subprocess sudo powershell pwsh zsh sh".split()),
    _D: frozenset(
        "delete del remove rm rmdir drop truncate destroy purge kill wipe erase reset revoke unlink terminate "
        "uninstall discard prune shred evict expunge nuke obliterate clear forcepush".split()
    ),
    _W: frozenset(
        "write create insert put rename save modify append install mkdir overwrite replace upsert submit publish "
        "init initialize toggle enable disable restart rebase revert rollback undo approve reject assign unassign "
        "unregister subscribe unsubscribe configure bump attach alter".split()
    ),
    _N: frozenset(
        "fetch http https url urls curl wget browse browser navigate download webhook web webpage website "
        "internet online email mail gmail sendmail sms slack websearch puppeteer google bing duckduckgo".split()
    ),
}
# Words that are also common nouns: evidence only when no read verb comes before them.
_WEAK: dict[RiskClass, frozenset[str]] = {
    _X: frozenset("run command cmd script shell bash terminal python repl interpreter invoke ssh".split()),
    _D: frozenset("deletion removal".split()),
    _W: frozenset(
        "update edit set post add move copy commit push upload patch send deploy merge apply stage tag release "
        "pull order comment label schedule start stop sync import share lock unlock transfer draft reply change "
        "fork clone record cancel close dispatch invite grant backup store checkout archive register trigger "
        "mark touch".split()
    ),
}
_WORDS: dict[str, tuple[RiskClass, bool]] = {
    **dict.fromkeys(_READ_VERBS | _READ_NOUNS, (_R, False)),
    **{word: (risk, False) for risk, words in _STRONG.items() for word in words},
    **{word: (risk, True) for risk, words in _WEAK.items() for word in words},
}
# Two-word compounds, matched before single words; None neutralises both words.
_COMPOUNDS: dict[tuple[str, str], RiskClass | None] = {
    ("force", "push"): _D,
    ("push", "force"): _D,
    ("rm", "rf"): _D,
    ("hard", "reset"): _D,
    ("cherry", "pick"): _W,
    ("look", "up"): _R,
    ("dry", "run"): None,
    ("send", "mail"): _N,
    ("send", "email"): _N,
    ("web", "search"): _N,
    ("search", "web"): _N,
    **{(noun, plural): None for noun in ("pull", "merge") for plural in ("request", "requests")},
    **{(verb, what): _W for verb in ("execute", "exec", "run") for what in ("sql", "query", "statement")},
    **{("sql", verb): _W for verb in ("execute", "exec", "run")},
}
# Description phrases, matched as whole words ("can't" reads as "can t").
_PHRASES: dict[RiskClass, tuple[str, ...]] = {
    _X: tuple(
        "shell command|shell commands|terminal command|bash command|system command|arbitrary code|arbitrary command|"
        "arbitrary commands|execute code|executes code|executes a command|executes the command|runs a command|"
        "execute python|executes python|execute javascript|executes javascript".split("|")
    ),
    _D: tuple(
        "deletes|permanently|force push|irreversible|irreversibly|destroys|erases|wipes|cannot be undone|"
        "not be undone|can t be undone".split("|")
    ),
    _W: tuple("writes|overwrite|overwrites|modifies|appends|creates a new".split("|")),
    _N: tuple(
        "sends an email|send an email|sends email|sends emails|http request|http requests|fetches a url|fetches url|"
        "from the internet|searches the web|search the web|web search".split("|")
    ),
}


def _index_phrases() -> dict[str, list[tuple[tuple[str, ...], RiskClass]]]:
    """Phrases by their first word, so a description is scanned once."""
    index: dict[str, list[tuple[tuple[str, ...], RiskClass]]] = {}
    for risk, texts in _PHRASES.items():
        for text in texts:
            words = tuple(text.split())
            index.setdefault(words[0], []).append((words, risk))
    return index


_PHRASES_BY_START = _index_phrases()
_EXEC_ARGS = frozenset(
    "command cmd commands script code shell shell_command command_line commandline cmdline bash_command "
    "source_code python_code javascript_code js_code".split()
)
_QUERY_ARGS = frozenset("sql query sql_query statement".split())
_CONTENT_ARGS = frozenset("content contents file_content new_content".split())
_PATH_ARGS = frozenset("path file file_path filepath filename destination target_path".split())
_URL_FORMATS = frozenset({"uri", "url", "iri"})
_NUMERIC = frozenset({"number", "integer"})
_HINTS = (("destructiveHint", True, _D), ("openWorldHint", True, _N), ("readOnlyHint", False, _W))
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_PLAIN_WORD = re.compile(r"[a-z0-9]+")


class _Evidence:
    """Reasons in the order found, each with the class it points at; a repeated reason counts once."""

    __slots__ = ("found",)

    def __init__(self) -> None:
        self.found: dict[str, RiskClass] = {}

    def add(self, risk: RiskClass, reason: str) -> None:
        self.found.setdefault(reason, risk)


def classify(tool: Mapping[str, Any], override: RiskClass | None = None) -> Classification:
    """The risk class of one tool definition (a raw MCP Tool object); never raises on malformed input."""
    evidence = _Evidence()
    definition = _mapping(cast("object", tool))
    if definition is None:
        evidence.add(_W, "tool definition is not an object")
    else:
        _gather(definition, evidence)
    if not evidence.found:
        evidence.add(_W, "no evidence of read-only behaviour")
    signals = tuple(risk for risk in RISK_ORDER if risk in evidence.found.values())
    reasons = tuple(
        reason for risk in reversed(RISK_ORDER) for reason, found in evidence.found.items() if found is risk
    )
    if override is not None:
        return Classification(RiskClass(override), signals, ("configured risk override", *reasons), "override")
    return Classification(signals[-1], signals, reasons, "derived")


def _gather(tool: Mapping[str, object], evidence: _Evidence) -> None:
    properties = _properties(tool.get("inputSchema"), evidence)
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        evidence.add(_W, "name is missing or not a string")
    else:
        if not name.isascii():
            evidence.add(_W, "name has non-ASCII characters")
        _words_evidence(_split(name), "name", evidence, arithmetic=_all_numeric(properties), titles=False)
    annotations = tool.get("annotations")
    hints = _mapping(annotations)
    if hints is None and annotations is not None:
        evidence.add(_W, "annotations are not an object")
    for source, title in (("title", tool.get("title")), ("annotation title", (hints or {}).get("title"))):
        if isinstance(title, str):
            _words_evidence(_split(title), source, evidence, arithmetic=False, titles=True)
        elif title is not None:
            evidence.add(_W, f"{source} is not a string")
    description = tool.get("description")
    if isinstance(description, str):
        _description_evidence(description, evidence)
    elif description is not None:
        evidence.add(_W, "description is not a string")
    if properties:
        _schema_evidence(properties, evidence)
    if hints is not None:
        _hint_evidence(hints, evidence)


def _split(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def _words_evidence(words: list[str], source: str, evidence: _Evidence, *, arithmetic: bool, titles: bool) -> None:
    after_read_verb = False
    index = 0
    while index < len(words):
        pair = (words[index], words[index + 1]) if index + 1 < len(words) else None
        if pair is not None and pair in _COMPOUNDS:
            risk = _COMPOUNDS[pair]
            after_read_verb = after_read_verb or risk is _R
            if risk is not None and not (titles and risk is _R):
                evidence.add(risk, f"{source} contains '{pair[0]} {pair[1]}'")
            index += 2
            continue
        word = words[index]
        index += 1
        entry = _WORDS.get(word)
        if entry is None:
            continue
        risk, weak = entry
        if risk is _R:
            after_read_verb = after_read_verb or word in _READ_VERBS
            if not titles:
                evidence.add(_R, f"{source} contains {word!r}")
        elif weak and (after_read_verb or titles):
            continue
        elif word == "add" and arithmetic:
            evidence.add(_R, f"{source} contains 'add' and every argument is a number (arithmetic)")
        else:
            evidence.add(risk, f"{source} contains {word!r}")


def _description_evidence(description: str, evidence: _Evidence) -> None:
    words = _PLAIN_WORD.findall(description.lower())
    for index, word in enumerate(words):
        for phrase, risk in _PHRASES_BY_START.get(word, ()):
            if tuple(words[index : index + len(phrase)]) == phrase:
                evidence.add(risk, f"description says {' '.join(phrase)!r}")


def _properties(schema: object, evidence: _Evidence) -> list[tuple[str, object]]:
    """The input schema's top-level properties by normalised name (lower snake case, safe to print)."""
    if schema is None:
        return []
    mapping = _mapping(schema)
    if mapping is None:
        evidence.add(_W, "input schema is not an object")
        return []
    properties = mapping.get("properties")
    if properties is None:
        return []
    found = _mapping(properties)
    if found is None:
        evidence.add(_W, "input schema properties are not an object")
        return []
    return [("_".join(_split(str(key)))[:40], spec) for key, spec in found.items()]


def _schema_evidence(properties: list[tuple[str, object]], evidence: _Evidence) -> None:
    for key, spec in properties:
        schema = _mapping(spec) or {}
        if key in _EXEC_ARGS and _may_be_string(schema):
            evidence.add(_X, f"input has a {key!r} argument")
        if key.rsplit("_", 1)[-1] in {"url", "urls"}:
            evidence.add(_N, f"input has a {key!r} argument")
        elif _has_url_format(schema):
            evidence.add(_N, f"input {key!r} is a URL")
        if key in _QUERY_ARGS:
            evidence.add(_R, f"input has a {key!r} argument")
    keys = {key for key, _ in properties}
    if {"to", "subject"} <= keys:
        evidence.add(_N, "input looks like an email (to, subject)")
    if keys & _CONTENT_ARGS and keys & _PATH_ARGS:
        evidence.add(_W, "input takes a path and content")


def _hint_evidence(hints: Mapping[str, object], evidence: _Evidence) -> None:
    for hint, value, risk in _HINTS:
        given = hints.get(hint)
        if given is not None and not isinstance(given, bool):
            evidence.add(_W, f"annotation {hint} is not a boolean")
        elif given is value:
            evidence.add(risk, f"annotation {hint}={str(value).lower()}")
    if hints.get("readOnlyHint") is True:
        evidence.add(_R, "annotation readOnlyHint=true")


def _mapping(value: object) -> Mapping[str, object] | None:
    return cast("Mapping[str, object]", value) if isinstance(value, Mapping) else None


def _types(schema: Mapping[str, object]) -> set[str] | None:
    """The JSON types a schema declares, or None when it declares none (anything goes)."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {item for item in cast("list[object]", declared) if isinstance(item, str)}
    return None


def _may_be_string(schema: Mapping[str, object]) -> bool:
    types = _types(schema)
    return types is None or bool(types & {"string", "array"})


def _has_url_format(schema: Mapping[str, object]) -> bool:
    items = _mapping(schema.get("items")) or {}
    formats = (spec.get("format") for spec in (schema, items))
    return any(isinstance(value, str) and value.lower() in _URL_FORMATS for value in formats)


def _all_numeric(properties: list[tuple[str, object]]) -> bool:
    """True when there are arguments and every one is declared a number (so `add` is arithmetic)."""
    return bool(properties) and all(_is_numeric(_mapping(spec)) for _, spec in properties)


def _is_numeric(schema: Mapping[str, object] | None) -> bool:
    types = _types(schema) if schema is not None else None
    return types is not None and bool(types & _NUMERIC) and types <= _NUMERIC | {"null"}

"""Injection heuristics: text that reads as instructions aimed at the model. Pure.

Injection heuristics (`injection_findings`; `injection_scan` also says what a strip removes),
each occurrence scored from its rule's base:

  injection.override       "ignore/disregard/forget … previous/prior/system … instructions",
                           "new instructions:", "your new task is", "from now on, you …"    2
  injection.secrecy        "do not tell the user", "without informing the user", "keep this
                           secret from", "silently send", "the user must not know"          2
  injection.hidden_tag     a closed <IMPORTANT>, <SYSTEM>, <instructions>, <secret>, <hidden>,
                           <critical>, <admin> … block: 1, 2 when it holds four words, +1
                           when it holds an instruction; an unclosed one 1; an HTML comment
                           addressed to the AI ("<!-- AI agent: ignore …")                  2
  injection.chat_template  <|im_start|>, <|system|>, <|endoftext|> (any <|word|>), [INST],
                           <<SYS>>, <start_of_turn>, and </s> when it closes nothing (1); +1
                           before a role word or beside another kind of token               2
  injection.role           a line opening with "System:", "Assistant:", "Human:",
                           "Developer:", "[SYSTEM]" (1) or "User:" (0); "\\n\\nHuman:" and
                           "the user has asked you to" (2); +1 when the line goes on with an
                           instruction, +1 when two roles appear (a forged conversation)
  injection.precondition   "before using this tool, read/send/include …"; +1 for a file,
                           path, key or credential in the sentence                          1
  injection.sensitive_file ~/.ssh, id_rsa, /etc/passwd, .aws/credentials, .netrc, .npmrc,
                           .pypirc, .kube/config, mcp.json, shell history … (1), .env (0);
                           +1 for a verb that reads or moves data, -1 for one forbidden
                           ("never share ~/.ssh/id_*"); in a result, a mention with neither
                           an order nor such a verb is 0; `.pub` keys are public
  injection.data_flow      "pass/send/include … its content/the conversation/the file …
                           as/to/into …" (the object names data: "the logs", not "logs");
                           +1 when the destination is a parameter, a tool, a URL, an
                           e-mail address or a quoted name                                  1
  injection.credentials    "API key", "credentials", "password", "private key", "access
                           token", "seed phrase" …; +1 for a verb that moves data           0
  injection.tool_call      "call/invoke/use the x tool", "call send_email with …"; +1 for
                           urgency ("immediately", "now", "without asking")                 0
  injection.addressed      words addressed to the model: "Note to AI assistants", "instructions
                           for the agent", "AI agent:", "Assistant, …", "@assistant", "if you
                           are an AI", "to you, the AI model", "P.S. for the AI" (2); +1 when
                           what follows in the paragraph tells it to do something           2
  injection.mode_switch    "you are now in developer/admin … mode", "[ADMIN MODE ENABLED]"
                           (2), "entering god mode" (1); +1 for "restrictions lifted",
                           "safety does not apply", "must"                                  2
  injection.escalation     a retry with more privilege: "call X again with sudo: true",
                           "retry with the safety check disabled"; +1 for a tool's syntax
                           (`flag: true`, backticks) or words aimed at the model            1
  injection.data_flow (2)  what the model holds (the conversation, its system prompt, every
                           message, the user's keys, passwords or files, environment
                           variables) after a verb that hands it over ("pass", "send",
                           "include", "call X with", "must contain"); +1 for a destination  2
  injection.data_flow (2)  credentials handed on: an order to send "these", "it", "them" to
                           a URL or e-mail address after a credential, a sensitive file or
                           a secret (within 200 characters), or a call written out with a
                           credential placeholder for the model to fill
                           (`verify(token=<your token>)`)                                   2
  injection.false_error    a failure said as a message ("Error: …", "denied", "not
                           permitted"), then within 200 characters a hint sending the model
                           to a named tool ("retry with run_shell(…)", "switch to the
                           `x` tool"); +1 for privilege, words aimed at the model or no
                           asking; +1 for a tool the server does not list                   1
  injection.tool_transfer  with the server's tool names known (`listed`): "call/use/run/hand
                           off to X" where X reads as a tool name and is not listed; 1 when
                           named as a tool, a function or on a server, else 0; +1 for an
                           errand beyond the call ("also", "immediately", "no need to
                           confirm", "send it the results above")                           0-1
  injection.secrecy (1)    "no need to confirm with the user", "without asking the user"    1

A prohibition is no order: a sentence or clause that opens with "do not", "never", "avoid"
is not imperative, and a verb that moves data does not boost when it is forbidden ("never
share ~/.ssh/id_*"). A command in backticks that the sentence describes ("`cat x` shows …") is
read as a citation, and its own verb does not boost. Rules that see one phrase count once when
signals corroborate: the data rules on one phrase, and `tool_call`, `false_error` and
`tool_transfer` on one call.

Role markers count at the start of a line and where a sentence or a quoted value opens
("note": "Assistant: …"); a turn adds 1 when it opens with an action verb and 2 when it orders
the model to drop its rules or opens with a harmful verb ("delete", "send", "read" …), and a
second role adds 1 only when some turn gives an order (a transcript of answers is not a
forgery).

Then +1 when said in the imperative (the sentence, or its last clause, opens with the hit or
with an action verb, after lead-ins such as "please", "IMPORTANT:", "you must"; a noun such as
a path or "password" needs the verb); -1 when quoted as a citation (a short quotation inside
prose, not a JSON value, or a block quote in a text that discusses attacks) or, in a text that discusses attacks ("injection", "attacker",
"jailbreak" …), when not imperative; -2 inside code (a fenced block; backticks too, except
around a path). Independent signals corroborate each other: when two rules score 2 or more,
or one does and three score 1 or more, every occurrence with a positive score gains 1.
Finally 3 or more is HIGH, 2 MEDIUM, 1 LOW, and less is not reported. One quoted mention is
LOW at most; HIGH needs a strong signal in the imperative or several independent ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bastion.screen._rules import (
    ACTION_VERB,
    ADDRESSED,
    AI_ADDRESS,
    CALLS,
    DESTINATION,
    DISCUSSION,
    FAILURES,
    FALSE_ERROR,
    FALSE_ERROR_BOOST,
    HANDOVER,
    LEAD_INS,
    MOVE_VERB,
    RULES,
    SENSITIVE_HEADS_OWNED,
    Rule,
    w,
)
from bastion.screen._scan import finditer_at
from bastion.screen.findings import Finding, Severity, excerpt
from bastion.screen.index import TextIndex, vocabulary
from bastion.screen.secrets import secrets

__all__ = ["InjectionScan", "injection_findings", "injection_scan"]


_ANGLE = re.compile(
    r"<(?:\|(?P<token>[a-z_]{2,24})\|>"
    r"|(?P<tag>important|system|instructions?|secret|hidden|critical|admin|system[_-]?prompt|"
    r"note[_-]to[_-](?:ai|assistant|model|llm))\s*>"
    r"|(?P<comment>!--)|(?P<eos>/s>)|(?P<sys></?sys>>)|(?P<turn>(?:start|end)_of_turn>))"
)
_BRACKET = re.compile(r"\[(?P<inst>/?inst)\]|\[(?P<role>system|assistant|admin)(?:\s+message)?\](?![(\[:])")
_BRACKET_WORDS = w("inst system assistant admin")
_ROLE_LINE = re.compile(r"\n[ \t>#*_-]*(system|assistant|human|developer|user|ai)\b[*_]*[ \t]*(?::|(?=\n))")
_ROLE_FIRST = re.compile(r"[ \t>#*_-]*(system|assistant|human|developer|user|ai)\b[*_]*[ \t]*(?::|(?=\n))")
_ROLE_TAIL = re.compile(
    r"[^\n]{0,200}?\b(?:ignore|disregard|you\s+(?:must|should|are|will)|your|please|always|never|do\s+not|don'?t|"
    r"call|send|read|run|execute|forward|reveal|new\s+instructions|approve|transfer|delete|remove|upload|paste|e-?mail|"
    r"curl|install|push|merge|publish)\b"
)
_ROLE_ORDER = re.compile(
    r"\b(?:ignore|disregard|forget|you\s+(?:must|will\s+now|are\s+now)|new\s+(?:instructions|task)|from\s+now\s+on|"
    r"do\s+not\s+tell|without\s+telling)\b"
)
_ROLE_HARM = re.compile(
    r"(?:delete|remove|erase|wipe|drop|send|forward|e-?mail|upload|post|transfer|push|publish|approve|grant|execute|"
    r"run|curl|exfiltrate|leak|reveal|disclose|read|open|fetch|copy|paste)\b"
)
_QUOTED_TURN = re.compile(r"""\s*(?:"[^"\n]{1,200}"|“[^”\n]{1,200}”)\s*$""")
_ROLE_COLON = re.compile(r"[ \t]*:(?=\s)")
_ROLE_WORDS = w("system assistant human developer user ai")
_MID_ROLES = tuple((role, role.encode()) for role in ("system", "assistant", "developer"))  # among _ROLE_WORDS
_ROLE_AFTER = re.compile(r"\s*(?:system|user|assistant|human|\[inst\])\b")
_SENSITIVE = tuple(  # (a path or file name, a word the text must hold for it to be looked for)
    (needle, key.encode())
    for needle, key in (
        pair.split("=")
        for pair in """.ssh=ssh .aws/credentials=aws .aws/config=aws .env=env .netrc=netrc .npmrc=npmrc
        .pypirc=pypirc .pgpass=pgpass .kube/config=kube .docker/config.json=docker .gnupg=gnupg
        .git-credentials=credentials .config/gcloud=gcloud bash_history=bash zsh_history=zsh id_rsa=rsa
        id_ed25519=ed id_ecdsa=ecdsa id_dsa=dsa /etc/passwd=passwd /etc/shadow=shadow /etc/sudoers=sudoers
        mcp.json=mcp claude_desktop_config=claude wallet.dat=wallet authorized_keys=authorized master.key=master
        credentials.json=credentials .config/gh=gh""".split()
    )
)
_SENSITIVE_BY_WORD = {key: tuple(needle for needle, word in _SENSITIVE if word == key) for _, key in _SENSITIVE}
_SENSITIVE_WORDS = vocabulary(_SENSITIVE_BY_WORD)
_INTO = re.compile(r"\b(?:to|into|in)\s+$")
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.~/-")


@dataclass(slots=True)
class _Hit:
    rule: str
    score: int
    start: int
    end: int
    block_end: int  # what a strip removes for a hidden block; `end` otherwise
    named: bool = False  # a tool transfer that names the target as a tool or on a server


_MARKUP = " \t*_#>`-[]()<>!\"'“”"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{2,}")
_TAG = re.compile(r"<[^<>\n]{0,200}>")


def _imperative(index: TextIndex, sentence_start: int, start: int, *, verb_needed: bool = False) -> bool:
    """The sentence opens with the hit (after lead-ins), or with an action verb."""
    prefix = index.low[sentence_start:start]
    clause = prefix[
        max(prefix.rfind(","), prefix.rfind(";"), prefix.rfind(" ("), prefix.rfind("\u2014"), prefix.rfind(" \u2013 "))
        + 1 :
    ]  # "whenever …, you must call …", "done — now send …"
    for part in (prefix, clause) if clause != prefix else (prefix,):
        if "`" in part and _DESCRIBED.match(part):
            continue  # "`cat ~/.ssh/config` shows the hosts": the command is what the sentence is about
        words = part.strip(_MARKUP)
        lead = LEAD_INS.match(words)
        rest = words[lead.end() :] if lead else words
        if _PROHIBITS.match(rest) or (lead and "never" in words[: lead.end()].split()):
            continue  # "do not include API keys in your query": the hit is what is forbidden
        if (not rest and not verb_needed) or ACTION_VERB.match(rest):
            return True
    return False


_PROHIBITS = re.compile(
    r"(?:do\s+not|don'?t|dont|never|avoid|must\s+not|should\s+not|shouldn'?t|mustn'?t|no\s+need\s+to)\b"
    r"(?!\s+(?:forget|fail|hesitate|skip|omit|wait|delay)\b)"
)
_DESCRIBED = re.compile(  # a sentence about a command in backticks: "`cmd` shows …", "`cmd` is …"
    r"\s*`[^`\n]+`\s+(?:is|are|was|will|can|may|shows|prints|lists|returns|displays|finds|outputs|gives|reads|writes|"
    r"opens|works|does|helps|lets|creates|tells|searches|dumps|copies|sends)\b"
)
_NEGATED = re.compile(  # just before a verb: it is forbidden, not asked for
    r"(?:\b(?:do\s+not|don'?t|dont|never|not|avoid|must\s+not|should\s+not|without)\s+(?:ever\s+|\w+ly\s+)?)$"
)


def _boosted(index: TextIndex, booster: re.Pattern[str], first: int, last: int) -> bool:
    """`booster` in the sentence; a verb that moves data counts only when it is not forbidden
    ("never share your private keys", "do not include API keys")."""
    low = index.low
    if booster is not MOVE_VERB:
        return booster.search(low, first, last) is not None
    for match in booster.finditer(low, first, last):
        if not _NEGATED.search(low, max(first, match.start() - 24), match.start()):
            return True
    return False


def _score(
    index: TextIndex,
    base: int,
    start: int,
    end: int,
    *,
    imperative: bool,
    booster: re.Pattern[str] | None,
    path: bool = False,
    verb_needed: bool = False,
) -> int:
    """Scoring as described above; a path is written in backticks or quotes as a matter of
    course, so those do not make it a citation."""
    context = index.context(start, end)
    described = context == 3 and _DESCRIBED.match(index.low, index.sentence(start, end)[0]) is not None
    if described:
        context = 1  # "`cat ~/.ssh/config` shows …": named as an example, like a citation
    elif path and context in (1, 3):
        context = 0
    if context == 0 and index.has(DISCUSSION) and _blockquote(index.text, start):
        context = 1  # a quotation set off as a block, in a text about attacks
    if context >= 2:
        return base - 2
    first, last = index.sentence(start, end)
    said = imperative and context == 0 and _imperative(index, first, start, verb_needed=path or verb_needed)
    score = base + said
    if context == 1 or (not said and index.has(DISCUSSION)):
        score -= 1
    reach = first
    if path or verb_needed:  # what a verb does to a noun: from the clause it is in, not an aside before it
        reach = max(first, index.low.rfind(" (", first, start) + 1, index.low.rfind(";", first, start) + 1)
        if path and _forbidden(index.low, reach, start):
            score -= 1  # "never share ~/.ssh/id_*": named to be kept, not asked for
    if described:  # the example's own verb says what the command does, not what to do
        reach = index.text.find("`", end) + 1
    if booster is not None and (
        _boosted(index, booster, reach, last)
        or (booster is DESTINATION and base >= 2 and _names_one(index, first, last))
    ):
        score += 1
    return score


def _forbidden(low: str, reach: int, start: int) -> bool:
    """The nearest verb that moves data before `start`, in its clause, is forbidden ("never
    share ~/.ssh/id_*", "do not upload .netrc")."""
    verbs = [match.start() for match in MOVE_VERB.finditer(low, max(reach, start - 40), start)]
    return bool(verbs) and _NEGATED.search(low, max(reach, verbs[-1] - 24), verbs[-1]) is not None


def _names_one(index: TextIndex, first: int, last: int) -> bool:
    """The sentence names one of the definition's own parameters."""
    return bool(index.destinations) and not index.destinations.isdisjoint(_IDENTIFIER.findall(index.low, first, last))


def _blockquote(text: str, start: int) -> bool:
    line_start = text.rfind("\n", 0, start) + 1
    return text.startswith(">", line_start) or text.startswith(" >", line_start)


_Anchors = dict[bytes, tuple[str, ...]]  # a rule's anchors by the word each needs


def _triggers() -> tuple[dict[bytes, frozenset[int]], tuple[tuple[Rule, tuple[frozenset[bytes], ...], _Anchors], ...]]:
    """Which rules may match. A rule is tried when the text holds a word of each of its sets: its
    anchors' words and each of its gates. It is found by the rarest of them, its trigger: its last
    gate, or its anchors' words when it has no gate or they are rarer (`Rule.rare_anchors`); its
    other sets are then tested one by one. So a text costs one set intersection and a few tests for
    each rule whose trigger it holds, not a step for each of its words (many are gates: "to", "you")."""
    by_word: dict[bytes, set[int]] = {}
    rules: list[tuple[Rule, tuple[frozenset[bytes], ...], _Anchors]] = []
    for k, rule in enumerate(RULES):
        sets = (*rule.gates, rule.keys) if rule.rare_anchors else (rule.keys, *rule.gates)
        for word in sets[-1]:
            by_word.setdefault(word, set()).add(k)
        anchors = {word: tuple(anchor for anchor, key in rule.anchors if key == word) for word in rule.keys}
        rules.append((rule, sets[:-1], anchors))
    return {word: frozenset(found) for word, found in by_word.items()}, tuple(rules)


_TRIGGERED, _RULE_AT = _triggers()  # the rules each word triggers; the rules in order, with their other sets
_TRIGGER_WORDS = frozenset(_TRIGGERED)


def _rule_hits(index: TextIndex, rule: Rule, anchors: _Anchors, hits: list[_Hit]) -> None:
    """Hits of one rule, tried at its anchors whose words the text holds; `injection_scan` calls
    it only for rules whose gates the text passes. (A hit depends only on where it starts, so
    the order of the anchors does not change what is found.)"""
    low = index.low
    for key in sorted(index.words & rule.keys):
        for anchor in anchors[key]:
            for i in index.starts(anchor):
                match = rule.pattern.match(low, i)
                if match is None or (rule.opening and not _opens(index, i)):
                    continue
                score = _score(
                    index,
                    rule.base,
                    i,
                    match.end(),
                    imperative=rule.imperative,
                    booster=rule.booster,
                    verb_needed=rule.verb_needed,
                )
                if rule.tail is not None and _tail(index, match.end(), rule.tail):
                    score += 1
                hits.append(_Hit(rule.rule, score, i, match.end(), match.end()))


def _opens(index: TextIndex, start: int) -> bool:
    """Whether a sentence or a clause opens at `start` (after markup and lead-ins such as "P.S.")."""
    first, _ = index.sentence(start, start)
    prefix = index.low[first:start]
    if "<" in prefix:
        prefix = _TAG.sub(" ", prefix)  # <div style="display:none">AI agent, …
    clause = prefix[max(prefix.rfind(","), prefix.rfind(";"), prefix.rfind("(")) + 1 :]
    words = clause.strip(_MARKUP + "/;@")  # comment markers too: // # -- ;
    lead = LEAD_INS.match(words)
    return not (words[lead.end() :] if lead else words).strip(_MARKUP + ".,/;@")


def _false_error_hits(index: TextIndex, listed: frozenset[str] | None, hits: list[_Hit]) -> None:
    """`injection.false_error`: a failure ("Error:", "denied", "not permitted" …), then within 200
    characters, in its paragraph or the next when its own is a short status line ("403
    Forbidden"), a hint that sends the model to a named tool ("retry with run_shell(…)", "call
    admin_export instead", "switch to the `http_request` tool"). Base 1; +1 in the imperative;
    +1 for privilege, words aimed at the model or no asking; +1 when the server does not list
    the tool (`listed`, when known). A quoted status (`failed`) is no failure."""
    low, text = index.low, index.text
    done: set[int] = set()
    reached = 0
    # In the text's order, whatever the words: a window skips the failures inside it, so an order
    # that followed the set's (the hash seed's) would change the findings.
    failures = sorted((i, word) for word in index.words & FAILURES for i in index.starts(word.decode()))
    for i, word in failures:
        said = word in _SAID_WORDS
        if i < reached or (said and not _failure_at(low, text, i, word)) or low[i - 1 : i] == "`":
            continue  # in a window already; a word, not a message ("the last error is raised"); a quoted status
        stop = low.find("\n\n", i, i + 200)
        if stop != -1 and stop - (low.rfind("\n\n", 0, i) + 2) <= 80:
            stop = low.find("\n\n", stop + 2, i + 200)  # a status line: its hint may follow
        stop = min(len(low), i + 200) if stop == -1 else stop
        window = low[i:stop]
        if not ("_" in window or "tool" in window or "function" in window or "(" in window):
            continue  # no tool named
        if index.context(i, i) == 2:
            continue  # code
        reached = stop
        match = FALSE_ERROR.search(low, i, stop)
        while match is not None:
            at = match.start()
            if at not in done and not low[at - 1 : at].isalnum():
                done.add(at)
                tool = match.group("snake") or match.group("named")
                score = _score(index, 1, at, match.end(), imperative=True, booster=FALSE_ERROR_BOOST)
                score += listed is not None and not _listed(tool, listed)  # a tool of another server
                hits.append(_Hit("injection.false_error", score, at, match.end(), match.end()))
            match = FALSE_ERROR.search(low, at + 1, stop)


_MESSAGE_WORDS = frozenset({b"error", b"errors", b"err"})  # a failure when it opens a message ("Error: …")
_SAID_WORDS = _MESSAGE_WORDS | {b"permitted", b"allowed", b"authorized", b"authorised"}  # the others after "not"


# "upstream error (502)", "error: no", {"error": …
_ERROR_SHAPE = re.compile(r"err(?:or)?s?(?:[\"']\s{0,3}:|\s{0,3}\(?\d|: )")
_MESSAGE_ERROR = re.compile(  # the word at a message's start, seen from there (one match instead of four tests)
    r"(?:(?<![^\n\"'\[(< ])(?<![^\n\"'\[(<:!][\s\S])"  # first in the text, its line or a quote or bracket: "[ERROR"
    r"|(?<=an ))err"  # "an error"
    r"|" + _ERROR_SHAPE.pattern  # or shaped like one
)


def _failure_at(low: str, text: str, i: int, word: bytes) -> bool:
    """Whether the word at `i` reports a failure: "not permitted", not "permitted"; and "error" as
    a message opens it ("Error: …", "ERROR", "npm ERR!", a line's or a quoted key's first word:
    "error[E0425]", `"error": …`), not as prose or code mentions it ("the last error is
    raised", "except ConnectionError as error:")."""
    if word in _MESSAGE_WORDS:
        return text[i].isupper() or _MESSAGE_ERROR.match(low, i) is not None
    return low.endswith("not ", 0, i)


def _tail(index: TextIndex, end: int, pattern: re.Pattern[str]) -> bool:
    """`pattern` in the rest of the paragraph, at most 240 characters on."""
    low = index.low
    stop = low.find("\n\n", end, end + 240)
    return pattern.search(low, end, stop if stop != -1 else min(len(low), end + 240)) is not None


def _angle_hits(index: TextIndex, hits: list[_Hit]) -> None:
    low = index.low
    tokens: list[tuple[int, int, str]] = []
    if "<" in low:
        for match in finditer_at(_ANGLE, low, "<"):
            start, end = match.span()
            if match.group("tag") or match.group("comment"):
                _block_hit(index, match, hits)
            elif match.group("eos"):
                if "[inst]" in low or low.count("<s>") < low.count("</s>"):
                    tokens.append((start, end, "eos"))
            else:
                tokens.append((start, end, match.group("token") or match.lastgroup or ""))
    if "[" in low and index.has(_BRACKET_WORDS):
        for match in finditer_at(_BRACKET, low, "["):
            if match.group("inst"):
                tokens.append((*match.span(), "inst"))
            else:
                score = _score(index, 1, *match.span(), imperative=False, booster=None)
                hits.append(_Hit("injection.role", score + _role_tail(low, match.end()), *match.span(), match.end()))
    kinds = {kind for _, _, kind in tokens}
    for start, end, kind in tokens:
        base = (1 if kind == "eos" and "[inst]" not in low else 2) + (
            len(kinds) > 1 or bool(_ROLE_AFTER.match(low, end))
        )
        hits.append(
            _Hit(
                "injection.chat_template",
                _score(index, base, start, end, imperative=False, booster=None),
                start,
                end,
                end,
            )
        )


def _block_hit(index: TextIndex, match: re.Match[str], hits: list[_Hit]) -> None:
    low, start, end = index.low, match.start(), match.end()
    if match.group("comment"):
        close = low.find("-->", end)
        stop = len(low) if close == -1 else close
        content = low[end:stop]
        if not (AI_ADDRESS.search(content) and ADDRESSED.search(content)):
            return
        base, block_end = 2, len(low) if close == -1 else close + 3
    else:
        tag = match.group("tag")
        close = low.find("</" + tag, end)
        if close == -1:  # an unclosed tag is weak evidence: it may be a mention
            paragraph = low.find("\n\n", end)
            block_end = len(low) if paragraph == -1 else paragraph
            base = 1
        else:
            after = low.find(">", close)
            block_end = len(low) if after == -1 else after + 1
            content = low[end:close]
            base = (2 if len(content.split()) >= 4 else 1) + (ADDRESSED.search(content) is not None)
    hits.append(
        _Hit(
            "injection.hidden_tag",
            _score(index, base, start, end, imperative=False, booster=None),
            start,
            end,
            block_end,
        )
    )


def _role_tail(low: str, end: int) -> int:
    """What the turn says to obey: 2 for an order to drop the rules ("ignore …", "you must …") or
    one that opens with a harmful verb ("delete …", "send …"), 1 for another action verb, 0 for
    an answer ("Assistant: The team agreed …")."""
    stop = low.find("\n", end)
    line = low[end : stop if stop != -1 else min(len(low), end + 300)]
    if _QUOTED_TURN.match(line) and not _ROLE_ORDER.search(line):
        return 0  # User: "Run Seer on this issue": an example of what is said, in quotes
    words = line.strip(_MARKUP)
    lead = LEAD_INS.match(words)
    opening = words[lead.end() :] if lead else words
    if _ROLE_ORDER.search(line) or _ROLE_HARM.match(opening):
        return 2  # an order to drop the rules, or to do harm, put in a forged turn
    return 1 if ACTION_VERB.match(opening) else 0


def _mid_roles(index: TextIndex) -> list[tuple[int, int, str, bool]]:
    """Role markers ("System:", "Assistant:", "Developer:") opening a sentence or a quoted value mid-line."""
    low, found = index.low, list[tuple[int, int, str, bool]]()
    for role, word in _MID_ROLES:
        if word not in index.words:
            continue
        for i in index.starts(role):
            colon = _ROLE_COLON.match(low, i + len(role))
            before = low[max(0, i - 2) : i]
            if colon and i and (before[-1:] in "\"'>" or (before[-1:] == " " and before[:1] in ".!?\"'>])")):
                found.append((i, colon.end(), role, False))
    return found


def _role_hits(index: TextIndex, hits: list[_Hit]) -> None:
    """Called only when the text holds a role word (`injection_scan` asks)."""
    low = index.low
    found: list[tuple[int, int, str, bool]] = []
    first = _ROLE_FIRST.match(low)
    if first:
        found.append((first.start(1), first.end(), first.group(1), False))
    for match in _ROLE_LINE.finditer(low):
        anthropic = match.group(1) in ("human", "assistant") and low.startswith("\n\n", match.start() - 1)
        anthropic = anthropic and match.start(1) == match.start() + 1
        found.append((match.start(1), match.end(), match.group(1), anthropic))
    found += _mid_roles(index)
    roles = {role for _, _, role, _ in found}
    tails = [_role_tail(low, end) for _, end, _, _ in found]
    for (start, end, role, anthropic), tail in zip(found, tails, strict=True):
        base = 2 if anthropic else 0 if role == "user" else 1
        base += min(tail, 2) + (len(roles) > 1 and any(tails))
        hits.append(
            _Hit("injection.role", _score(index, base, start, end, imperative=False, booster=None), start, end, end)
        )


_DETERMINERS = frozenset("the this your our whole full entire complete current".split())
_MANY = frozenset("every all each previous prior earlier last".split())
_OWNED = frozenset("user's users user customer's all every any saved stored".split())
_QUALIFIERS = {  # head word: (how many words back to look, the words that make it something the model holds)
    "conversation": (3, _DETERMINERS),
    "messages": (3, _MANY),
    "message": (3, _MANY),
    "emails": (3, _MANY | _OWNED),
    "mails": (3, _MANY),
    "turns": (3, _MANY),
    "prompt": (1, frozenset({"system", "original"})),
    "instructions": (1, frozenset({"your", "hidden", "initial", "original", "system"})),
    "variables": (1, frozenset({"environment"})),
    "transcript": (3, _DETERMINERS | _MANY),
} | dict.fromkeys(SENSITIVE_HEADS_OWNED, (3, _OWNED))
_HEADS = vocabulary(head.encode() for head in ("chat", *_QUALIFIERS))
_LABEL_AFTER = re.compile(r"\.\w|\s+(?:ids?|urls?|links?|titles?|names?|numbers?|counts?|starters?)\b")
_FETCHES = re.compile(  # a verb between the handing-over verb and the phrase takes the phrase as its object
    r"\b(?:to|and|or)\s+(?:fetch|get|read|retrieve|view|see|list|find|search|show|display|load|open|look\s+up|download)\b"
)
_CHAT_TAIL = re.compile(r"\s+(?:history|so\s+far|log|transcript|context)\b")


def _held_phrase(low: str, head: str, i: int) -> tuple[int, int] | None:
    """The phrase around `head` at `i` when it names what the model holds, else None."""
    end = i + len(head)
    if head in {"chat", "conversation"}:
        tail = _CHAT_TAIL.match(low, end)
        if tail:
            return i, tail.end()
        if head == "chat":
            return None
    reach, words = _QUALIFIERS[head]
    lo = i - 48 if i > 48 else 0
    for word in low[lo:i].rsplit(None, reach)[-reach:]:  # the last `reach` words
        if word.strip("'\"`(") in words:
            if (i and low[i - 1] in "._-/") or low[end : end + 1] in ("_", "-") or _LABEL_AFTER.match(low, end):
                return None  # gen_ai.conversation.id, "the conversation URL": a name or a label, not the data
            return low.rfind(word, lo, i), end
    return None


def _request_hits(index: TextIndex, hits: list[_Hit]) -> None:
    """`injection.data_flow` at 2: what the model holds (the conversation, its system prompt,
    the user's keys …) asked to be passed on: a verb that hands it over opens the phrase within
    the sentence. Anchored on the phrase's head word and the words just before it."""
    low = index.low
    done: set[int] = set()
    for word in sorted(index.words & _HEADS):
        head = word.decode()
        for i in index.starts(head):
            phrase = _held_phrase(low, head, i)
            if phrase is None or phrase[0] in done:
                continue
            first, _ = index.sentence(i, i)
            found = list(HANDOVER.finditer(low, max(first, phrase[0] - 80), phrase[0]))
            if not found or _FETCHES.search(low, found[-1].end(), phrase[0]):
                continue
            done.add(phrase[0])
            verb = found[-1]
            score = _score(index, 2, verb.start(), phrase[1], imperative=True, booster=DESTINATION)
            hits.append(_Hit("injection.data_flow", score, verb.start(), phrase[1], phrase[1]))


def _sensitive_hits(index: TextIndex, hits: list[_Hit], mentions: bool) -> None:
    low = index.low
    spans: dict[tuple[int, int], int] = {}
    needles = [needle for word in index.words & _SENSITIVE_WORDS for needle in _SENSITIVE_BY_WORD[word]]
    for needle in needles:
        i = low.find(needle)
        while i != -1:
            start, end = i, i + len(needle)
            i = low.find(needle, end)
            if low[end : end + 1].isalnum() or (
                needle == ".env" and ((start and low[start - 1].isalnum()) or low[end : end + 1] in ("_", "-", "."))
            ):
                continue  # sshd, process.env, .env.example
            while start and low[start - 1] in _PATH_CHARS:
                start -= 1
            while end < len(low) and low[end] in _PATH_CHARS:
                end += 1
            while low[end - 1] in ".-/":
                end -= 1
            if low.endswith(".pub", start, end):
                continue  # a public key
            if needle == ".env" and _INTO.search(low, max(0, start - 8), start):
                continue  # "copy .env.example to .env": written to, as a project's setup does
            base = 0 if needle == ".env" else 1  # .env is everywhere in developer text
            spans[start, end] = max(base, spans.get((start, end), 0))
    for (start, end), base in sorted(spans.items()):
        score = _score(index, base, start, end, imperative=True, booster=MOVE_VERB, path=True)
        if not mentions and score <= base:
            score -= base  # a result that only names the file: docs, listings and configs do
        hits.append(_Hit("injection.sensitive_file", score, start, end, end))


_SEND_OUT = re.compile(  # "forward these to https://…": a pronoun handed to an outside address
    r"(?:send|forward|post|upload|e-?mail|transmit|leak|exfiltrate|relay)\s+(?:all\s+of\s+)?"
    r"(?:it|them|these|those)\b(?:\s+[\w-]+){0,3}?\s+(?:to|at|via)\s+(?:https?://|[\w.+-]+@[\w-]+\.[\w.-]+)"
)
_SEND_VERBS = ("send", "forward", "post", "upload", "email", "mail", "transmit", "leak", "exfiltrate", "relay")
_SEND_WORDS = vocabulary(verb.encode() for verb in _SEND_VERBS)  # "mail": "e-mail" is two words
_CREDENTIAL = re.compile(
    r"\b(?:creds?|credentials?|tokens?|(?:api|access|secret|private|ssh)[\s_-]?keys?|passwords?|passphrases?|"
    r"secrets?|cookies?)\b"
)
_CREDENTIAL_WORDS = vocabulary(
    b"cred creds credential credentials token tokens key keys password passwords passphrase passphrases secret "
    b"secrets cookie cookies".split()
)
_SEND_OUT_WORDS = _CREDENTIAL_WORDS | _SEND_WORDS  # `_send_out_hits` finds nothing without one of them
_PLACEHOLDER_ARGUMENT = re.compile(r"\(\s*[a-z_]\w*\s*[=:]\s*[<{\[]([^<>{}\[\]\n]{1,100})[>}\]]")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


def _send_out_hits(index: TextIndex, hits: list[_Hit]) -> None:
    """`injection.data_flow` at 2: credentials handed on. An order to send a pronoun to an
    outside address ("forward these to https://…", "send it to a@b.example") whose antecedent,
    in the 200 characters before it, names a credential or a sensitive file (found by
    `_sensitive_hits`, which runs first) or holds a secret; or a call written
    out with a placeholder for a credential as its argument (`verify(token=<your access
    token>)`), which only the model can fill."""
    low = index.low
    if index.has(_CREDENTIAL_WORDS) and "(" in low:
        for match in _PLACEHOLDER_ARGUMENT.finditer(low):
            start = match.start()
            while start and low[start - 1] in _NAME_CHARS:
                start -= 1
            if start < match.start() and _CREDENTIAL.search(match.group(1)):
                score = _score(index, 2, start, match.end(), imperative=True, booster=DESTINATION)
                hits.append(_Hit("injection.data_flow", score, start, match.end(), match.end()))
    if "@" not in low and "://" not in low:  # `@` first: one character is found with memchr
        return
    for word in index.words & _SEND_WORDS:
        for i in index.starts(word.decode()):
            start = i - 2 if word == b"mail" and low.endswith("e-", 0, i) else i
            match = _SEND_OUT.match(low, start)
            if match is None or index.context(start, match.end()):
                continue
            if not _imperative(index, index.sentence(start, start)[0], start):
                continue  # "the hook posts them to …" says what happens; only an order hands them on
            paragraph = low.rfind("\n\n", 0, start)
            before = max(0, start - 200, paragraph + 2 if paragraph >= 0 else 0)
            named = any(hit.rule == "injection.sensitive_file" and before <= hit.start < start for hit in hits)
            if named or _CREDENTIAL.search(low, before, start) or secrets(TextIndex(index.text[before:start]), ""):
                score = _score(index, 2, start, match.end(), imperative=True, booster=None)
                hits.append(_Hit("injection.data_flow", score, start, match.end(), match.end()))


_TRANSFER = re.compile(
    r"(?:call|invoke|use|run|execute|trigger|switch\s+to|hand\s+(?:it\s+|this\s+)?(?:off\s+)?to|delegate\s+to)[ \t]+"
    r"(?:the\s+|your\s+|its\s+)?[`'\"]?(?P<name>[a-z][\w.-]*[a-z0-9])[`'\"]?"
    r"(?P<tail>\s+(?:tool|function|action)\b|\s+(?:on|from|in|via|of|at)\s+(?:the\s+|your\s+)?[\w.-]+\s+"
    r"(?:server|mcp|integration|connector|service)\b|\()?"
)
_TRANSFER_VERBS = ("call", "invoke", "use", "run", "execute", "trigger", "switch", "hand", "delegate")
_TRANSFER_WORDS = vocabulary(verb.encode() for verb in _TRANSFER_VERBS)
_TOOL_NOUNS = vocabulary(b"tool tools function functions".split())
_TRANSFER_BOOST = re.compile(  # an errand beyond the call: another server, data sent on, no asking, urgency
    r"\b(?:also|as\s+well|additionally|another|other|different|instead|immediately|right\s+away|now|"
    r"without\s+(?:asking|confirmation|telling|confirming)|do\s+not\s+ask|don'?t\s+ask|no\s+need\s+to\s+(?:ask|confirm)|"
    r"(?:with|include|pass|send\s+it)\s+(?:all\s+)?(?:the|these|this|those)\s+(?:results?|rows|data|output|contents?|"
    r"files?|file\s+list|list|summary|records)\b(?:\s+(?:above|below|here))?|"
    r"(?:forward|send|e-?mail|upload|post|share|leak|transmit|copy|sync)\s+(?:this|it|these|them|that|everything|"
    r"the\s+(?:results?|output|data|contents?|conversation|file|report|summary|above|response)))\b"
)


def _transfer_hits(index: TextIndex, listed: frozenset[str], hits: list[_Hit]) -> None:
    """`injection.tool_transfer`: a call of a tool this server does not list ("please also run
    deploy_prod on the ops server", "use the `send_email` tool to forward this"). The name must
    read as a tool's: `snake_case` anywhere; `kebab-case`, `dotted.names` or camelCase only
    before "tool" or "(" or with a server named."""
    low, text = index.low, index.text
    for word in index.words & _TRANSFER_WORDS:
        if word == b"use" and not index.has(_TOOL_NOUNS):
            continue  # "use" is everywhere; "use X" names a tool as "the X tool" (a scan of the text saved)
        verb = word.decode()
        for i in index.starts(verb):
            ahead = low[i : i + 72]
            if not ("_" in ahead or "(" in ahead or "tool" in ahead or "function" in ahead or "server" in ahead):
                continue  # no tool is named in reach
            match = _TRANSFER.match(low, i)
            if match is None:
                continue
            name, tail = match.group("name"), match.group("tail") or ""
            if "_" not in name:
                if not tail or not ("-" in name or "." in name or _CAMEL.search(text, *match.span("name"))):
                    continue
                if "." in name and "tool" not in tail:
                    continue  # setup.py, node.js: files and products, not tools
            if _listed(name, listed) or _FILE_NAME.search(name):
                continue
            named = (bool(tail) and tail != "(") or verb in ("hand", "delegate")  # only tools are handed work
            score = _score(index, int(named), i, match.end(), imperative=True, booster=_TRANSFER_BOOST)
            hits.append(_Hit("injection.tool_transfer", score, i, match.end(), match.end(), named))


def _one_call_one_signal(hits: list[_Hit]) -> list[_Hit]:
    """A call is one signal, however many rules see it: `tool_call` gives way to `false_error`
    and `tool_transfer` at the same place, and `tool_transfer` to `false_error` (which counts
    the unlisted tool itself), so that one phrase does not corroborate itself."""
    errors = {hit.start: hit for hit in hits if hit.rule == "injection.false_error"}
    calls = {hit.start for hit in hits if hit.rule == "injection.tool_transfer"} | errors.keys()
    kept: list[_Hit] = []
    for hit in hits:
        if hit.rule == "injection.tool_call" and hit.start in calls:
            continue
        if hit.rule == "injection.tool_transfer" and hit.start in errors:
            continue  # the false error counted the unlisted tool
        kept.append(hit)
    return kept


_CAMEL = re.compile(r"[a-z][A-Z]")
_FILE_NAME = re.compile(r"\.(?:sh|py|js|ts|rb|go|rs|sql|ya?ml|json|toml|txt|md|exe|bat|ps1|cmd|jar)$")


def _listed(name: str, listed: frozenset[str]) -> bool:
    """Whether `name` is one of this server's tools, also as the client may see it (namespaced
    `server__name`, `server.name`, `server/name`)."""
    return name in listed or any(name.endswith(sep + tool) for tool in listed for sep in ("_", ".", "/", "-"))


@dataclass(frozen=True, slots=True)
class InjectionScan:
    """Injection findings, and the spans of the text a strip replaces: every sentence with a
    HIGH finding and every hidden block (`<IMPORTANT>…</IMPORTANT>`) of MEDIUM or more."""

    findings: tuple[Finding, ...]
    spans: tuple[tuple[int, int], ...]


_NOTHING = InjectionScan((), ())
_LEAD_LABEL = re.compile(r"\b(?:important|note|attention|warning|critical|urgent|system|assistant)\W{0,4}:\s*$")
_MAX_PER_RULE = 5


def injection_scan(
    text: str | TextIndex,
    where: str,
    *,
    spans_at: Severity = Severity.HIGH,
    listed: frozenset[str] | None = None,
    mentions: bool = True,
) -> InjectionScan:
    """Findings, and the spans a strip replaces: hidden blocks of MEDIUM or more, and the
    sentences of findings at `spans_at` or more (HIGH unless the caller raises what it found).
    `listed`: the names of the tools the server lists (lower case), when known: a call of any
    other tool is `injection.tool_transfer`. `mentions`: whether a sensitive file named with
    no order and no verb that moves it is a finding (LOW): in a definition, which has no
    business naming `~/.ssh`, it is; results pass False."""
    index = text if isinstance(text, TextIndex) else TextIndex(text)
    hits: list[_Hit] = []
    words = index.words  # (`not words.isdisjoint(…)` below is `index.has(…)` without a call)
    triggered: set[int] = set()
    triggered.update(*map(_TRIGGERED.__getitem__, words & _TRIGGER_WORDS))
    for k in sorted(triggered):  # the rules in their order
        rule, others, anchors = _RULE_AT[k]
        if not any(map(words.isdisjoint, others)):
            _rule_hits(index, rule, anchors, hits)
    if "<" in index.low or ("[" in index.low and not words.isdisjoint(_BRACKET_WORDS)):
        _angle_hits(index, hits)
    if not words.isdisjoint(_ROLE_WORDS):
        _role_hits(index, hits)
    if not words.isdisjoint(_SENSITIVE_WORDS):
        _sensitive_hits(index, hits, mentions)
    if not words.isdisjoint(_HEADS):
        _request_hits(index, hits)
    if not words.isdisjoint(_SEND_OUT_WORDS):
        _send_out_hits(index, hits)
    if not words.isdisjoint(FAILURES) and not words.isdisjoint(CALLS):
        _false_error_hits(index, listed, hits)
    if listed is not None and not words.isdisjoint(_TRANSFER_WORDS):
        _transfer_hits(index, listed, hits)
    if not hits:
        return _NOTHING
    if len(hits) > 1:
        hits = _one_call_one_signal(hits)
    best = _signals(hits)
    strong = sum(score >= 2 for score in best.values())
    corroborated = strong >= 2 or (strong >= 1 and sum(score >= 1 for score in best.values()) >= 3)
    findings: list[Finding] = []
    spans: list[tuple[int, int]] = []
    shown: dict[str, int] = {}
    for hit in sorted(hits, key=lambda h: h.start):
        score = hit.score + (corroborated and hit.score >= 1)
        if score < 1:
            continue
        severity = Severity.HIGH if score >= 3 else Severity.MEDIUM if score == 2 else Severity.LOW
        if shown.get(hit.rule, 0) < _MAX_PER_RULE:
            shown[hit.rule] = shown.get(hit.rule, 0) + 1
            findings.append(Finding(hit.rule, severity, where, excerpt(index.text, hit.start, hit.end)))
        if hit.block_end > hit.end and score >= 2:
            spans.append((hit.start, hit.block_end))
        elif severity.rank >= spans_at.rank:
            first, last = index.sentence(hit.start, hit.end)
            lead = _LEAD_LABEL.search(index.low, max(0, first - 40), first)
            spans.append((lead.start() if lead else first, last))
    return InjectionScan(tuple(findings), _merge(spans))


_DATA_RULES = frozenset({"injection.data_flow", "injection.credentials", "injection.sensitive_file"})


def _signals(hits: list[_Hit]) -> dict[str, int]:
    """The best score of each independent signal: a rule, except that the data rules
    (`data_flow`, `credentials`, `sensitive_file`) reading one phrase ("include the access
    token in the header") are one signal, not two that corroborate each other."""
    best: dict[str, int] = {}
    key, reach = "", -1
    for hit in sorted(hits, key=lambda h: h.start):
        signal = hit.rule
        if hit.rule in _DATA_RULES:
            if hit.start <= reach + 8:
                signal = key
            else:
                key = signal
            reach = max(reach, hit.end) if signal == key else reach
        best[signal] = max(best.get(signal, -9), hit.score)
    return best


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def injection_findings(text: str, where: str) -> list[Finding]:
    """Text that reads as instructions aimed at the model (rules and scoring above)."""
    return list(injection_scan(text, where).findings)

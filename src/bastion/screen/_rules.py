"""The injection rules as data: patterns, anchors, boosters and base scores (`injection` scores them)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bastion.screen.index import vocabulary


def w(words: str) -> frozenset[bytes]:
    return vocabulary(words.encode().split())


MOVE_VERB = re.compile(
    r"\b(?:read|cat|open|load|include|pass|send|upload|post|forward|attach|append|copy|share|provide|"
    r"extract|print|email|exfiltrate|leak|transmit|embed|contents?\s+of|obtain|retrieve|grab|collect|fetch)\b"
)
_FILE_REF = re.compile(
    r"~/|/etc/|\.(?:json|env|ya?ml|toml|pem|key|conf|ini|cfg)\b|"
    r"\b(?:files?|config|configuration|credentials?|keys?|tokens?|secrets?|passwords?|ssh|history|conversation)\b"
)
DESTINATION = re.compile(
    r"\b(?:as|in|into|to|via|through|inside|within|using)\s+(?:the\s+|a\s+|an\s+)?(?:[`'\"][^`'\"\n]{1,40}[`'\"]|"
    r"(?:[\w-]+\s+)?\S*(?:parameter|param|argument|field|tool|function|url|endpoint|webhook|sidenote)\b|https?://|"
    r"\S+@\S+\.[a-z]{2,})"
)
_URGENT = re.compile(
    r"\b(?:immediately|right\s+(?:now|away)|at\s+once|now|without\s+(?:asking|confirmation|telling))\b"
)
LEAD_INS = re.compile(
    r"(?:(?:please|now|also|then|first|and|so|just|instead|immediately|finally|next|additionally|important|"
    r"note|attention|warning|critical|urgent|required|system|assistant|ai|claude|hey|ok|okay|always|never|"
    r"(?:the\s+)?(?:assistant|ai|model|agent|llm)\s+(?:must|should|needs\s+to|has\s+to|will|is\s+to)|"
    r"you\s+(?:must|should|need\s+to|have\s+to|will|are\s+required\s+to|shall)|make\s+sure\s+(?:to|you)|"
    r"be\s+sure\s+to|remember\s+to|it\s+is\s+(?:required|mandatory|essential|critical)\s+(?:to|that\s+you))"
    r"\b[\s,:!.-]*)*"
)
ACTION_VERB = re.compile(
    r"(?:read|call|send|pass|include|append|attach|upload|post|forward|copy|run|execute|invoke|use|fetch|"
    r"open|cat|provide|share|give|output|print|reveal|email|ignore|disregard|forget|do|don'?t|never|always|"
    r"make|write|add|insert|put|retrieve|extract|get|list|delete|remove|respond|reply|say|tell|before)\b"
)
ADDRESSED = re.compile(
    r"\b(?:you|your|must|should|always|never|before|ignore|do\s+not|don'?t|please|assistant|model|ai|llm|"
    r"claude|read|call|send|pass|include)\b"
)
AI_ADDRESS = re.compile(r"\b(?:ai|assistant|model|llm|claude|gpt|agent|agents|chatbot)\b|\bignore\b|\binstructions?\b")
DISCUSSION = w(
    "injection injections jailbreak jailbreaks attacks adversarial malicious payload payloads exploit exploits "
    "poisoning vulnerability vulnerabilities researchers"
)


@dataclass(frozen=True, slots=True)
class Rule:
    rule: str
    base: int
    anchors: tuple[tuple[str, bytes], ...]  # (where the pattern is tried, the word that must be present)
    keys: frozenset[bytes]  # all those words
    pattern: re.Pattern[str]
    gates: tuple[frozenset[bytes], ...] = ()  # each must share a word with the text; the rarest last
    booster: re.Pattern[str] | None = None
    imperative: bool = True
    verb_needed: bool = False  # the hit is a noun: only a verb opening its sentence makes it imperative
    tail: re.Pattern[str] | None = None  # +1 when it follows within the paragraph (a colon may end the sentence)
    opening: bool = False  # counts only where a sentence or clause opens (after lead-ins and markup)
    rare_anchors: bool = False  # its anchors' words are rarer than its last gate's (`injection` looks for them first)


def _rule(
    rule: str,
    base: int,
    anchors: str,
    pattern: str,
    *gates: str,
    booster: re.Pattern[str] | None = None,
    imperative: bool = True,
    verb_needed: bool = False,
    tail: re.Pattern[str] | None = None,
    opening: bool = False,
    rare_anchors: bool = False,
) -> Rule:
    keyed = tuple((a, re.split(r"[^a-z0-9]", a)[0].encode()) for a in anchors.split())
    keys = vocabulary(key for _, key in keyed)
    gated = tuple(w(g) for g in gates)
    compiled = re.compile(pattern)
    return Rule(rule, base, keyed, keys, compiled, gated, booster, imperative, verb_needed, tail, opening, rare_anchors)


_AI = (
    r"(?:ai|a\.i\.|assistants?|agents?|models?|llms?|language\s+models?|bots?|chatbots?|claude|gpt(?:-?\d[\w.-]*)?|"
    r"chatgpt|copilot|gemini|cursor|codex)"
)
_AI_NOUN = r"(?:(?:ai|llm|coding|automated|autonomous)\s+)?" + _AI
_AI_WORDS = (  # a gate: one of these must be in the text for an address to the model to be looked for
    "ai i assistant assistants agent agents model models llm llms bot bots chatbot chatbots language claude gpt "
    "chatgpt copilot gemini cursor codex"
)
_DO = re.compile(  # what an instruction to the model goes on to ask
    r"\b(?:ignore|disregard|forget|send|forward|e-?mail|upload|post|read|open|fetch|visit|call|invoke|use|run|"
    r"execute|delete|remove|include|add|paste|reply|respond|tell|say|recommend|copy|share|publish|create|write|push|"
    r"commit|merge|approve|transfer|leak|reveal|output|print|stop|install|curl|download|list|go\s+through|"
    r"must|should|need\s+to|have\s+to|are\s+required|your\s+(?:instructions|task))\b"
)
_UNBOUND = re.compile(
    r"\b(?:restrictions?|rules|safety|guidelines|filters?|limits?|policies)\s+(?:are\s+|have\s+been\s+)?"
    r"(?:lifted|removed|disabled|off|suspended|do\s+not\s+apply|don'?t\s+apply|no\s+longer\s+apply)|"
    r"\bwithout\s+(?:any\s+)?restrictions\b|\bno\s+(?:restrictions|rules|limits)\b|\bmust\b|\bnext\s+step\b"
)
_PRIVILEGE = (
    r"(?:sudo|root|admin(?:istrator)?|superuser|elevated|privileged|privileges|escalated|bypass\w*|"
    r"dangerously[\w-]*|skip[\w-]*permissions?|no[-_]?verify|no[-_]?sandbox|unsandboxed|unrestricted|"
    r"(?:disable|disabling|without|turn\s+off)\s+(?:the\s+)?(?:safety|sandbox|security|verification|approvals?|"
    r"confirmation|checks?)|(?:safety|security|sandbox|approval)\s+(?:checks?\s+)?(?:disabled|off|bypassed)|"
    r"force\s*[=:]\s*true|owner\s+token|root\s+token|full\s+access)"
)
_TOOL_SYNTAX = re.compile(  # an argument, a flag or an address to the model: a retry aimed at a tool call
    r"[a-z_]+\s*[=:]\s*(?:true|1|yes)\b|`[^`\n]{1,60}`|\b(?:this\s+tool|the\s+tool|the\s+assistant|the\s+model|"
    r"the\s+agent|do\s+not\s+ask|don'?t\s+ask|without\s+asking|not\s+ask\s+the\s+user|it\s+is\s+expected|"
    r"immediately|already\s+(?:agreed|approved|consented))\b|\b(?:call|invoke)\s+\S+\s+again\b"
    r"|\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\("  # run_shell(…): a tool's call syntax
)
NAMED_TOOL = (  # a tool named the way tools are: `snake_case`, or any name before "tool" or "("
    r"(?:the\s+|your\s+|its\s+)?[`'\"]?(?:(?P<snake>[a-z][a-z0-9]*(?:_[a-z0-9]+)+)[`'\"]?(?![\w.-])|"
    r"(?!(?:this|that|a|an|any|another|each|which|other|same|right|correct|appropriate|relevant|following|"
    r"previous|next|new|given|your|its|my)\b)(?P<named>[a-z][\w.-]*)[`'\"]?(?=\s+(?:tool|function)\b|\())"
)
FAILURES = w(  # what a failure says, before the hint that follows it; the last four only after "not"
    "error errors err failed failure fails denied unauthorized unauthorised forbidden exception refused insufficient "
    "rejected blocked timed unavailable permitted allowed authorized authorised"
)
FALSE_ERROR = re.compile(  # the hint that follows: "call/retry with/switch to <tool>" (a word start: checked)
    r"(?:call|invoke|use|run|execute|trigger|retry\s+(?:it\s+|this\s+)?(?:with|using|via)|"
    r"try\s+(?:again\s+)?(?:with|using)|switch\s+to|fall\s+back\s+to)[ \t]+" + NAMED_TOOL
)
CALLS = w("call invoke use run execute trigger retry try switch fall")
FALSE_ERROR_BOOST = re.compile(  # what makes a failure's hint an order to the model: privilege, the model, no asking
    r"\b" + _PRIVILEGE + r"\b|\b(?:the\s+)?(?:assistant|model|agent|ai|llm)\b|\bdo\s+not\s+ask|\bdon'?t\s+ask|"
    r"\bwithout\s+(?:asking|confirmation|telling)|\bimmediately\b|\bautomatically\b|\binstead\b|\bfull\s+access\b"
)
SENSITIVE_DATA = (  # what a model holds and must not hand over
    r"(?:conversation|chat)\s+(?:history|so\s+far|log|transcript|context)"
    r"|(?:the|this|your|our|whole|full|entire|complete|current)\s+(?:[\w-]+\s+){0,2}?conversation\b"
    r"(?!\s+(?:id|ids|title|starters?|api|model)\b)"
    r"|(?:every|all|each|the\s+previous|previous|prior|earlier|the\s+last\s+\d+)\s+(?:of\s+the\s+)?(?:\w+\s+)?"
    r"(?:messages?|e-?mails?|turns)"
    r"|(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions|initial\s+instructions|instructions|original\s+prompt)"
    r"|system\s+prompt|hidden\s+instructions|(?:all\s+|the\s+)?environment\s+variables"
    r"|(?:the\s+)?(?:user'?s|customer'?s|all(?:\s+the)?|every|any|saved|stored)\s+(?:saved\s+|stored\s+)?"
    r"(?:api[\s_-]?keys?|credentials|passwords?|tokens?|secrets?|private\s+keys?|ssh\s+keys?|cookies|inbox|"
    r"e-?mails|contacts|files|documents|card\s+details|credit\s+cards?)"
    r"|(?:the\s+)?(?:contents?\s+of\s+(?:the\s+)?(?:user'?s\s+)?inbox)|transcript|chat\s+log"
)
SENSITIVE_HEADS_OWNED = (  # what is the user's to keep: "the user's api keys", "all passwords", "every file"
    "keys key credentials passwords password tokens token secrets secret cookies inbox contacts files documents "
    "details cards card"
).split()
HANDOVER = re.compile(  # what asks for data to be handed over: a verb, a tool call with it, or a field that holds it
    r"\b(?:pass|send|include|put|set|provide|add|copy|paste|fill|attach|append|insert|embed|forward|upload|post|share|"
    r"leak|give|supply|dump|transmit|sync|e-?mail|(?:call|invoke|use|run|trigger)\s+(?:the\s+|your\s+)?[`'\"]?[\w.-]+"
    r"[`'\"]?(?:\s+tool|\s+function)?\s+(?:with|passing|on)|(?:must|should|needs?\s+to|will)\s+(?:always\s+)?"
    r"(?:contain|include|hold|carry|receive|be\s+set\s+to))\b"
)
_NEG = r"(?:do\s+not|don'?t|dont|never|must\s+not|should\s+not)\s+(?:ever\s+)?"
RULES: tuple[Rule, ...] = (
    _rule(
        "injection.override",
        2,
        "ignore ignoring disregard forget bypass override",
        r"(?:ignor(?:e|ing)|disregard|forget|bypass|override)\s+(?:(?:all|any|every|each|the|your|my|of|these|those|its)\s+){0,3}"
        r"(?:(?:previous|prior|above|earlier|preceding|original|initial|system|safety|developer|old|other)\s+){1,2}"
        r"(?:instructions?|prompts?|rules|directions|directives|guidelines|guardrails|constraints|commands|messages|context)\b"
        r"|(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+|anything\s+)?(?:the\s+)?(?:above|previous|preceding)"
        r"(?=\s*(?:[.,;:!\n]|and\b|$))"
        r"|(?:ignore|disregard|forget|bypass|override)\s+(?:all\s+|any\s+)?(?:of\s+)?your\s+"
        r"(?:instructions|rules|guidelines|programming|training|system\s+prompt)\b",
    ),
    _rule(
        "injection.override",
        2,
        "new updated",
        r"(?:new|updated)\s+(?:system\s+|priority\s+|urgent\s+|primary\s+)?(?:instructions?|tasks?|objectives?|goals?|"
        r"directives?|orders)\s*(?::|follow)",
        "instruction instructions task tasks objective objectives goal goals directive directives orders",
    ),
    _rule(
        "injection.override",
        2,
        "your",
        r"your\s+(?:new|real|actual|true)\s+(?:task|goal|instructions?|objective|purpose|job|role)\s+(?:is|are|will)\b",
        "new real actual true",
        "task goal instruction instructions objective purpose job role",
    ),
    _rule("injection.override", 2, "from", r"from\s+now\s+on,?\s+(?:you|the\s+assistant|the\s+ai)\b", "now"),
    _rule(
        "injection.override",
        2,
        "you",
        r"you\s+are\s+now\s+(?:in\s+)?(?:dan|developer\s+mode|jailbroken|unrestricted|no\s+longer\s+bound)\b",
        "now",
        "dan developer jailbroken unrestricted longer",
    ),
    _rule(
        "injection.secrecy",
        2,
        "do don't dont never must should",
        _NEG
        + r"(?:tell|inform)\s+(?:the\s+)?(?:user|human|operator)s?\b|"
        + _NEG
        + r"(?:mention|reveal|disclose|explain|say)\b[^.\n]{0,40}?\bto\s+(?:the\s+)?(?:user|human|operator)s?\b|"
        + _NEG
        + r"(?:tell|mention|reveal|disclose)\s+(?:that\s+you|anything\s+(?:about|to))\b|"
        + _NEG
        + r"let\s+(?:the\s+)?(?:user|human)s?\s+(?:know|see|notice)\b",
        "user users human operator you",
        "tell inform mention reveal disclose explain say let",
    ),
    _rule(
        "injection.secrecy",
        2,
        "do don't dont never",
        _NEG
        + r"(?:mention|reveal|disclose|acknowledge|repeat|quote|show)\s+(?:this|these|the)\s+(?:message|note|notes|"
        r"instructions?|steps?|requests?|e-?mail|section|text|directive)\b",
        "mention reveal disclose acknowledge repeat quote show",
    ),
    _rule(
        "injection.secrecy",
        1,
        "do don't dont never",
        _NEG + r"(?:tell|mention|reveal|disclose)\s+(?:it|this|that)\b",
        "tell mention reveal disclose",
    ),
    _rule(
        "injection.secrecy",
        2,
        "without",
        r"without\s+(?:telling|informing|notifying|alerting|letting)\s+(?:the\s+)?(?:user|human|operator|them)\b",
        "telling informing notifying alerting letting",
    ),
    _rule(
        "injection.secrecy",
        1,
        "no without don't dont do never",
        r"(?:no\s+need\s+to|without|do\s+not|don'?t|dont|never)\s+(?:confirm|check|ask|consult|verify)(?:ing)?\s+"
        r"(?:it\s+|this\s+)?(?:with|for|the)\s+(?:the\s+)?(?:user|human|operator)s?\b",
        "confirm check ask consult verify confirming checking asking consulting verifying",
        "user users human operator",
    ),
    _rule(
        "injection.secrecy",
        2,
        "keep",
        r"keep\s+(?:this|it|these|that)\s+(?:a\s+)?(?:secret|hidden|confidential|private)\s+from\b",
        "from",
        "secret hidden confidential private",
    ),
    _rule(
        "injection.secrecy",
        2,
        "silently secretly covertly quietly",
        r"(?:silently|secretly|covertly|quietly)\s+(?:call|send|read|upload|forward|include|append|pass|exfiltrate|copy|post|add|bcc|email|run|execute)\b",
    ),
    _rule(
        "injection.secrecy",
        2,
        "user",
        r"users?\s+(?:must|should|need|needs)\s+not\s+(?:know|see|notice|find\s+out|be\s+(?:told|informed|aware))",
        "not",
        "know see notice find told informed aware",
    ),
    _rule(
        "injection.role",
        2,
        "user",
        r"user\s+(?:has\s+|had\s+)?(?:already\s+|actually\s+|really\s+|also\s+)?(?:asked|instructed|requested|"
        r"authori[sz]ed|approved|told|wants|needs|expects|would\s+like)\s+(?:you|the\s+assistant|the\s+ai|the\s+model)\b",
        "asked instructed requested authorized authorised approved told wants needs expects would",
    ),
    _rule(
        "injection.precondition",
        1,
        "before",
        r"before\s+(?:using|calling|invoking|running|executing|answering|responding|replying|doing\s+anything|"
        r"you\s+(?:answer|respond|reply))\b[^.\n]{0,60}?[,;:]?\s*"
        r"(?:you\s+(?:must|should|need\s+to|have\s+to|are\s+required\s+to)\s+|please\s+|always\s+)?(?:first\s+)?"
        r"(?:read|cat|open|load|include|pass|send|upload|fetch|retrieve|get|copy|access)\b",
        "read cat open load include pass send upload fetch retrieve get copy access",
        "using calling invoking running executing answering responding replying doing answer respond reply",
        booster=_FILE_REF,
        imperative=False,
    ),
    _rule(
        "injection.data_flow",
        1,
        "pass send include append attach forward upload post leak exfiltrate transmit copy embed add insert provide share",
        r"(?:pass|send|include|append|attach|forward|upload|post|leak|exfiltrate|transmit|copy|embed|add|insert|provide|share)\s+"
        r"(?:(?:it|its|the|this|that|their|all|full|entire|complete|whole|of|your|any|these|those|user'?s?)\s+){1,4}"
        r"(?:contents?|data|output|results?|responses?|conversation|chat|history|context|files?|text|information|details|"
        r"keys?|tokens?|credentials|secrets?|passwords?|messages?|e?mails?|inbox|mailbox|documents?|notes|logs?|database|"
        r"repository|summary|everything|system\s+prompt|instructions)\b"
        r"[^.\n]{0,60}?\b(?:as|in|into|to|via|through|within|inside|using)\b",
        "content contents data output result results response responses conversation chat history context file files text "
        "information details key keys token tokens credentials secret secrets password passwords message messages email emails "
        "summary everything prompt instructions mail mails inbox mailbox document documents notes log logs database "
        "repository",
        "as in into to via through within inside using",
        booster=DESTINATION,
        rare_anchors=True,
    ),
    _rule(
        "injection.credentials",
        0,
        "api apikey private secret ssh access auth authentication session bearer refresh seed recovery "
        "credential credentials password passwords passphrase",
        r"(?:api[\s_-]?keys?|apikeys?|private\s+keys?|secret\s+keys?|ssh\s+keys?|access\s+(?:tokens?|keys?)|"
        r"auth(?:entication)?\s+tokens?|session\s+(?:tokens?|cookies?)|bearer\s+tokens?|refresh\s+tokens?|"
        r"(?:seed|recovery)\s+phrases?|credentials?|passwords?|passphrases?)\b",
        "key keys apikey apikeys token tokens cookie cookies phrase phrases credential credentials password passwords "
        "passphrase passphrases",
        booster=MOVE_VERB,
        verb_needed=True,
    ),
    _rule(
        "injection.tool_call",
        0,
        "call invoke use run execute trigger",
        r"(?:call|invoke|use|run|execute|trigger)\s+(?:the\s+|your\s+)?"
        r"(?!(?:this|that|a|an|any|another|each|which|other|same)\b)[`'\"]?[a-z0-9_.-]+[`'\"]?\s+(?:tool|function)\b",
        "tool tools function functions",
        booster=_URGENT,
    ),
    _rule(
        "injection.tool_call",
        0,
        "call invoke execute trigger",
        r"(?:call|invoke|execute|trigger)\s+(?:the\s+|your\s+)?[`'\"]?[a-z][a-z0-9]*(?:_[a-z0-9]+)+[`'\"]?\s*"
        r"(?:with|to|on|passing|and|\(|,)",
        booster=_URGENT,
    ),
    # instructions addressed to the model: who is spoken to, then what it is told to do
    _rule(
        "injection.addressed",
        2,
        "note notes message messages instruction instructions reminder reminders important attention warning "
        "memo directive directives",
        r"(?:notes?|messages?|instructions?|reminders?|important|attention|warning|memo|directives?)"
        r"(?:\s+(?:is|are|here|only))?\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+|every\s+|whatever\s+|whichever\s+|an?\s+)?"
        + _AI_NOUN
        + r"\b(?!-|\s+(?:analysis|analyses|analy[sz]er|features?|summary|summaries|summari[sz]ation|search|insights?|"
        r"generation|generated|integration|settings|configuration|provider|pipeline|workflow|review|autofix|"
        r"completion|completions|playground|gateway|usage|costs?|requests?|calls?|endpoint|api)\b)",
        _AI_WORDS,
        tail=_DO,
        imperative=False,
    ),
    _rule(
        "injection.addressed",
        2,
        "dear hey hi hello attention ai llm llms assistant assistants claude gpt chatgpt copilot gemini automated "
        "coding autonomous",
        r"(?:(?:dear|hey|hi|hello|attention)\s+)?(?:the\s+)?"
        + _AI_NOUN
        + r"(?:\s+(?:agents?|assistants?|models?))?\s*(?:[,!]|\s+(?:reading|processing|that\s+reads|who\s+reads|"
        r"summari[sz]ing|working\s+on|handling|triaging|analy[sz]ing|running)\b|\s+(?:instructions?|directive|command)s?\s*:)"
        r"|(?:ai|llm|a\.i\.)(?:\s+(?:agents?|assistants?|models?|bots?))?\s*:"
        r"|(?:dear|hey|hi|hello|attention)\s+(?:the\s+)?" + _AI_NOUN + r"\s*:",
        tail=_DO,
        imperative=False,
        opening=True,
    ),
    _rule(
        "injection.addressed",
        2,
        "you",
        r"you,\s+(?:the\s+|dear\s+)?" + _AI_NOUN + r"\b",
        _AI_WORDS,
        tail=_DO,
        imperative=False,
    ),
    _rule(
        "injection.addressed",
        2,
        "assistant ai claude copilot bot agent gpt chatgpt gemini",
        r"(?<=@)(?:assistant|ai|claude|copilot|bot|agent|gpt|chatgpt|gemini)\b",
        tail=_DO,
        imperative=False,
    ),
    _rule(
        "injection.addressed",
        2,
        "if",
        r"if\s+you(?:\s+are|'re|\s+were)\s+(?:an?\s+|the\s+)?(?:ai|a\.i\.|llm|large\s+language\s+model|language\s+model|"
        r"assistant|agent|bot|chatbot|automated|model|gpt|claude)",
        _AI_WORDS,
        tail=_DO,
        imperative=False,
    ),
    _rule(
        "injection.addressed",
        2,
        "assistant ai agent model claude",
        r"(?<=, )(?:assistant|ai|agent|model|claude)\s*,\s*(?=\w)",
        booster=_DO,
        imperative=False,
    ),
    _rule(
        "injection.addressed",
        2,
        "p",
        r"p\.\s*s\.?\s*(?:for|to)\s+(?:the\s+|any\s+)?" + _AI_NOUN + r"\b",
        _AI_WORDS,
        tail=_DO,
        imperative=False,
    ),
    # a mode switch: the model is told it now runs without its rules
    _rule(
        "injection.mode_switch",
        2,
        "you",
        r"you\s+are\s+now\s+(?:in|operating\s+in|running\s+in|in\s+the)\s+(?:[\w-]+\s+){0,2}mode\b",
        "mode",
        booster=_UNBOUND,
    ),
    _rule(
        "injection.mode_switch",
        2,
        "developer admin debug god maintenance root sudo unrestricted jailbreak jailbroken dan privileged",
        r"(?:developer|admin|debug|god|maintenance|root|sudo|unrestricted|jailbreak|jailbroken|dan|privileged)\s+mode"
        r"\s*(?:is\s+)?(?:now\s+)?(?:enabled|activated|engaged|unlocked|on)\b",
        "mode",
        booster=_UNBOUND,
        imperative=False,
    ),
    _rule(
        "injection.mode_switch",
        1,
        "entering switching switched switches activating",
        r"(?:entering|switching\s+(?:you\s+)?to|switched\s+to|switches\s+you\s+to|activating)\s+(?:the\s+)?"
        r"(?:developer|admin|debug|god|maintenance|root|sudo|unrestricted|jailbreak|dan|privileged)\s+mode\b",
        "mode",
        tail=_UNBOUND,
    ),
    # a "false error": a failure that asks for a retry with more privilege
    _rule(
        "injection.escalation",
        1,
        "retry retrying rerun re try call run running repeat",
        r"(?:retry(?:ing)?|re-?run|try\s+(?:it\s+|this\s+|that\s+)?again|call\s+(?:[\w`'\".-]+\s+){0,3}?again|"
        r"run(?:ning)?\s+(?:[\w`'\".-]+\s+){0,3}?again|repeat)\b[^.\n]{0,80}?\b(?:with|using|as|passing|via|and)\b"
        r"[^.\n]{0,60}?" + _PRIVILEGE,
        "retry retrying rerun again repeat",
        "sudo root admin administrator superuser elevated privileged privileges escalated bypass dangerously "
        "permission permissions verify sandbox unsandboxed unrestricted disable disabling disabled safety security "
        "approval approvals confirmation checks force owner access token",
        booster=_TOOL_SYNTAX,
    ),
)

"""What a client sends besides tool calls that can carry a path or a URL: the URI of
`resources/read` (and subscribe), the arguments of `prompts/get`, and the argument values of
`completion/complete`. They get the same checks as tool arguments, so a `file:` URI or a prompt
argument cannot reach what a tool call could not.

- A resource URI with the `file:` scheme (`file:///…`, `file://localhost/…`, any percent,
  double or overlong encoding) is a path and must lie inside the server's readable roots; an
  `http(s)`, `ftp`, `gopher`, `ws(s)` or `dict` URI is a URL and gets the SSRF checks. Other
  schemes (`notes://…`, `postgres://…/schema`) name the server's own resources and are left to it.
- Prompt and completion arguments are strings by the specification: each is checked by its name
  and content as a tool argument would be (no schema: prompts declare names only).

The other direction too: a server's `sampling/createMessage` to the client is allowed, held for
a person or refused per server (`sampling`), and an `elicitation/create` whose form asks the
user for a password, token, key or other credential is refused (`elicitation.credentials`):
credentials belong in Bastion's secret store or the URL mode of elicitation, never in a form a
server reads back. The form's message, field names and titles are what is read (not descriptions, which often warn
the user not to enter such things).

Pure: values in, a `Refusal` or `Decision` or None out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bastion.policy.arguments import argument_refusal
from bastion.policy.commands import NeedsApproval
from bastion.policy.paths import check_path
from bastion.policy.profile import ToolProfile
from bastion.policy.refusal import Refusal
from bastion.policy.rules import ServerPolicy, SqlCheck
from bastion.policy.urls import Resolver, check_url, check_url_resolved
from bastion.types import Action, Decision, RiskClass

__all__ = ["SERVER_REQUESTS", "SURFACES", "server_request_decision", "surface_refusal"]

SURFACES = frozenset({"resources/read", "resources/subscribe", "prompts/get", "completion/complete"})
SERVER_REQUESTS = frozenset({"sampling/createMessage", "elicitation/create"})
_CREDENTIAL = re.compile(
    r"pass(?:word|phrase|code)|\bpwd\b|secret|credential|private[ _-]?key|ssh[ _-]?key|api[ _-]?key|access[ _-]?key"
    r"|\b(?:auth|access|bearer|refresh|session|api|personal[ _-]access|github|gitlab|slack|oauth|id|your)[ _-]?tokens?\b"
    r"|\b(?:otp|totp|mfa|2fa|one[ -]time[ _-]code)\b|\bpin\b|card[ _-]?number|\bcvv\b|\bcvc\b|\bssn\b"
    r"|social[ _-]security|seed[ _-]phrase|recovery[ _-]phrase|mnemonic",
    re.IGNORECASE,
)
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_COUNTS = frozenset({"max", "min", "num", "number", "count", "total", "budget", "limit"})
_NOT_CREDENTIAL = re.compile(
    r"\b(?:max|min|number[ _-]of|count|budget|limit)[ _-]?tokens?\b|\btokens?[ _-]?(?:count|budget|limit)\b",
    re.IGNORECASE,
)
_NETWORK_SCHEMES = ("http:", "https:", "ftp:", "gopher:", "ws:", "wss:", "dict:")


def surface_refusal(
    rules: ServerPolicy,
    method: str,
    params: Mapping[str, Any] | None,
    sql_check: SqlCheck | None,
    resolve: Resolver | None = None,
) -> Refusal | None:
    params = params or {}
    if method in ("resources/read", "resources/subscribe"):
        return resource_refusal(rules, params.get("uri"), resolve)
    if method == "prompts/get":
        arguments = params.get("arguments")
        return _arguments(rules, str(params.get("name", "")), arguments, sql_check, resolve)
    if method == "completion/complete":
        argument = params.get("argument")
        values: dict[str, object] = {}
        if isinstance(argument, dict):
            values[str(argument.get("name", "value"))] = argument.get("value")  # pyright: ignore[reportUnknownMemberType]
        context = params.get("context")
        known = context.get("arguments") if isinstance(context, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if isinstance(known, dict):
            values.update({str(k): v for k, v in known.items()})  # pyright: ignore[reportUnknownVariableType]
        ref = params.get("ref")
        uri = ref.get("uri") if isinstance(ref, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if isinstance(uri, str) and "{" not in uri:
            refusal = resource_refusal(rules, uri, resolve)
            if refusal is not None:
                return refusal
        return _arguments(rules, "completion", values, sql_check, resolve)
    return None


def resource_refusal(rules: ServerPolicy, uri: object, resolve: Resolver | None) -> Refusal | None:
    if not isinstance(uri, str):
        return None
    scheme = uri.strip()[:8].lower()
    if scheme.startswith("file:"):
        refusal = check_path(uri.strip(), rules.paths, write=False)
    elif scheme.startswith(_NETWORK_SCHEMES):
        refusal = check_url(uri, rules.urls) if resolve is None else check_url_resolved(uri, rules.urls, resolve)
    else:
        return None
    return None if refusal is None else Refusal(refusal.rule, f"resource {uri[:200]!r}: {refusal.reason}")


def _arguments(
    rules: ServerPolicy, name: str, arguments: object, sql_check: SqlCheck | None, resolve: Resolver | None
) -> Refusal | None:
    if arguments is None:
        return None
    # Prompts declare argument names only: any name is accepted, every value is checked.
    profile = ToolProfile(name, RiskClass.READ, (), None, True, {})
    verdict = argument_refusal(rules, profile, arguments, 0, sql_check, resolve)
    if isinstance(verdict, NeedsApproval):  # no approval gate for prompts and completions: refused
        return Refusal(verdict.rule, f"{verdict.reason}, and a {name!r} request cannot wait for a person")
    return verdict


def server_request_decision(rules: ServerPolicy, method: str, params: Mapping[str, Any] | None) -> Decision | None:
    """A server-to-client request's decision: None lets it through."""
    params = params or {}
    if method == "sampling/createMessage":
        if rules.sampling == "deny":
            reason = f"servers.{rules.name}.sampling is deny: this server may not ask the client's model to write"
            return Decision(Action.DENY, "sampling.deny", reason)
        if rules.sampling == "approve":
            reason = f"servers.{rules.name}.sampling is approve: a person decides each sampling request"
            return Decision(Action.APPROVE, "sampling.approve", reason)
        return None
    if method == "elicitation/create" and params.get("mode", "form") == "form":
        asked = _credential_asked(params)
        if asked is not None:
            reason = (
                f"the server asks the user for a credential ({asked!r}) through a form it reads back; "
                f"put the secret in Bastion's store (`bastion secrets set {rules.name} NAME`) instead"
            )
            return Decision(Action.DENY, "elicitation.credentials", reason)
    return None


def _credential_asked(params: Mapping[str, Any]) -> str | None:
    texts: list[str] = [str(params.get("message", ""))]
    schema = params.get("requestedSchema")
    properties = schema.get("properties") if isinstance(schema, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    if isinstance(properties, dict):
        for name, spec in properties.items():  # pyright: ignore[reportUnknownVariableType]
            texts.append(str(name))  # pyright: ignore[reportUnknownArgumentType]
            if _token_field(str(name)):  # pyright: ignore[reportUnknownArgumentType]
                return str(name)  # pyright: ignore[reportUnknownArgumentType]
            if isinstance(spec, dict):
                # Titles, not descriptions: a description often warns ("do not enter your PIN").
                texts.append(str(spec.get("title", "")))  # pyright: ignore[reportUnknownMemberType]
            if isinstance(spec, dict) and spec.get("format") == "password":  # pyright: ignore[reportUnknownMemberType]
                return str(name)  # pyright: ignore[reportUnknownArgumentType]
    for text in texts:
        cleaned = _NOT_CREDENTIAL.sub(" ", text)
        match = _CREDENTIAL.search(cleaned)
        if match is not None:
            return match.group(0).strip(" _-")
    return None


def _token_field(name: str) -> bool:
    """A field named like a token (`token`, `access_token`, `githubToken`), not a count of tokens (`max_tokens`)."""
    words = [word.lower() for word in _WORDS.findall(name)]
    if not words or words[-1] != "token":
        return False
    return len(words) == 1 or words[-2] not in _COUNTS

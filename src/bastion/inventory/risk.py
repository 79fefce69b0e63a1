"""Risk classification of MCP tools: read, write, network, destructive, exec.

Evidence comes from the tool's name (split into words), strong phrases in its
description, its input schema's property names, and its annotations. Annotations come
from an untrusted server, so they can only make a tool *more* dangerous: `readOnlyHint`
never outweighs other evidence. A tool with no evidence of being read-only is WRITE
(fail closed). Config may override the class; the evidence is still shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

__all__ = ["RISK_ORDER", "Classification", "RiskClass", "classify"]


class RiskClass(StrEnum):
    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"
    EXEC = "exec"
    NETWORK = "network"


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


_NAME_WORDS: dict[RiskClass, frozenset[str]] = {
    RiskClass.EXEC: frozenset(
        "exec execute run shell bash sh zsh powershell cmd command eval spawn script terminal subprocess "
        "invoke interpreter repl".split()
    ),
    RiskClass.DESTRUCTIVE: frozenset(
        "delete remove rm drop truncate destroy purge kill wipe erase reset revoke unlink rmdir terminate".split()
    ),
    RiskClass.WRITE: frozenset(
        "write create update edit set put post insert add move rename copy commit push upload save patch modify "
        "append send deploy install merge apply mkdir checkout stage tag publish replace store submit".split()
    ),
    RiskClass.NETWORK: frozenset(
        "fetch http https url browse navigate request download curl web webhook email mail slack".split()
    ),
    RiskClass.READ: frozenset(
        "read get list search find query show describe view cat head tail stat status diff log lookup count "
        "inspect info tree glob grep current convert echo ls".split()
    ),
}
_DESCRIPTION_PHRASES: dict[RiskClass, tuple[str, ...]] = {
    RiskClass.EXEC: (
        "executes a shell command",
        "execute a shell command",
        "runs a shell command",
        "run a command",
        "arbitrary code",
        "execute code",
        "executes code",
    ),
    RiskClass.DESTRUCTIVE: ("permanently", "deletes", "irreversibl", "cannot be undone"),
    RiskClass.WRITE: ("writes to", "overwrite", "creates a new", "modifies"),
    RiskClass.NETWORK: ("sends an email", "makes http requests", "http request", "fetches a url", "from the internet"),
}
_SCHEMA_HINTS: dict[str, RiskClass] = {
    "command": RiskClass.EXEC,
    "cmd": RiskClass.EXEC,
    "script": RiskClass.EXEC,
    "code": RiskClass.EXEC,
    "url": RiskClass.NETWORK,
    "uri": RiskClass.NETWORK,
    "endpoint": RiskClass.NETWORK,
}


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [word for word in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if word]


def classify(tool: Mapping[str, Any], override: RiskClass | None = None) -> Classification:
    signals: dict[RiskClass, list[str]] = {}

    def note(risk: RiskClass, reason: str) -> None:
        signals.setdefault(risk, []).append(reason)

    name = tool.get("name")
    words = _words(name) if isinstance(name, str) else []
    for word in words:
        for risk, vocabulary in _NAME_WORDS.items():
            if word in vocabulary:
                note(risk, f"name contains {word!r}")
    description = tool.get("description")
    if isinstance(description, str):
        lowered = description.lower()
        for risk, phrases in _DESCRIPTION_PHRASES.items():
            for phrase in phrases:
                if phrase in lowered:
                    note(risk, f"description says {phrase!r}")
    schema = tool.get("inputSchema")
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    if isinstance(properties, Mapping):
        keys = {str(key).lower() for key in properties}  # pyright: ignore[reportUnknownVariableType,reportUnknownArgumentType]
        for key in keys:
            if key in _SCHEMA_HINTS:
                note(_SCHEMA_HINTS[key], f"input has a {key!r} argument")
        if "content" in keys and ("path" in keys or "file" in keys):
            note(RiskClass.WRITE, "input takes a path and content")
    annotations = tool.get("annotations")
    if isinstance(annotations, Mapping):
        if annotations.get("destructiveHint") is True:
            note(RiskClass.DESTRUCTIVE, "annotation destructiveHint=true")
        if annotations.get("openWorldHint") is True:
            note(RiskClass.NETWORK, "annotation openWorldHint=true")
        if annotations.get("readOnlyHint") is False:
            note(RiskClass.WRITE, "annotation readOnlyHint=false")
        if annotations.get("readOnlyHint") is True:
            note(RiskClass.READ, "annotation readOnlyHint=true")
    dangerous = [risk for risk in RISK_ORDER if risk in signals and risk is not RiskClass.READ]
    if dangerous:
        risk = dangerous[-1]
    elif RiskClass.READ in signals:
        risk = RiskClass.READ
    else:
        risk = RiskClass.WRITE
        note(RiskClass.WRITE, "no evidence of read-only behaviour")
    ordered = tuple(r for r in RISK_ORDER if r in signals)
    reasons = tuple(reason for r in ordered for reason in signals[r])
    if override is not None:
        return Classification(override, ordered, ("configured risk override", *reasons), "override")
    return Classification(risk, ordered, reasons, "derived")

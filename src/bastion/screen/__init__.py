"""Screening what servers say: tool definitions, prompts and instructions at listing time, and
tool results on the way back. Pure functions: values in, findings and sanitised values out.

`findings`, `invisible`, `normalize`, `index`, `injection`, `links` and `secrets` hold the
shared pieces, `definition` what only definitions carry
(annotations, preferences, tool counts), `listing` screens definitions, `results` screens
what a call returns, `gate` applies each server's settings. Each module's docstring lists
its rule ids and what they match.
"""

from bastion.screen.findings import Action, Finding, Severity
from bastion.screen.injection import injection_findings
from bastion.screen.invisible import invisible_findings, padding_findings, strip_invisible
from bastion.screen.listing import (
    InstructionsVerdict,
    ListingVerdict,
    screen_instructions,
    screen_prompt,
    screen_resource,
    screen_server_instructions,
    screen_tool,
)
from bastion.screen.results import ResultPolicy, ResultVerdict, screen_result

__all__ = [
    "Action",
    "Finding",
    "InstructionsVerdict",
    "ListingVerdict",
    "ResultPolicy",
    "ResultVerdict",
    "Severity",
    "injection_findings",
    "invisible_findings",
    "padding_findings",
    "screen_instructions",
    "screen_prompt",
    "screen_resource",
    "screen_result",
    "screen_server_instructions",
    "screen_tool",
    "strip_invisible",
]

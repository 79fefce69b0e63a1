"""Screening what servers say: tool definitions, prompts and instructions at listing time, and
tool results on the way back. Pure functions: values in, findings and sanitised values out.

`text` holds the shared pieces (findings, invisible characters, padding, injection
heuristics), `listing` screens definitions, `results` screens what a call returns. Each
module's docstring lists its rule ids and what they match.
"""

from bastion.screen.listing import ListingVerdict, screen_instructions, screen_prompt, screen_tool
from bastion.screen.results import ResultPolicy, ResultVerdict, screen_result
from bastion.screen.text import (
    Action,
    Finding,
    Severity,
    injection_findings,
    invisible_findings,
    padding_findings,
    strip_invisible,
)

__all__ = [
    "Action",
    "Finding",
    "ListingVerdict",
    "ResultPolicy",
    "ResultVerdict",
    "Severity",
    "injection_findings",
    "invisible_findings",
    "padding_findings",
    "screen_instructions",
    "screen_prompt",
    "screen_result",
    "screen_tool",
    "strip_invisible",
]

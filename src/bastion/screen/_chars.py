"""Character classes shared by the screeners: what is invisible, what is a control."""

from __future__ import annotations

import re

CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
BIDI = "\u202a-\u202e\u2066-\u2069"
ZERO_WIDTH = "\u00ad\u115f\u1160\u180e\u200b\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb"
TAGS = "\U000e0000-\U000e007f"
FLAG = "\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,6}\U000e007f"
VS = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
JOINERS = "\u200c\u200d"
MARKS = "\u034f\u061c\u200e\u200f"

SOFT = re.compile(f"[{JOINERS}{MARKS}{VS}]")
SUSPECT = re.compile(f"[{CONTROLS}{BIDI}{ZERO_WIDTH}{TAGS}{JOINERS}{MARKS}{VS}]")
"""Anything `strip_invisible` may remove, besides a bare carriage return."""


def is_vs(char: str) -> bool:
    """A variation selector."""
    return "\ufe00" <= char <= "\ufe0f" or "\U000e0100" <= char <= "\U000e01ef"

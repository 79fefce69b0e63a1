"""Durations and moments as people type them on the command line: `30s`, `5m`, `2h`, `7d`, `2w`.

One grammar for every flag that takes a length of time (`tokens create --expires`, `approvals
approve --for`, `alerts snooze --for`) and for every flag that takes a time back from now
(`--since`, `--until`), so that what one command accepts another does too, and a mistyped value
is refused with the same words naming the flag, the value and the forms it takes.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from bastion.errors import ConfigError, ConfigProblem

__all__ = ["DURATION_FORMS", "UNITS", "moment", "parse_duration", "seconds"]

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
"""Seconds in each unit a duration may end with."""
DURATION_FORMS = "a whole number and a unit (s, m, h, d or w), e.g. 30s, 5m, 2h, 7d or 2w"
"""The accepted forms, as the error message states them."""

_DURATION = re.compile(r"\s*(\d+)\s*([smhdw])\s*")


def seconds(text: str) -> int | None:
    """The length of `text` in seconds, or None when it is not a duration (for callers that try another form)."""
    match = _DURATION.fullmatch(text)
    return None if match is None else int(match.group(1)) * UNITS[match.group(2)]


def parse_duration(text: str, option: str) -> float:
    """A length of time given to `option`; anything else is a ConfigError naming the flag and the forms."""
    found = seconds(text)
    if found is None:
        raise ConfigError(None, [ConfigProblem(option, f"{text!r} is not a duration", f"write {DURATION_FORMS}")])
    return float(found)


def moment(text: str | None, option: str, now: float | None = None) -> float | None:
    """A time given to `option` as a duration back from `now` (15m, 2d) or an ISO 8601 date or time.

    An ISO time without a zone is UTC. None stays None (the flag was not given); `now` defaults to
    the wall clock, read once.
    """
    if text is None:
        return None
    back = seconds(text)
    if back is not None:
        return (time.time() if now is None else now) - back
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fix = f"write a duration back from now ({DURATION_FORMS}) or an ISO time such as 2026-11-01T00:00Z"
        raise ConfigError(None, [ConfigProblem(option, f"{text!r} is not a time", fix)]) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()

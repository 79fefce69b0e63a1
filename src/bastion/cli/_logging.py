"""Logging to stderr, as text lines or as one JSON object per line: the one place it is configured.

On a stdio front, stdout belongs to the protocol, so logs only ever go to stderr. The format is
chosen once for the whole process (`bastion --log-format json …` or `BASTION_LOG_FORMAT=json`);
each command then sets its level. A JSON line carries the record's time, level, logger and
message, and every field its call passed in `extra=` (`server`, `tool`, `rule`, `client`,
`request_id` where known), so a log pipeline reads fields instead of parsing text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "ANNOUNCE",
    "TEXT_FORMAT",
    "JsonFormatter",
    "LogFormat",
    "StderrHandler",
    "choose_log_format",
    "chosen_log_format",
    "install_logging",
]

TEXT_FORMAT = "bastion %(levelname)s %(name)s: %(message)s"
ANNOUNCE = "bastion.announce"
"""The logger of the lines a serving command announces itself with (a plain line in text mode)."""


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


_RESERVED = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {"message", "asctime"}
"""Attributes every record has; anything else on a record came from `extra=`."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_") and value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is when a record arrives (never a stream closed since)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # logging must never take the process down; the stdlib reports it
            self.handleError(record)


class _Chosen:
    format = LogFormat.TEXT
    handler: StderrHandler | None = None
    announce: StderrHandler | None = None


def choose_log_format(chosen: LogFormat) -> None:
    """Set the format for this process. JSON is installed at once (level warning until a command
    sets its own), so even commands that never set a level log JSON only."""
    _Chosen.format = chosen
    if chosen is LogFormat.JSON:
        install_logging("warning")


def chosen_log_format() -> LogFormat:
    return _Chosen.format


def install_logging(level: str) -> None:
    """One stderr handler on the root logger, with the chosen formatter, at `level`."""
    root = logging.getLogger()
    if _Chosen.handler is not None:
        root.removeHandler(_Chosen.handler)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if _Chosen.format is LogFormat.JSON else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    _Chosen.handler = handler
    _install_announcements()


def _install_announcements() -> None:
    """`bastion.announce` (where a server listens: what the person who started it needs) is shown
    at every level: the bare message as a plain line, or a JSON line like every other."""
    announce = logging.getLogger(ANNOUNCE)
    if _Chosen.announce is not None:
        announce.removeHandler(_Chosen.announce)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if _Chosen.format is LogFormat.JSON else logging.Formatter("%(message)s"))
    announce.addHandler(handler)
    announce.setLevel(logging.INFO)
    announce.propagate = False
    _Chosen.announce = handler

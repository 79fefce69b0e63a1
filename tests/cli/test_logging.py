"""The log formatters: a JSON line carries a record's `extra=` fields; the text line keeps its shape."""

from __future__ import annotations

import json
import logging

import pytest

from bastion.cli._logging import TEXT_FORMAT, JsonFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("bastion.findings", logging.WARNING, __file__, 1, "finding %s", ("x.y",), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_json_line_has_the_message_and_every_extra_field_that_is_set() -> None:
    line = JsonFormatter().format(_record(server="fs", tool="read", rule="x.y", client=None, request_id=7))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "finding x.y"
    assert entry["level"] == "warning"
    assert entry["logger"] == "bastion.findings"
    assert entry["time"].endswith("Z")
    assert (entry["server"], entry["tool"], entry["rule"], entry["request_id"]) == ("fs", "read", "x.y", 7)
    assert "client" not in entry  # unknown fields are left out, not null
    assert "args" not in entry
    assert "msg" not in entry


def _fail() -> None:
    raise RuntimeError("boom")


def test_an_exception_is_one_field_of_the_same_line() -> None:
    with pytest.raises(RuntimeError) as caught:
        _fail()
    info = (caught.type, caught.value, caught.tb)
    record = logging.LogRecord("bastion", logging.ERROR, __file__, 1, "failed", None, info)
    line = JsonFormatter().format(record)
    assert line.count("\n") == 0
    assert "RuntimeError: boom" in json.loads(line)["exception"]


def test_the_text_line_is_unchanged_by_extra_fields() -> None:
    assert (
        logging.Formatter(TEXT_FORMAT).format(_record(server="fs")) == "bastion WARNING bastion.findings: finding x.y"
    )

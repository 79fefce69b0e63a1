"""Reading a period's evidence out of the audit store: the run of each log's indices the period
covers, the gateway runs it saw, and the oldest entry and payload still held."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from bastion.audit.entry import Kind, Record
from bastion.compliance.evidence import locate, oldest_entry_day, oldest_payload_day, period_rows, runs
from bastion.compliance.timeline import Period
from bastion.store.audit import AuditStore
from bastion.store.audit_open import open_store
from tests.compliance.scenario import PID, Script, at, write_log

DAY = 86_400.0
START = at("2026-10-01T12:00:00")


def start() -> Record:
    return Record(Kind.GATEWAY_START, {"mode": "stdio", "pid": PID, "label": "", "config_sha256": "a" * 64})


def call(n: int) -> Record:
    fields = {"client": "agent", "server": {"name": "mail"}, "tool": "read", "request": str(n)}
    return Record(Kind.CALL_INTENT, fields, {"arguments": {"n": n}})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return home


def record(home: Path, script: Script) -> str:
    async def main() -> str:
        log_id, _ = await write_log(home, script)
        return log_id

    return anyio.run(main)


@pytest.fixture
def store(home: Path) -> Iterator[AuditStore]:
    opened = open_store(home, None)
    yield opened
    opened.close()


def period(first: str, last: str) -> Period:
    return Period.parse(f"{first}..{last}")


def test_a_period_covers_one_run_of_each_logs_indices(home: Path, store: AuditStore) -> None:
    log_id = record(home, [(START, start()), *[(START + DAY * n, call(n)) for n in range(1, 5)]])
    [span] = locate(store, period("2026-10-03", "2026-10-04"))
    assert (span.log_id, span.size, span.lo, span.hi) == (log_id, 5, 2, 4)
    assert span.first["kind"] == "gateway.start"
    assert [row.idx for _, row, _, _ in period_rows(store, [span])] == [2, 3]
    assert all(problem is None for *_, problem in period_rows(store, [span]))


def test_a_period_before_the_log_covers_an_empty_run_and_yields_no_rows(home: Path, store: AuditStore) -> None:
    record(home, [(START, start()), (START + DAY, call(1))])
    [span] = locate(store, period("2026-09-01", "2026-09-30"))
    assert span.lo == span.hi == 0
    assert list(period_rows(store, [span])) == []


def test_an_empty_store_has_no_spans_and_no_oldest_day(store: AuditStore) -> None:
    spans = locate(store, period("2026-10-01", "2026-12-31"))
    assert spans == []
    assert oldest_entry_day(spans) is None
    assert oldest_payload_day(store, spans) is None


def test_a_gateway_without_a_stop_entry_runs_until_now_when_its_process_is_alive(home: Path, store: AuditStore) -> None:
    record(home, [(START, start()), (START + DAY, call(1))])
    quarter = period("2026-10-01", "2026-12-31")
    spans = locate(store, quarter)
    now = START + 5 * DAY
    [running] = runs(spans, quarter, now, lambda pid: pid == PID)
    assert (running.start, running.end, running.ended) == (START, now, "running")
    [gone] = runs(spans, quarter, now, lambda pid: False)
    assert (gone.end, gone.ended) == (START + DAY, "no stop entry")
    assert gone.describe()["start_ms"] == round(START * 1000)


def test_a_stopped_gateway_counts_only_if_it_overlaps_the_period(home: Path, store: AuditStore) -> None:
    record(home, [(START, start()), (START + DAY, Record(Kind.GATEWAY_STOP, {"reason": "signal"}))])
    spans = locate(store, period("2026-10-01", "2026-10-31"))
    [stopped] = runs(spans, period("2026-10-01", "2026-10-31"), START + 9 * DAY, lambda pid: True)
    assert stopped.ended == "stopped"
    assert runs(spans, period("2026-11-01", "2026-11-30"), START + 90 * DAY, lambda pid: True) == []


def test_a_log_that_does_not_begin_with_a_gateway_start_is_not_a_run(home: Path, store: AuditStore) -> None:
    record(home, [(START, call(0)), (START + DAY, call(1))])
    quarter = period("2026-10-01", "2026-12-31")
    assert runs(locate(store, quarter), quarter, START + DAY, lambda pid: True) == []


def test_the_oldest_entry_and_payload_days_are_read_from_the_logs(home: Path, store: AuditStore) -> None:
    record(home, [(START, start()), (START + 2 * DAY, call(1)), (START + 3 * DAY, call(2))])
    spans = locate(store, period("2026-10-01", "2026-12-31"))
    assert oldest_entry_day(spans) == "2026-10-01"
    assert oldest_payload_day(store, spans) == "2026-10-03"

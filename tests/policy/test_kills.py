"""The live kill switches: read from the state store, re-read every period, and kept as last known
when the store cannot be read."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import pytest

from bastion.errors import StoreError
from bastion.policy.kills import KillSwitches


@dataclass(frozen=True)
class Kill:
    server: str
    tool: str


class Source:
    """Kill switches as a store holds them; each read may fail, and a chosen read is announced."""

    def __init__(self, *answers: list[Kill] | StoreError) -> None:
        self._answers = list(answers)
        self.reads = 0
        self.read_all = anyio.Event()

    def kills(self) -> list[Kill]:
        self.reads += 1
        answer = self._answers[min(self.reads, len(self._answers)) - 1]
        if self.reads >= len(self._answers):
            self.read_all.set()
        if isinstance(answer, StoreError):
            raise answer
        return answer


def test_no_tool_is_killed_until_the_store_is_read() -> None:
    switches = KillSwitches(Source([Kill("fs", "rm")]))
    assert switches.current() == frozenset()
    switches.refresh()
    assert switches.current() == frozenset({("fs", "rm")})


def test_a_switch_turned_off_in_the_store_is_off_after_the_next_read() -> None:
    switches = KillSwitches(Source([Kill("fs", "rm"), Kill("git", "push")], [Kill("git", "push")]))
    switches.refresh()
    switches.refresh()
    assert switches.current() == frozenset({("git", "push")})


def test_a_failed_refresh_raises_and_keeps_the_last_switches() -> None:
    switches = KillSwitches(Source([Kill("fs", "rm")], StoreError("database is locked")))
    switches.refresh()
    with pytest.raises(StoreError):
        switches.refresh()
    assert switches.current() == frozenset({("fs", "rm")})


@pytest.mark.anyio
async def test_the_watch_loop_rereads_and_survives_a_store_that_fails(caplog: pytest.LogCaptureFixture) -> None:
    source = Source([Kill("fs", "rm")], StoreError("database is locked"), [Kill("fs", "rm"), Kill("fs", "mv")])
    switches = KillSwitches(source, period=0.0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(switches.watch)
        with anyio.fail_after(5):
            await source.read_all.wait()
        tasks.cancel_scope.cancel()
    assert switches.current() == frozenset({("fs", "rm"), ("fs", "mv")})
    assert "kill switches could not be re-read" in caplog.text

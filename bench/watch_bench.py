"""Watch detectors: cost per call on the hot path (goal p50 ≤ 20 µs) and memory per 10,000 volume series.

The hot path runs three detectors per completed call: `FirstUse.observe`, `ErrorRate.observe`
and `VolumeDetector.observe_event` (three series per call). The traffic is a steady state: 10
clients calling 100 tools on 5 servers, about one call in 50 an error, with time moving ~20 ms
per call; the detectors have seen it before, as they have in a running gateway. Window closing
runs on a timer, off the hot path, and is timed on its own (per window, for the series alive).

Memory: 10,000 series are created, one window closed, and tracemalloc's figure divided.

    .venv/bin/python bench/watch_bench.py --events 200000
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc

from bastion.watch.checks import Check, PingKind
from bastion.watch.detectors import ErrorRate, FirstUse, Health
from bastion.watch.events import RISKS, CallEvent
from bastion.watch.volume import VolumeDetector

T0 = 1_700_000_000.0


def traffic(count: int, seed: int = 1) -> list[CallEvent]:
    rng = random.Random(seed)
    tools = [(f"server{s}", f"tool{t}", RISKS[t % len(RISKS)]) for s in range(5) for t in range(20)]
    clients = [f"client{c}" for c in range(10)]
    events: list[CallEvent] = []
    at = T0
    for _ in range(count):
        at += rng.expovariate(50.0)
        server, tool, risk = rng.choice(tools)
        outcome = "error" if rng.random() < 0.02 else "ok"
        events.append(CallEvent(at, rng.choice(clients), server, tool, risk, outcome, rng.uniform(5, 50)))
    return events


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def hot_path(events: list[CallEvent]) -> None:
    first_use, errors, volume = FirstUse(), ErrorRate(), VolumeDetector()
    for event in events:  # warm-up: the gateway has seen this traffic before
        first_use.observe(event)
        errors.observe(event)
        volume.observe_event(event)
    volume.close_windows(events[-1].at + 600)
    shifted = [
        CallEvent(e.at + (events[-1].at - T0) + 600, e.client, e.server, e.tool, e.risk, e.outcome, e.latency_ms)
        for e in events
    ]
    timings: list[float] = []
    closes: list[float] = []
    deadline = volume.next_deadline() or 0.0
    clock = time.perf_counter_ns
    gc.disable()
    for event in shifted:
        if event.at >= deadline:
            start = clock()
            volume.close_windows(event.at)
            closes.append((clock() - start) / 1e6)
            deadline = volume.next_deadline() or 0.0
        start = clock()
        first_use.observe(event)
        errors.observe(event)
        volume.observe_event(event)
        timings.append((clock() - start) / 1e3)
    gc.enable()
    print(f"hot path (FirstUse + ErrorRate + VolumeDetector.observe_event), {len(timings)} calls:")
    print(f"  p50 {statistics.median(timings):.2f} µs   p99 {percentile(timings, 0.99):.2f} µs   (goal p50 ≤ 20 µs)")
    print(f"  close_windows: {len(closes)} windows, {len(volume)} series, median {statistics.median(closes):.2f} ms")


def health_path(events: list[CallEvent]) -> None:
    health = Health()
    for event in events:
        health.observe(event)
    timings: list[float] = []
    clock = time.perf_counter_ns
    for event in events:
        start = clock()
        health.observe(event)
        timings.append((clock() - start) / 1e3)
    print(f"Health.observe (latency baseline): p50 {statistics.median(timings):.2f} µs")


def volume_memory(series: int = 10_000) -> None:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    volume = VolumeDetector()
    for index in range(series):
        volume.observe(f"server=s{index % 50},tool=tool{index}", T0)
    volume.close_windows(T0 + 600)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(volume) == series
    print(f"VolumeDetector memory: {used / 1e6:.1f} MB per {series:,} series ({used / series:,.0f} B per series)")
    start = time.perf_counter()
    windows = 12
    for window in range(windows):
        volume.close_windows(T0 + 600 + (window + 1) * volume.window)
    per_window = (time.perf_counter() - start) / windows * 1e3
    print(f"  close_windows with {series:,} series: {per_window:.1f} ms per window")


def check_cost() -> None:
    check = Check("cron", cron="*/5 * * * *", tz="Europe/Berlin", grace=60)
    rounds = 2000
    start = time.perf_counter()
    for index in range(rounds):
        check.ping(PingKind.SUCCESS, T0 + index * 300)
    print(f"Check.ping on a cron check (next run via cronsim): {(time.perf_counter() - start) / rounds * 1e6:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    events = traffic(args.events)
    hot_path(events)
    health_path(events)
    volume_memory()
    check_cost()


if __name__ == "__main__":
    main()

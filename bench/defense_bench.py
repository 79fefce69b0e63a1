"""Score Bastion on the public mcp-defense-bench, through the bench's own stdio proxy adapter.

    .venv/bin/python bench/defense_bench.py                       # both profiles, dev + benign
    .venv/bin/python bench/defense_bench.py --profile granted --corpus dev --only command-injection,rug-pull
    .venv/bin/python bench/defense_bench.py --bastion /tmp/snapshot/venv/bin/bastion   # another install

mcp-defense-bench (PyPI ``mcp-defense-bench``, extra ``fastmcp``) drives each fixture's MCP
traffic once straight to a fixture server and once through the proxy under test, and scores
what the proxy changed (``StdioProxyAdapter``). It needs ``fastmcp``, which may pull another
``mcp`` than the one Bastion pins, so it lives in its own virtual environment
(``bench/.venv-defense``, created here when missing). This script runs in two halves:

* started with Bastion's interpreter, it makes sure the bench's venv exists and re-runs itself
  there, passing the ``bastion`` command to use;
* in the bench's venv, it scores every profile. Bastion runs as a subprocess (``bastion wrap``)
  in front of the fixture server, which runs on the bench venv's Python.

Profiles:

* ``defaults``: ``bastion wrap`` as a user runs it: read-only, tools that are not classified read
  are hidden, every stdio server in the sandbox, screening with its default actions.
* ``granted``: ``--no-read-only`` plus every capability, so that hiding is not what is measured.

Both give the sandbox one path, writable: the bench's per-run working directory, which holds the
fixture the server reads and the log of the calls it received. It is also the server's working
directory, so policy resolves relative paths against it. Each run has its own ``BASTION_HOME``.

**Detect** (warn only) is a stderr line of Bastion's findings logger (``--warn-pattern``): every
screening finding is one such line, whatever its severity. Results (the bench's JSON documents)
go to ``bench/results/defense-bench/PROFILE/``. A full run is 358 inputs per profile (46 dev,
312 benign), each two process starts: about 40 minutes for both profiles with ``--jobs 2`` on a
loaded 2-core machine.

The bench's modules are imported only in its venv, by name, so that this file type-checks in
Bastion's venv, where they are not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

BENCH_PACKAGE = "mcp-defense-bench[fastmcp]==0.2.0"
BENCH_VERSION = "0.2.0"
HERE = Path(__file__).resolve().parent
DEFAULT_VENV = HERE / ".venv-defense"
DEFAULT_OUT = HERE / "results" / "defense-bench"
WARN_PATTERN = r"bastion\.findings: finding "
GRANTS = ("write", "network", "destructive", "exec")
PROFILES: dict[str, tuple[str, ...]] = {
    "defaults": (),
    "granted": ("--no-read-only", *(flag for grant in GRANTS for flag in ("--grant", grant))),
}

Json = dict[str, Any]
Wrap = Callable[[list[str], Path], tuple[list[str], dict[str, str]]]


# --- the bench's API, as this script uses it (its modules are loaded by name in its venv) ---


class BenchAdapter(Protocol):
    meta: Any

    def assess(self, input: Mapping[str, Any], testcase: Mapping[str, Any]) -> Awaitable[Any]: ...


class BenchData(Protocol):
    @property
    def rubric(self) -> Json: ...

    def load_cases(self, corpus: str) -> list[Json]: ...


@dataclass(frozen=True)
class BenchApi:
    version: str
    bench_version: str
    stdio_adapter: Callable[..., BenchAdapter]
    bench: BenchData
    call_assess: Callable[[Any, Mapping[str, Any], Mapping[str, Any]], Awaitable[Json]]
    meta_dict: Callable[[Any], Json]
    wired: Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
    score_matched: Callable[..., Awaitable[Json]]
    score_benign: Callable[..., Awaitable[Json]]
    totals: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Json]]

    @classmethod
    def load(cls) -> BenchApi:
        package = importlib.import_module("mcp_defense_bench")
        adapters = importlib.import_module("mcp_defense_bench.adapters")
        stdio = importlib.import_module("mcp_defense_bench.adapters.stdio")
        scoring = importlib.import_module("mcp_defense_bench.scoring")
        bench = importlib.import_module("mcp_defense_bench.bench")
        totals = importlib.import_module("mcp_defense_bench.totals")
        return cls(
            version=str(package.__version__),
            bench_version=str(package.BENCH_VERSION),
            stdio_adapter=stdio.StdioProxyAdapter,
            bench=cast("BenchData", bench.Bench.vendored_snapshot()),
            call_assess=adapters.call_assess,
            meta_dict=adapters.meta_dict,
            wired=scoring.wired,
            score_matched=scoring.score_matched,
            score_benign=scoring.score_benign,
            totals=totals.totals,
        )


# --- outer half: Bastion's interpreter ---


def ensure_venv(venv: Path) -> Path:
    """The bench venv's interpreter, creating the venv and installing the bench when missing."""
    python = venv / "bin" / "python"
    probe = f"import fastmcp, mcp_defense_bench; assert mcp_defense_bench.__version__ == {BENCH_VERSION!r}"
    if python.exists() and subprocess.run([str(python), "-c", probe], capture_output=True, check=False).returncode == 0:
        return python
    print(f"creating {venv} with {BENCH_PACKAGE}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", BENCH_PACKAGE], check=True)
    return python


def bastion_command(given: str | None) -> list[str]:
    if given:
        return shlex.split(given)
    beside = Path(sys.executable).parent / "bastion"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("bastion")
    if found:
        return [found]
    raise SystemExit("no `bastion` next to this interpreter or on PATH; pass --bastion")


def bastion_version(command: Sequence[str]) -> str:
    out = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip().removeprefix("bastion ") or "unknown"


def outer(args: argparse.Namespace, argv: Sequence[str]) -> int:
    python = ensure_venv(Path(args.venv))
    command = bastion_command(args.bastion)
    inner = [str(python), str(Path(__file__).resolve()), *argv, "--inner", "--bastion", shlex.join(command)]
    inner += ["--bastion-version", bastion_version(command)]
    return subprocess.run(inner, check=False).returncode


# --- inner half: the bench's interpreter ---


def make_wrap(bastion: Sequence[str], flags: Sequence[str], homes: Path) -> Wrap:
    """`bastion wrap` in front of the fixture server, with a fresh BASTION_HOME per run."""

    def wrap(server: list[str], workdir: Path) -> tuple[list[str], dict[str, str]]:
        home = tempfile.mkdtemp(prefix="home-", dir=homes)
        command = [*bastion, "wrap", "--name", "fixture", "--fs-write", str(workdir), *flags, "--", *server]
        return command, {"BASTION_HOME": home}

    return wrap


class Prefetched:
    """Answers the scorer with verdicts computed beforehand, so inputs can be assessed in parallel.

    The scorer calls ``assess`` one input at a time; the stdio adapter spends most of that time
    waiting for process starts. Running the same adapter over the same inputs first, a few at a
    time, and then handing the scorer the recorded verdicts gives the bench's own documents.
    """

    def __init__(self, meta: Json, verdicts: Mapping[tuple[str, str], Json]) -> None:
        self.meta = meta
        self._verdicts = verdicts

    def assess(self, input: Mapping[str, Any], testcase: Mapping[str, Any]) -> Json:
        return self._verdicts[(str(testcase["id"]), _which(input, testcase))]


def _which(input: Mapping[str, Any], testcase: Mapping[str, Any]) -> str:
    return "fixture" if input is testcase["fixture"] else "benignControl"


async def prefetch(
    api: BenchApi, adapter: BenchAdapter, cases: Sequence[Json], *, corpus: str, jobs: int, label: str
) -> dict[tuple[str, str], Json]:
    meta = api.meta_dict(adapter)
    arms = ("fixture",) if corpus == "benign" else ("fixture", "benignControl")
    todo = [(tc, arm) for tc in cases if api.wired(meta, tc) for arm in arms]
    verdicts: dict[tuple[str, str], Json] = {}
    gate = asyncio.Semaphore(jobs)
    started = time.monotonic()

    async def one(tc: Json, arm: str) -> None:
        async with gate:
            try:
                verdict = await api.call_assess(adapter, tc[arm], tc)
            except RuntimeError as exc:  # the fixture server failed on its own (a loaded machine): once more
                print(f"  {tc['id']} ({arm}): {exc}; retrying", file=sys.stderr, flush=True)
                verdict = await api.call_assess(adapter, tc[arm], tc)
        verdicts[(str(tc["id"]), arm)] = verdict
        done = len(verdicts)
        if done % 20 == 0 or done == len(todo):
            elapsed = time.monotonic() - started
            print(f"  {label}: {done}/{len(todo)} inputs, {elapsed:.0f} s", file=sys.stderr, flush=True)

    async with asyncio.TaskGroup() as group:
        for tc, arm in todo:
            group.create_task(one(tc, arm))
    return verdicts


async def score_profile(api: BenchApi, args: argparse.Namespace, profile: str, out: Path) -> dict[str, Json]:
    bastion = shlex.split(args.bastion)
    results: dict[str, Json] = {}
    with tempfile.TemporaryDirectory(prefix=f"bastion-homes-{profile}-") as homes:
        adapter = api.stdio_adapter(
            f"bastion-{profile}",
            make_wrap(bastion, PROFILES[profile], Path(homes)),
            warn_pattern=args.warn_pattern,
            timeout=args.timeout,
            version=args.bastion_version,
        )
        meta = api.meta_dict(adapter)
        for corpus in ("dev", "benign") if args.corpus == "all" else (args.corpus,):
            cases = [tc for tc in api.bench.load_cases(corpus) if _selected(tc, args.only)]
            started = time.monotonic()
            verdicts = await prefetch(api, adapter, cases, corpus=corpus, jobs=args.jobs, label=f"{profile} {corpus}")
            seconds = time.monotonic() - started
            scorer = api.score_benign if corpus == "benign" else api.score_matched
            extra = {} if corpus == "benign" else {"corpus": corpus}
            doc = await scorer(Prefetched(meta, verdicts), cases, api.bench.rubric, tool=meta["tool"], **extra)
            doc["run"] = {"seconds": round(seconds, 1), "jobs": args.jobs, "bastionFlags": list(PROFILES[profile])}
            save(out / f"{corpus}.json", doc)
            results[corpus] = doc
    return results


def save(path: Path, doc: Json) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _selected(tc: Mapping[str, Any], only: str | None) -> bool:
    return not only or any(str(tc["id"]).startswith(prefix) for prefix in only.split(","))


# --- report ---


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def dev_figures(doc: Json) -> Json:
    """The bench's totals, and the same over the vectors its stdio adapter drives."""
    coverage: dict[str, Json] = doc["coverage"]
    driven = [c for c in coverage.values() if c["verified"]]
    n = len(driven)
    robust = sum(float(c["robustCoverage"]) for c in driven)
    capability = sum(float(c["capability"]) for c in driven)
    return {
        "driven": n,
        "vectors": len(coverage),
        "cases": doc["summary"]["casesRun"],
        "robust": robust,
        "capability": capability,
        "robust_pct": robust / n if n else 0.0,
        "capability_pct": capability / n if n else 0.0,
        "false_positives": doc["summary"]["falsePositives"],
        "overall": doc["summary"]["overall"],
    }


def vector_rows(api: BenchApi, doc: Json) -> list[str]:
    rows = [
        "| vector | fixtures | level | Capability | RobustCoverage | FP | what Bastion did (first fixture, malicious / control) |"
    ]
    rows.append("|---|---|---|---|---|---|---|")
    by_vector: dict[str, list[Json]] = {}
    for case in doc["cases"]:
        by_vector.setdefault(str(case["id"]).split("/")[0], []).append(case)
    for vid, cell in doc["coverage"].items():
        if not cell["verified"]:
            continue
        first = by_vector[vid][0]
        what = f"{_signal(first['mal'])} / {_signal(first['benign'])}".replace("|", "\\|")
        rows.append(
            f"| {vid} | {cell['fixtures']} | {cell['level']} | {cell['capability']:g} | "
            f"{cell['robustCoverage']:g} | {cell['fpCount']} | {what} |"
        )
    return rows


def _signal(verdict: Mapping[str, Any]) -> str:
    if not verdict.get("detect"):
        return "passed unchanged"
    return str(verdict.get("signal") or "flagged")[:110]


def cause(verdict: Mapping[str, Any]) -> str:
    """What made Bastion's run differ, in a few words: the policy rule, a hidden tool, a rewrite or a finding."""
    signal = str(verdict.get("signal") or "")
    if not verdict.get("detect"):
        return "passed"
    if rule := re.search(r"Refused by policy \(([\w.]+)\)", signal):
        return f"refused: {rule[1]}"
    if "Unknown tool" in signal or "(tools/list): hid " in signal:
        return "hidden (not granted)"
    if finding := re.search(r"finding ([\w.]+)", signal):
        return f"warned: {finding[1]}"
    for marker, text in (
        ("rewrote a tool definition", "definition rewritten"),
        ("rewrote the result", "result rewritten"),
    ):
        if marker in signal:
            return text
    return signal[:60]


def causes(verdicts: Sequence[Mapping[str, Any]]) -> str:
    counts = Counter(cause(v) for v in verdicts)
    return ", ".join(f"{what} {n}" for what, n in counts.most_common())


def totals_line(api: BenchApi, doc: Json) -> str:
    parts: list[str] = []
    for name, t in api.totals(api.bench.rubric, doc["coverage"]).items():
        label = name.removeprefix("family:") + (" family" if name.startswith("family:") else "")
        parts.append(f"{label} {t['percent']} ({t['robustCoverage']:.1f}/{t['vectors']})")
    return "bench totals (over all rubric vectors): " + " · ".join(parts)


def report(api: BenchApi, results: Mapping[str, Mapping[str, Json]]) -> None:
    print(f"\nmcp-defense-bench {api.version} (bench {api.bench_version}), Bastion through StdioProxyAdapter\n")
    head = (
        "| profile | RobustCoverage (driven vectors) | Capability (driven) | matched FPs | benign FP rate (95 % CI) |"
    )
    print(head)
    print("|---|---|---|---|---|")
    for profile, docs in results.items():
        cells = [profile, "", "", "", ""]
        if "dev" in docs:
            f = dev_figures(docs["dev"])
            cells[1] = f"**{_pct(f['robust_pct'])}** ({f['robust']:.2f}/{f['driven']}; bench total {f['overall']})"
            cells[2] = f"{_pct(f['capability_pct'])} ({f['capability']:g}/{f['driven']})"
            cells[3] = f"{f['false_positives']} of {f['cases']} cases"
        if "benign" in docs:
            s = docs["benign"]["summary"]
            ci = s["fpRate95ci"]
            cells[4] = (
                f"**{_pct(s['fpRate'])}** ({s['falsePositives']}/{s['items']}; {_pct(ci['lo'])} to {_pct(ci['hi'])})"
            )
        print("| " + " | ".join(cells) + " |")
    for profile, docs in results.items():
        if "dev" in docs:
            print(f"\n### {profile}: per vector (dev corpus)\n")
            print("\n".join(vector_rows(api, docs["dev"])))
            print(f"\n{totals_line(api, docs['dev'])}")
            cases = docs["dev"]["cases"]
            print(f"\nmalicious fixtures: {causes([c['mal'] for c in cases])}")
            print(f"benign controls: {causes([c['benign'] for c in cases])}")
            flagged = [c for c in cases if c["falsePositive"] or c["level"] == "none"]
            if flagged:
                print("\nmissed or false positive:")
                for c in flagged:
                    tag = "FP  " if c["falsePositive"] else "miss"
                    print(f"  {tag} {c['id']}: {_signal(c['mal'])} / {_signal(c['benign'])}")
        if "benign" in docs:
            s = docs["benign"]["summary"]
            kinds = ", ".join(f"{k} {v['fp']}/{v['n']}" for k, v in s["byKind"].items())
            print(f"\n{profile} benign corpus by kind (FP/items): {kinds}")
            fps = [item for item in docs["benign"]["items"] if item["falsePositive"]]
            print(f"  causes: {causes([item['verdict'] for item in fps])}")
            for item in fps:
                print(f"  FP {item['id']}: {_signal(item['verdict'])}")
            print(f"  ({docs['benign']['run']['seconds']:.0f} s)")
        if "dev" in docs:
            print(f"{profile} dev corpus: {docs['dev']['run']['seconds']:.0f} s")


async def inner(args: argparse.Namespace) -> int:
    api = BenchApi.load()
    profiles = list(PROFILES) if args.profile == "both" else [args.profile]
    results: dict[str, dict[str, Json]] = {}
    for profile in profiles:
        results[profile] = await score_profile(api, args, profile, Path(args.out) / profile)
    report(api, results)
    print(f"\nresults: {args.out}/PROFILE/{{dev,benign}}.json", file=sys.stderr)
    return 0


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--profile", choices=[*PROFILES, "both"], default="both")
    p.add_argument("--corpus", choices=["dev", "benign", "all"], default="all")
    p.add_argument("--only", help="only cases whose id starts with one of these comma-separated prefixes")
    p.add_argument("--jobs", type=int, default=2, help="inputs assessed at once (each is two process starts)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds for one run of one input")
    p.add_argument("--warn-pattern", default=WARN_PATTERN, help="a stderr line matching this is a detection")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="where the bench's result documents go")
    p.add_argument("--venv", default=str(DEFAULT_VENV), help="the bench's virtual environment")
    p.add_argument("--bastion", help="the bastion command (default: next to this interpreter)")
    p.add_argument("--bastion-version", default="unknown", help=argparse.SUPPRESS)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    args = parse(given)
    if args.inner:
        return asyncio.run(inner(args))
    return outer(args, given)


if __name__ == "__main__":
    sys.exit(main())

"""Screening quality on Bastion's own corpora: detection and false positives, tune vs holdout.

The corpora are `tests/screen/corpus/results.jsonl` (tool results) and `listings.jsonl` (tool,
prompt and resource definitions and server instructions), written by
`tests/screen/corpus/generate.py`. Whole families are assigned to `tune` or `holdout`; the
detectors were tuned on `tune` only.

- detection: attacks with at least one HIGH finding;
- false positives: benign texts with at least one HIGH finding.

Results are screened with the default policy and the names of the tools their server lists
(an item's `tools`, else `SERVER_TOOLS`: a web and file server), as the gateway knows them
from the listing; listings with `flag` (findings are the same under every action) and the
other servers' tool names below, as a gateway aggregating them would know them.

    .venv/bin/python bench/screen_corpus.py            # the table
    .venv/bin/python bench/screen_corpus.py --misses   # also every miss and false positive
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from bastion.screen.findings import Finding, Severity
from bastion.screen.listing import screen_instructions, screen_prompt, screen_resource, screen_tool
from bastion.screen.results import ResultPolicy, screen_result

CORPUS = Path(__file__).parents[1] / "tests" / "screen" / "corpus"
OTHER_TOOLS = frozenset(
    {
        "send_email",
        "github_create_issue",
        "slack_post_message",
        "run_command",
        "write_file",
        "http_request",
        "fetch",
        "web_search",
        "read_file",
        "get_current_time",
        "git_log",
    }
)


def load(name: str) -> list[dict[str, Any]]:
    with (CORPUS / f"{name}.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


SERVER_TOOLS = frozenset({"fetch", "search_web", "read_file", "list_directory", "get_page"})


def result_findings(item: dict[str, Any]) -> tuple[Finding, ...]:
    listed = frozenset(item["tools"]) if "tools" in item else SERVER_TOOLS
    return screen_result({"content": [{"type": "text", "text": item["text"]}]}, ResultPolicy(), listed).findings


def listing_findings(item: dict[str, Any]) -> tuple[Finding, ...]:
    definition = item["definition"]
    kind = item.get("kind", "tool")
    if kind == "instructions":
        return screen_instructions(definition["instructions"], "flag")[1]
    if kind == "prompt":
        return screen_prompt(definition, "flag").findings
    if kind == "resource":
        return screen_resource(definition, "flag").findings
    return screen_tool(definition, "flag", OTHER_TOOLS).findings


def flagged(findings: tuple[Finding, ...]) -> bool:
    return any(f.severity is Severity.HIGH for f in findings)


def evaluate(name: str) -> dict[tuple[str, str], list[tuple[dict[str, Any], tuple[Finding, ...]]]]:
    """Each (label, split) with its items and their findings."""
    screen = result_findings if name == "results" else listing_findings
    groups: dict[tuple[str, str], list[tuple[dict[str, Any], tuple[Finding, ...]]]] = defaultdict(list)
    for item in load(name):
        groups[item["label"], item["split"]].append((item, screen(item)))
    return groups


def rate(items: list[tuple[dict[str, Any], tuple[Finding, ...]]]) -> tuple[int, int]:
    return sum(flagged(findings) for _, findings in items), len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--misses", action="store_true", help="list every missed attack and false positive")
    parser.add_argument("--split", choices=["tune", "holdout"], help="with --misses: only this split")
    args = parser.parse_args()
    print(f"{'corpus':<10} {'split':<8} {'detection (HIGH on attacks)':>30} {'false positives (HIGH on benign)':>34}")
    for name in ("results", "listings"):
        groups = evaluate(name)
        for split in ("tune", "holdout"):
            hit, attacks = rate(groups["attack", split])
            fp, benign = rate(groups["benign", split])
            print(
                f"{name:<10} {split:<8} {f'{hit}/{attacks} = {hit / attacks:.1%}':>30} "
                f"{f'{fp}/{benign} = {fp / benign:.1%}':>34}"
            )
        if args.misses:
            for (label, split), items in sorted(groups.items()):
                if args.split and split != args.split:
                    continue
                for item, findings in items:
                    if flagged(findings) == (label == "attack"):
                        continue
                    shown = item.get("text") or json.dumps(item.get("definition"), ensure_ascii=False)
                    rules = sorted({(f.rule, f.severity.value) for f in findings})
                    print(f"  {label} {split} {item['family']}: {shown[:160]!r}\n      {rules}")


if __name__ == "__main__":
    main()

"""Views of a period computed from its entries: access review, identities, inventory, digests,
detectors and the derived files of the pack. Entries come from storage and are trusted with no shape."""

from __future__ import annotations

from typing import Any

from bastion.compliance import catalog as c
from bastion.compliance.timeline import Period
from bastion.compliance.views import Views, detectors, documents
from bastion.config.load import parse_config

MAIL = {"name": "mail", "id": "srv_1", "version": "1.0"}
CONFIG = parse_config(
    '[servers.mail]\ncommand = "mail-server"\nargs = ["--inbox"]\ngrants = ["write"]\n'
    '[servers.api]\nurl = "https://user:pw@api.example:8443/v1?token=t"\n'
    '[clients.agent]\nservers = ["mail"]\n[watch]\nerror_threshold = 7\n'
    "[watch.checks.nightly]\nperiod = 86400\n"
)


def call(kind: str, client: str = "agent", tool: str = "send", **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "client": client, "server": MAIL, "tool": tool, "t": 1000, **extra}


def views(*entries: dict[str, Any]) -> Views:
    found = Views()
    for entry in entries:
        found.add(entry)
    return found


def test_the_access_review_counts_each_clients_calls_refusals_and_outcomes_per_tool() -> None:
    seen = views(
        call("call.intent"),
        call("call.outcome", status="ok"),
        call("call.intent"),
        call("call.outcome"),
        call("call.denied", tool="delete"),
        {"kind": "listing.admitted", "listing": "tools", "client": "agent", "server": MAIL,
         "definitions": {"send": "h1", "delete": "h2"}},
    )  # fmt: skip
    review = seen.access_review(None)
    assert review["used"] == [
        {"client": "agent", "server": "mail", "tool": "delete", "denied": 1},
        {"client": "agent", "server": "mail", "tool": "send", "calls": 2, "ok": 1, "unknown": 1},
    ]
    assert review["offered"] == [{"client": "agent", "server": "mail", "tools": ["delete", "send"]}]
    assert review["granted"] == {}


def test_the_access_review_states_what_the_configuration_grants() -> None:
    granted = views().access_review(CONFIG)["granted"]
    assert granted["servers"]["mail"]["capabilities"] == ["read", "write"]
    assert granted["clients"]["agent"]["servers"] == ["mail"]


def test_entries_of_no_usable_shape_are_counted_without_failing() -> None:
    seen = views(
        {"kind": "call.intent", "server": "not a mapping", "client": 7, "t": "late"},
        {"kind": "listing.admitted", "listing": "tools", "definitions": ["x"]},
        {"kind": None},
        {},
    )
    assert seen.anonymous_calls == 1
    assert seen.clients == 0
    assert seen.tally["call.intent"] == 1
    assert seen.identities()["clients"] == {"(none)": {"entries": {"call.intent": 1}, "apps": []}}


def test_identities_name_each_clients_apps_and_each_servers_ids_and_servers_without_one() -> None:
    seen = views(
        call("call.intent", client_app="claude-code"),
        {"kind": "call.intent", "client": "agent", "server": {"name": "legacy"}, "tool": "t"},
    )
    identities = seen.identities()
    assert identities["clients"]["agent"]["apps"] == ["claude-code"]
    assert identities["servers"]["mail"] == {"id": ["srv_1"], "version": ["1.0"]}
    assert seen.servers_without_id == ("legacy",)


def test_the_inventory_joins_configured_listed_and_called_servers_and_hides_url_credentials() -> None:
    seen = views(call("call.intent"), {"kind": "listing.admitted", "listing": "tools", "server": MAIL,
                                       "definitions": {"send": "h1"}})  # fmt: skip
    servers = seen.inventory(CONFIG, [])["servers"]
    assert set(servers) == {"api", "mail"}
    assert servers["mail"]["tools_listed"] == {"send": "h1"}
    assert servers["mail"]["tools_called"] == ["send"]
    assert servers["mail"]["configured"]["command"] == ["mail-server", "--inbox"]
    assert servers["api"]["configured"]["url"] == "https://api.example:8443/\u2026"
    assert servers["api"]["identities"] == []


def test_configuration_digests_are_listed_in_the_order_first_seen() -> None:
    seen = views(
        {"kind": "gateway.start", "config_sha256": "b", "t": 50},
        {"kind": "config.loaded", "config_sha256": "a", "t": 10},
        {"kind": "gateway.start", "config_sha256": "b", "t": 90},
        {"kind": "gateway.start", "t": 5},
    )
    assert seen.digests() == [
        {"config_sha256": "a", "starts": 1, "first_ms": 10, "last_ms": 10},
        {"config_sha256": "b", "starts": 2, "first_ms": 50, "last_ms": 90},
    ]


def test_detectors_are_read_from_the_configuration_or_unknown_without_one() -> None:
    assert detectors(None) == {"known": False}
    found = detectors(CONFIG)
    assert found["errors"] == {"window": 20, "threshold": 7}
    assert found["silence_checks"] == ["nightly"]


def test_the_derived_files_count_what_they_hold_and_retention_says_when_payloads_are_overdue() -> None:
    period = Period.parse("2026-10-01..2026-12-31")
    seen = views(call("call.intent"), {"kind": "payload.shredded", "t": 1})
    soc2 = parse_config('[audit]\nretention = "soc2"\n')
    files = documents(seen, soc2, "bastion.toml", [], [], period, period.end, ("2025-01-01", "2025-01-01"))
    assert set(files) == {c.INVENTORY, c.ACCESS_REVIEW, c.ALERTS, c.IDENTITIES, c.CONFIG, c.COVERAGE, c.RETENTION}
    retention, count = files[c.RETENTION]
    assert isinstance(retention, dict)
    assert (retention["payload_days"], retention["overdue"], retention["shredded_in_period"], count) == (
        365,
        True,
        1,
        1,
    )
    assert files[c.ACCESS_REVIEW][1] == 1
    config, digests = files[c.CONFIG]
    assert isinstance(config, dict)
    assert (config["source"], config["digests_recorded"], digests) == ("bastion.toml", [], 0)
    assert config["snapshot"]["audit"]["retention"] == "soc2"

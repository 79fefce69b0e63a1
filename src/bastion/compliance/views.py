"""Views of the period computed from its entries: access review, identities, alerts and their
triage, reviews of drift, configuration digests, inventory. Pure: entries in, JSON values out.

`Views.add` takes every entry of the period once, in any order of logs; the views are built at
the end. Entries come from storage, so no field is trusted to have a shape.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlsplit

from bastion.compliance import catalog as c
from bastion.compliance.controls import CALL_KINDS, retention_days, text
from bastion.compliance.timeline import GAP_TOLERANCE, Interval, Period, day, iso
from bastion.config.model import BastionConfig, ServerConfig

__all__ = ["Views", "config_snapshot", "detectors", "documents"]

MASK = "<masked>"


def _mapping(value: object) -> Mapping[str, Any]:
    return cast(Mapping[str, Any], value) if isinstance(value, dict) else {}


def _server(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(entry.get("server"))


class Views:
    def __init__(self) -> None:
        self.tally: Counter[str] = Counter()
        self._used: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
        self._offered: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._clients: dict[str, Counter[str]] = defaultdict(Counter)
        self._apps: dict[str, set[str]] = defaultdict(set)
        self._servers: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._listed: dict[str, dict[str, str]] = defaultdict(dict)
        self._tokens: list[dict[str, Any]] = []
        self._alerts: dict[str, dict[str, Any]] = {}
        self._drift: list[tuple[int, str]] = []
        self._reviews: list[tuple[int, str]] = []
        self._digests: dict[str, list[int]] = defaultdict(list)
        self.unattributed = 0
        self.anonymous_calls = 0
        self._no_id: set[str] = set()

    def add(self, entry: Mapping[str, Any]) -> None:
        kind, change, t = text(entry, "kind"), text(entry, "change"), entry.get("t", 0)
        moment = t if isinstance(t, int) else 0
        self.tally[kind] += 1
        if change:
            self.tally[f"{kind}:{change}"] += 1
        server = _server(entry)
        name = text(server, "name")
        if kind in CALL_KINDS:
            self._call(entry, kind, name, server)
        elif kind == "listing.admitted" and text(entry, "listing") == "tools":
            definitions = _mapping(entry.get("definitions"))
            self._offered[(text(entry, "client"), name)].update(definitions)
            self._listed[name].update({str(k): str(v) for k, v in definitions.items()})
        elif kind == "client.change":
            self._tokens.append(
                {"t": moment, **{k: entry.get(k) for k in ("client", "change", "by", "servers", "role")}}
            )
        elif kind in ("alert.change", "alert.triage"):
            self._alert(entry, kind, moment)
        elif kind == "pin.drift":
            self._drift.append((moment, name))
        elif kind in ("gateway.start", "config.loaded") and text(entry, "config_sha256"):
            self._digests[text(entry, "config_sha256")].append(moment)
        if kind == "pin.change" and change.startswith("review."):
            self._reviews.append((moment, name))
        if (kind == "policy.change" or (kind == "pin.change" and change.startswith("review."))) and not text(
            entry, "by"
        ):
            self.unattributed += 1

    def _call(self, entry: Mapping[str, Any], kind: str, name: str, server: Mapping[str, Any]) -> None:
        client = text(entry, "client")
        if not client:
            self.anonymous_calls += 1
        tool = text(entry, "tool") or text(entry, "method")
        used = self._used[(client, name, tool)]
        if kind == "call.intent":
            used["calls"] += 1
        elif kind == "call.denied":
            used["denied"] += 1
        else:
            used[text(entry, "status") or "unknown"] += 1
        self._clients[client][kind] += 1
        if text(entry, "client_app"):
            self._apps[client].add(text(entry, "client_app"))
        facts = self._servers[name]
        for key in ("id", "version", "sandbox"):
            if text(server, key):
                facts[key].add(text(server, key))
        if not text(server, "id") and name:
            self._no_id.add(name)

    def _alert(self, entry: Mapping[str, Any], kind: str, moment: int) -> None:
        key = text(entry, "alert")
        alert = self._alerts.setdefault(key, {"alert": key, "opened_ms": None, "changes": [], "triage": []})
        by = text(entry, "by")
        if kind == "alert.triage":
            alert["triage"].append(
                {"t": moment, "by": by, "action": text(entry, "triage"), "note": text(entry, "note")}
            )
            return
        to = text(entry, "to")
        alert["changes"].append({"t": moment, "from": entry.get("from"), "to": to, "by": by or None})
        for field in ("detector", "severity", "reason"):
            if text(entry, field):
                alert[field] = text(entry, field)
        if to == "open" and alert["opened_ms"] is None:
            alert["opened_ms"] = moment
        if by:
            alert["triage"].append({"t": moment, "by": by, "action": to, "note": text(entry, "note")})

    # -- the views --------------------------------------------------------------------------------------------

    @property
    def servers_without_id(self) -> tuple[str, ...]:
        return tuple(sorted(self._no_id))

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert with a change in the period; `triaged` when a person acted on it."""
        found: list[dict[str, Any]] = []
        for alert in sorted(self._alerts.values(), key=lambda a: (a["opened_ms"] or 0, a["alert"])):
            found.append(
                {**alert, "raised_in_period": alert["opened_ms"] is not None, "triaged": bool(alert["triage"])}
            )
        return found

    def untriaged(self) -> tuple[str, ...]:
        return tuple(a["alert"] for a in self.alerts() if a["raised_in_period"] and not a["triaged"])

    def unreviewed_drift(self) -> tuple[str, ...]:
        """Servers with a drift finding that no later review in the period answered."""
        return tuple(sorted({s for t, s in self._drift if not any(rs == s and rt >= t for rt, rs in self._reviews)}))

    def digests(self) -> list[dict[str, Any]]:
        return [
            {"config_sha256": digest, "starts": len(times), "first_ms": min(times), "last_ms": max(times)}
            for digest, times in sorted(self._digests.items(), key=lambda item: min(item[1]))
        ]

    def access_review(self, config: BastionConfig | None) -> dict[str, Any]:
        used = [
            {"client": client, "server": server, "tool": tool, **dict(sorted(counts.items()))}
            for (client, server, tool), counts in sorted(self._used.items())
        ]
        offered = [
            {"client": client, "server": server, "tools": sorted(tools)}
            for (client, server), tools in sorted(self._offered.items())
        ]
        granted: dict[str, Any] = {}
        if config is not None:
            granted = {
                "servers": {
                    name: {
                        "capabilities": ["read", *sorted(server.capabilities)],
                        "allow_tools": list(server.tools.allow),
                        "deny_tools": list(server.tools.deny),
                        "approval_classes": list(server.approval.classes),
                    }
                    for name, server in sorted(config.servers.items())
                },
                "clients": {name: rules.model_dump(mode="json") for name, rules in sorted(config.clients.items())},
            }
        return {"granted": granted, "offered": offered, "used": used, "token_changes": self._tokens}

    def identities(self) -> dict[str, Any]:
        clients = {
            client or "(none)": {"entries": dict(sorted(kinds.items())), "apps": sorted(self._apps[client])}
            for client, kinds in sorted(self._clients.items())
        }
        servers = {
            name or "(none)": {key: sorted(values) for key, values in sorted(facts.items())}
            for name, facts in sorted(self._servers.items())
        }
        return {"clients": clients, "servers": servers, "token_changes": self._tokens}

    @property
    def clients(self) -> int:
        return len([client for client in self._clients if client])

    def inventory(self, config: BastionConfig | None, gateways: list[dict[str, Any]]) -> dict[str, Any]:
        names = sorted(set(self._servers) | set(self._listed) | set(config.servers if config else ()))
        servers: dict[str, Any] = {}
        for name in filter(None, names):
            configured = config.servers.get(name) if config else None
            servers[name] = {
                "configured": _server_summary(configured) if configured is not None else None,
                "identities": sorted(self._servers[name].get("id", set())) if name in self._servers else [],
                "tools_listed": dict(sorted(self._listed.get(name, {}).items())),
                "tools_called": sorted({tool for (_, server, tool) in self._used if server == name}),
            }
        return {"gateways": gateways, "servers": servers}


def _server_summary(server: ServerConfig) -> dict[str, Any]:
    return {
        "transport": server.transport,
        "command": [server.command, *server.args] if server.command else None,
        "url": _origin(server.url) if server.url else None,
        "read_only": server.read_only,
        "capabilities": ["read", *sorted(server.capabilities)],
        "sandbox": server.sandbox,
        "fs_read": list(server.fs_read),
        "fs_write": list(server.fs_write),
        "enabled": server.enabled,
    }


def _origin(url: str) -> str:
    """A URL without its credentials, path and query (webhook URLs are secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/…" if parts.scheme else MASK


def config_snapshot(config: BastionConfig) -> dict[str, Any]:
    """The configuration as JSON with what may be secret masked: environment and header values,
    URLs of sinks, webhooks and stores (their paths and queries often hold tokens)."""
    data = config.model_dump(mode="json")
    for server in data.get("servers", {}).values():
        server["env"] = dict.fromkeys(server.get("env", {}), MASK)
        server["headers"] = dict.fromkeys(server.get("headers", {}), MASK)
        if server.get("url"):
            server["url"] = _origin(server["url"])
    for sink in data.get("watch", {}).get("sinks", []):
        if sink.get("url"):
            sink["url"] = _origin(sink["url"])
    for section, key in (("watch", "heartbeat_url"), ("approvals", "webhook_url"), ("audit", "store")):
        value = data.get(section, {}).get(key)
        if isinstance(value, str) and value:
            data[section][key] = _origin(value) if "://" in value else value
    return data


def detectors(config: BastionConfig | None) -> dict[str, Any]:
    """What the watcher was set to detect, as the configuration says."""
    if config is None:
        return {"known": False}
    watch = config.watch
    return {
        "known": True,
        "enabled": watch.enabled,
        "first_use": {"learn_until": watch.learn_until, "expected": {k: list(v) for k, v in watch.expected.items()}},
        "volume": {"window_s": watch.volume_window, "min_calls": watch.volume_min_calls},
        "errors": {"window": watch.error_window, "threshold": watch.error_threshold},
        "drift": True,
        "silence_checks": sorted(watch.checks),
        "sinks": [sink.kind for sink in watch.sinks],
        "escalate_after_s": watch.escalate_after,
        "remind_every_s": watch.remind_every,
    }


def documents(
    views: Views,
    config: BastionConfig | None,
    config_source: str | None,
    gateways: list[dict[str, Any]],
    found_gaps: list[Interval],
    period: Period,
    now: float,
    oldest: tuple[str | None, str | None],
) -> dict[str, tuple[dict[str, Any] | list[Any], int]]:
    """The pack's derived evidence files: catalog path → (JSON value, items it counts)."""
    inventory = views.inventory(config, gateways)
    review = views.access_review(config)
    alerts = views.alerts()
    identities = views.identities()
    digests = views.digests()
    profile = config.audit.retention if config else "none"
    days = retention_days(profile)
    oldest_entry, oldest_payload = oldest
    due = day(now - days * 86400) if days else None
    snapshot = config_snapshot(config) if config else None
    coverage = {
        "detectors": detectors(config),
        "runs": gateways,
        "tolerance_s": GAP_TOLERANCE,
        "until": iso(min(period.end, now)),
        "gaps": [{"start": iso(start), "end": iso(end)} for start, end in found_gaps],
    }
    retention = {
        "profile": profile,
        "payload_days": days,
        "entries": "never pruned; payloads are crypto-shredded a whole day at a time by `bastion audit shred`",
        "oldest_entry_day": oldest_entry,
        "oldest_payload_day": oldest_payload,
        "payloads_due_for_shredding_before": due,
        "overdue": bool(due and oldest_payload and oldest_payload < due),
        "shredded_in_period": views.tally.get("payload.shredded", 0),
    }
    return {
        c.INVENTORY: (inventory, len(inventory["servers"])),
        c.ACCESS_REVIEW: (review, len(review["used"])),
        c.ALERTS: (alerts, len(alerts)),
        c.IDENTITIES: (identities, len(identities["clients"]) + len(identities["servers"])),
        c.CONFIG: ({"source": config_source, "digests_recorded": digests, "snapshot": snapshot}, len(digests)),
        c.COVERAGE: (coverage, len(gateways)),
        c.RETENTION: (retention, 1),
    }

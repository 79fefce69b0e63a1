"""Which entries evidence which control, and each control's status from what happened. Pure.

`artefacts_of` sorts one entry into the pack's evidence files. `Facts` is what the evidence
gathering found in the period (counts, gaps, alerts without triage …); `assess` turns it into
a status per control: evidenced, no events in period, or a gap that says what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from bastion.compliance import catalog as c
from bastion.compliance.timeline import Interval, Period, iso, span, stamp

__all__ = [
    "CALL_KINDS",
    "HIPAA_DAYS",
    "THREAT_RULES",
    "Assessment",
    "Facts",
    "Status",
    "artefacts_of",
    "assess",
    "describe",
    "retention_days",
    "screened",
    "text",
]

CALL_KINDS = frozenset({"call.intent", "call.outcome", "call.denied"})
THREAT_RULES = ("urls.", "screen.", "injection.", "exfil.", "secret.", "invisible.", "padding.", "listing.")
"""Refusals for reaching beyond the boundary (SSRF, URL rules) or for what screening found."""
HIPAA_DAYS = 6 * 365
_PROFILES = {"none": None, "soc2": 365, "hipaa": HIPAA_DAYS}


class Status(StrEnum):
    EVIDENCED = "evidenced"
    NO_EVENTS = "no events in period"
    GAP = "gap"


def text(entry: Mapping[str, Any], key: str) -> str:
    """A string field of an entry, or '' (entries come from storage: trust no shape)."""
    value = entry.get(key)
    return value if isinstance(value, str) else ""


def _rule(entry: Mapping[str, Any]) -> str:
    decision = entry.get("decision")
    return text(cast(Mapping[str, Any], decision), "rule") if isinstance(decision, dict) else ""


def screened(entry: Mapping[str, Any]) -> bool:
    """What screening found (a `screen.finding` entry), or a call outcome or listing that carries findings."""
    if entry.get("kind") == "screen.finding":
        return True
    return entry.get("kind") in ("call.outcome", "listing.admitted") and bool(
        entry.get("screen") or entry.get("screening")
    )


def artefacts_of(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """The evidence files (catalog paths) an entry of the period belongs in."""
    kind, change, by = text(entry, "kind"), text(entry, "change"), text(entry, "by")
    found: list[str] = []
    if kind in CALL_KINDS:
        found.append(c.CALLS)
    if kind == "call.denied":
        found.append(c.DENIED)
        if _rule(entry).startswith(THREAT_RULES):
            found.append(c.THREATS)
    elif screened(entry):
        found.append(c.THREATS)
    simple = {
        "payload.redacted": (c.REDACTIONS,),
        "payload.shredded": (c.REDACTIONS,),
        "client.change": (c.CLIENT_CHANGES,),
        "identity.change": (c.IDENTITY_CHANGES,),
        "secret.change": (c.IDENTITY_CHANGES,),
        "key.rotated": (c.IDENTITY_CHANGES,),
        "pin.drift": (c.PIN_DRIFT,),
        "pin.change": (c.PIN_CHANGES,),
        "sandbox.finding": (c.SANDBOX,),
        "config.loaded": (c.CONFIG_CHANGES,),
        "gateway.start": (c.CONFIG_CHANGES, c.GATEWAY_RUNS),
        "gateway.stop": (c.GATEWAY_RUNS,),
        "server.state": (c.GATEWAY_RUNS,),
        "policy.change": (c.CONFIG_CHANGES, c.CHANGES_APPROVED),
        "alert.change": (c.MONITORING,),
        "alert.sent": (c.MONITORING,),
        "check.flip": (c.MONITORING,),
        "heartbeat": (c.MONITORING,),
        "alert.triage": (c.TRIAGE, c.REVIEWS),
        "listing.admitted": (c.LISTINGS,),
        "approval.requested": (c.APPROVALS,),
        "approval.decided": (c.APPROVALS, c.REVIEWS),
        "auth.denied": (c.AUTH_DENIED,),
    }
    found += simple.get(kind, ())
    if kind == "alert.change" and by:
        found.append(c.TRIAGE)
    if (
        (kind == "policy.change" and change in ("kill", "unkill"))
        or (kind == "secret.change" and change == "revoke")
        or (kind == "client.change" and change == "token.revoked")
    ):
        found.append(c.CONTAINMENT)
    if kind == "pin.change" and change.startswith("review."):
        found += [c.CHANGES_APPROVED, c.REVIEWS]
    return tuple(found)


def retention_days(profile: str | int) -> int | None:
    """Days payloads are kept under a retention profile; None keeps them until shredded by hand."""
    return profile if isinstance(profile, int) else _PROFILES.get(profile)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the period's evidence shows, as numbers and names; computed by `evidence`."""

    counts: Mapping[str, int]
    """Catalog path → entries (JSONL files) or items (views) in the pack."""
    tally: Mapping[str, int] = field(default_factory=dict[str, int])
    """`kind` and `kind:change` → entries of the period."""
    verified: bool = True
    problem: str = ""
    unsigned: int = 0
    logs: int = 0
    gateways: int = 0
    gaps: tuple[Interval, ...] = ()
    evidence_until: float = 0.0
    watch_enabled: bool | None = None
    alerts: int = 0
    untriaged: tuple[str, ...] = ()
    unreviewed_drift: tuple[str, ...] = ()
    unattributed: int = 0
    clients: int = 0
    anonymous_calls: int = 0
    servers_without_id: tuple[str, ...] = ()
    config_source: str | None = None
    config_digests: int = 0
    retention: str | int = "none"
    oldest_entry_day: str | None = None
    oldest_payload_day: str | None = None

    def count(self, path: str) -> int:
        return self.counts.get(path, 0)

    def of(self, key: str) -> int:
        return self.tally.get(key, 0)


@dataclass(frozen=True, slots=True)
class Assessment:
    control: c.Control
    status: Status
    detail: str
    artefacts: tuple[tuple[str, int], ...]

    @property
    def summary(self) -> str:
        return f"gap: {self.detail}" if self.status is Status.GAP else self.status.value


def assess(control: c.Control, facts: Facts) -> Assessment:
    status, detail = _RULES[control.id](facts)
    return Assessment(control, status, detail, tuple((path, facts.count(path)) for path in control.artefacts))


def describe(period: Period, frameworks: list[str], assessments: tuple[Assessment, ...]) -> dict[str, Any]:
    """controls.json: the mapping, with each control's status, detail, artefacts and counts."""
    return {
        "format": "bastion-controls/1",
        "period": {"label": period.label, "start": iso(period.start), "end": iso(period.end)},
        "frameworks": frameworks,
        "controls": [
            {
                "id": a.control.id,
                "framework": a.control.framework,
                "title": a.control.title,
                "requirement": a.control.requirement,
                "bastion": a.control.bastion,
                "organisation": a.control.organisation,
                "status": a.status.value,
                "summary": a.summary,
                "detail": a.detail,
                "artefacts": [{"file": path, "count": count} for path, count in a.artefacts],
            }
            for a in assessments
        ],
    }


Verdict = tuple[Status, str]


def _names(items: tuple[str, ...], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _cc61(f: Facts) -> Verdict:
    calls, servers = f.count(c.CALLS), f.count(c.INVENTORY)
    if not calls and not f.gateways:
        return Status.NO_EVENTS, "no gateway ran and no call was made in the period"
    source = f"configuration snapshot from {f.config_source}" if f.config_source else "no bastion.toml given"
    return Status.EVIDENCED, (
        f"{calls} call entries through {f.gateways} gateway run(s); "
        f"{servers} server(s) in the inventory; {source}; {f.config_digests} configuration digest(s) recorded"
    )


def _cc62(f: Facts) -> Verdict:
    if not f.count(c.CLIENT_CHANGES):
        return Status.NO_EVENTS, "no client token was issued or revoked"
    issued, revoked = f.of("client.change:token.created"), f.of("client.change:token.revoked")
    return Status.EVIDENCED, f"{issued} token(s) issued, {revoked} revoked, each naming who did it"


def _access(f: Facts) -> Verdict:
    if not f.count(c.CALLS):
        return Status.NO_EVENTS, "no call was made in the period"
    return Status.EVIDENCED, (
        f"access review of {f.count(c.ACCESS_REVIEW)} client, server and tool combination(s); "
        f"{f.count(c.DENIED)} call(s) refused, each with its rule"
    )


def _cc66(f: Facts) -> Verdict:
    if not f.count(c.THREATS):
        return Status.NO_EVENTS, "no call was refused at the boundary and screening found nothing"
    return Status.EVIDENCED, f"{f.count(c.THREATS)} boundary refusal(s) and screening finding(s)"


def _cc67(f: Facts) -> Verdict:
    if not f.count(c.CALLS):
        return Status.NO_EVENTS, "no call was made in the period"
    return Status.EVIDENCED, (
        f"every argument and result of {f.count(c.CALLS)} call entries is held only as a commitment and an "
        f"encrypted payload; {f.count(c.REDACTIONS)} recorded redaction(s) or shredding(s)"
    )


def _cc68(f: Facts) -> Verdict:
    if f.unreviewed_drift:
        return Status.GAP, f"drift on {_names(f.unreviewed_drift)} has no review recorded in the period"
    drift, changes, sandbox = f.count(c.PIN_DRIFT), f.count(c.PIN_CHANGES), f.count(c.SANDBOX)
    if not drift and not changes and not sandbox:
        return Status.NO_EVENTS, "no drift, pin change or sandbox finding in the period"
    return Status.EVIDENCED, (
        f"{drift} drift finding(s), each reviewed; {changes} pin change(s); {sandbox} sandbox finding(s)"
    )


def _cc71(f: Facts) -> Verdict:
    if not f.count(c.CONFIG_CHANGES):
        return Status.NO_EVENTS, "no gateway start, configuration load or policy change in the period"
    return Status.EVIDENCED, (
        f"{f.config_digests} distinct configuration digest(s) over {f.of('gateway.start')} start(s); "
        f"{f.of('policy.change')} policy change(s)"
    )


def _cc72(f: Facts) -> Verdict:
    if f.watch_enabled is False:
        return Status.GAP, "the watcher is disabled in the configuration ([watch] enabled = false)"
    if not f.gateways:
        return Status.GAP, "no gateway ran in the period, so nothing was monitored"
    if f.gaps:
        shown = ", ".join(span(g) for g in f.gaps[:3]) + (f" and {len(f.gaps) - 3} more" if len(f.gaps) > 3 else "")
        return Status.GAP, f"monitoring did not cover {shown} (UTC)"
    return Status.EVIDENCED, (
        f"a gateway ran throughout the period up to {stamp(f.evidence_until)} UTC; {f.alerts} alert(s), "
        f"{f.of('heartbeat')} heartbeat(s), {f.of('check.flip')} check flip(s)"
    )


def _cc73(f: Facts) -> Verdict:
    if not f.alerts:
        return Status.NO_EVENTS, "no alert was raised in the period"
    if f.untriaged:
        return Status.GAP, (
            f"{len(f.untriaged)} of {f.alerts} alert(s) have no triage by a person: {_names(f.untriaged)}"
        )
    return Status.EVIDENCED, f"all {f.alerts} alert(s) triaged by a named person"


def _cc74(f: Facts) -> Verdict:
    if not f.count(c.CONTAINMENT):
        return Status.NO_EVENTS, "no kill switch or revocation in the period"
    return Status.EVIDENCED, (
        f"{f.of('policy.change:kill')} tool(s) switched off, {f.of('policy.change:unkill')} on again; "
        f"{f.of('secret.change:revoke')} secret(s) and {f.of('client.change:token.revoked')} token(s) revoked"
    )


def _cc81(f: Facts) -> Verdict:
    if not f.count(c.CHANGES_APPROVED):
        return Status.NO_EVENTS, "no policy change or tool-definition review in the period"
    if f.unattributed:
        return Status.GAP, f"{f.unattributed} change(s) do not name who made or approved them"
    promoted = f.of("policy.change:promote")
    also = f" ({promoted} candidate policy promotion(s))" if promoted else ""
    return Status.EVIDENCED, f"{f.count(c.CHANGES_APPROVED)} change(s){also}, each naming who made or approved it"


def _unique(f: Facts) -> Verdict:
    if f.anonymous_calls:
        return Status.GAP, f"{f.anonymous_calls} call entries name no client"
    if f.servers_without_id:
        return Status.GAP, f"calls to {_names(f.servers_without_id)} name no server identity"
    if not f.count(c.CALLS):
        return Status.NO_EVENTS, "no call was made in the period"
    return Status.EVIDENCED, f"{f.clients} distinct client id(s); every call names its client and server identity"


def _audit(f: Facts) -> Verdict:
    if not f.verified:
        return Status.GAP, f"the log did not verify: {f.problem}"
    if not f.count(c.CALLS) and not f.gateways:
        return Status.NO_EVENTS, "no gateway ran and no call was made in the period"
    return Status.EVIDENCED, f"{f.count(c.CALLS)} call entries recorded in {f.logs} log(s), the whole store verified"


def _integrity(f: Facts) -> Verdict:
    if not f.verified:
        return Status.GAP, f"the log did not verify: {f.problem}"
    return Status.EVIDENCED, (
        f"append-only log verified; {f.count(c.REDACTIONS)} recorded redaction(s) or shredding(s); "
        f"{f.of('approval.decided')} approval decision(s)"
    )


def _authenticate(f: Facts) -> Verdict:
    if not f.verified:
        return Status.GAP, f"the log did not verify: {f.problem}"
    if f.unsigned:
        return Status.GAP, f"{f.unsigned} entries of the period are not under a signed checkpoint yet"
    return Status.EVIDENCED, (
        f"{f.logs} log(s) bounded by signed checkpoints (a consistency proof for each log begun before the "
        f"period); {f.count(c.SAMPLES)} sample(s) with inclusion proofs"
    )


def _entity(f: Facts) -> Verdict:
    changes = f.count(c.CLIENT_CHANGES) + f.count(c.IDENTITY_CHANGES)
    if not f.count(c.CALLS) and not changes:
        return Status.NO_EVENTS, "no call and no credential change in the period"
    return Status.EVIDENCED, f"{f.clients} authenticated client id(s); {changes} credential or identity change(s)"


def _review(f: Facts) -> Verdict:
    if not f.count(c.REVIEWS):
        return Status.GAP, "no review was recorded in the period"
    return Status.EVIDENCED, f"{f.count(c.REVIEWS)} review(s) recorded, each naming who and when"


def _retention(f: Facts) -> Verdict:
    days = retention_days(f.retention)
    oldest = f"oldest entry {f.oldest_entry_day or 'none'}, oldest payload {f.oldest_payload_day or 'none'}"
    if days is None:
        return Status.GAP, f'no retention profile is set ([audit] retention = "hipaa"); {oldest}'
    if days < HIPAA_DAYS:
        return Status.GAP, f"payloads are kept {days} days, less than six years; {oldest}"
    return Status.EVIDENCED, f"payloads kept {days} days, entries never pruned; {oldest}"


_RULES = {
    "CC6.1": _cc61,
    "CC6.2": _cc62,
    "CC6.3": _access,
    "CC6.6": _cc66,
    "CC6.7": _cc67,
    "CC6.8": _cc68,
    "CC7.1": _cc71,
    "CC7.2": _cc72,
    "CC7.3": _cc73,
    "CC7.4": _cc74,
    "CC8.1": _cc81,
    "164.312(a)(1)": _access,
    "164.312(a)(2)(i)": _unique,
    "164.312(b)": _audit,
    "164.312(c)(1)": _integrity,
    "164.312(c)(2)": _authenticate,
    "164.312(d)": _entity,
    "164.308(a)(1)(ii)(D)": _review,
    "164.316(b)(2)(i)": _retention,
}

"""The controls an evidence pack speaks to, and the files that evidence them. Pure data.

Each control names its framework's requirement in a short paraphrase (never the framework's
own prose), what Bastion's records show about it, which files of the pack hold that
evidence, and what stays the organisation's job: Bastion evidences what happened at the
MCP boundary; policies, risk assessments, people and the systems behind the servers are
out of its sight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACCESS_REVIEW",
    "ALERTS",
    "APPROVALS",
    "AUTH_DENIED",
    "CALLS",
    "CHANGES_APPROVED",
    "CHECKPOINTS",
    "CLIENT_CHANGES",
    "CONFIG",
    "CONFIG_CHANGES",
    "CONTAINMENT",
    "CONTROLS",
    "COVERAGE",
    "DENIED",
    "ENTRY_FILES",
    "FRAMEWORKS",
    "GATEWAY_RUNS",
    "IDENTITIES",
    "IDENTITY_CHANGES",
    "INVENTORY",
    "LISTINGS",
    "MONITORING",
    "PIN_CHANGES",
    "PIN_DRIFT",
    "REDACTIONS",
    "RETENTION",
    "REVIEWS",
    "SAMPLES",
    "SANDBOX",
    "THREATS",
    "TRIAGE",
    "VERIFICATION",
    "Control",
    "Framework",
    "controls_for",
]

Framework = Literal["soc2", "hipaa"]
FRAMEWORKS: dict[Framework, str] = {"soc2": "SOC 2 (Trust Services Criteria)", "hipaa": "HIPAA Security Rule"}

# Entries of the period, one JSON object a line (log, index, leaf hash, entry).
CALLS = "calls.jsonl"
DENIED = "evidence/denied.jsonl"
THREATS = "evidence/external-threats.jsonl"
REDACTIONS = "evidence/redactions.jsonl"
CLIENT_CHANGES = "evidence/client-changes.jsonl"
IDENTITY_CHANGES = "evidence/identity-changes.jsonl"
PIN_DRIFT = "evidence/pin-drift.jsonl"
PIN_CHANGES = "evidence/pin-changes.jsonl"
SANDBOX = "evidence/sandbox-findings.jsonl"
CONFIG_CHANGES = "evidence/config-changes.jsonl"
GATEWAY_RUNS = "evidence/gateway-runs.jsonl"
MONITORING = "evidence/monitoring.jsonl"
TRIAGE = "evidence/triage.jsonl"
CONTAINMENT = "evidence/containment.jsonl"
CHANGES_APPROVED = "evidence/approved-changes.jsonl"
REVIEWS = "evidence/reviews.jsonl"
LISTINGS = "evidence/listings.jsonl"
APPROVALS = "evidence/approvals.jsonl"
AUTH_DENIED = "evidence/authentication-refused.jsonl"
ENTRY_FILES = (CALLS, DENIED, THREATS, REDACTIONS, CLIENT_CHANGES, IDENTITY_CHANGES, PIN_DRIFT, PIN_CHANGES, SANDBOX,
               CONFIG_CHANGES, GATEWAY_RUNS, MONITORING, TRIAGE, CONTAINMENT, CHANGES_APPROVED, REVIEWS, LISTINGS,
               APPROVALS, AUTH_DENIED)  # fmt: skip
# Views computed from the entries (and the configuration).
INVENTORY = "evidence/inventory.json"
CONFIG = "evidence/config.json"
ACCESS_REVIEW = "evidence/access-review.json"
COVERAGE = "evidence/coverage.json"
ALERTS = "evidence/alerts.json"
IDENTITIES = "evidence/identities.json"
RETENTION = "evidence/retention.json"
# Integrity.
VERIFICATION = "verification.json"
CHECKPOINTS = "checkpoints/"
SAMPLES = "samples.json"


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    framework: Framework
    title: str
    requirement: str
    """The framework's requirement, paraphrased."""
    bastion: str
    """What Bastion's records evidence."""
    organisation: str
    """What remains the organisation's job."""
    artefacts: tuple[str, ...]


CONTROLS: tuple[Control, ...] = (
    Control(
        "CC6.1", "soc2", "Logical access: one enforcement point",
        "Access to information assets goes through security software and an architecture that protects them.",
        "Every MCP tool call passed one enforcement point that identified the client, applied deny-by-default "
        "policy and recorded its decision. The inventory lists the gateways, the servers and the tools they "
        "exposed in the period (definition hashes); the configuration snapshot and the digests recorded at each "
        "gateway start show what was in force.",
        "Decide which MCP servers are in scope, make Bastion the only route to them (no direct access), and keep "
        "the asset inventory and data classification.",
        (INVENTORY, CONFIG, LISTINGS, GATEWAY_RUNS, CALLS),
    ),
    Control(
        "CC6.2", "soc2", "Credentials issued and removed",
        "Users are registered and authorised before credentials are issued, and credentials are removed when "
        "access is no longer needed.",
        "Each client token issued or revoked is an entry (client.change) naming the client, its servers, role, "
        "expiry and who did it.",
        "Approve each client identity before it is issued (ticket, owner sign-off) and revoke it when the person "
        "or agent no longer needs it (joiner, mover, leaver process).",
        (CLIENT_CHANGES, IDENTITIES),
    ),
    Control(
        "CC6.3", "soc2", "Access by role and least privilege",
        "Access is granted, changed and removed according to roles and responsibilities, with least privilege.",
        "An access review: for each client, what the configuration grants, which tools it was offered and which "
        "it called, with allowed and denied counts; every refused call with the rule that refused it; every "
        "approval asked for and decided.",
        "Review the access-review file, sign off that each client's grants match its role, and remove what is "
        "not needed; segregation of duties between who grants and who uses.",
        (ACCESS_REVIEW, DENIED, APPROVALS),
    ),
    Control(
        "CC6.6", "soc2", "Threats from outside the boundary",
        "Logical access measures protect against threats from sources outside the system's boundary.",
        "Calls refused for reaching beyond what was granted (URL and SSRF rules, urls.*), and the screening of "
        "tool definitions and results (hidden instructions, exfiltration links, secrets).",
        "The network perimeter, the security of the services behind the MCP servers, and acting on findings.",
        (THREATS,),
    ),
    Control(
        "CC6.7", "soc2", "Information in transit and at rest",
        "Movement of information is limited to authorised users and processes and protected while it moves.",
        "Arguments and results are never stored in clear: the log keeps salted commitments and encrypted "
        "payloads. Every redaction and crypto-shredding is itself an entry naming what, why and who.",
        "TLS for remote servers and the HTTP front, data-loss policies, and deciding what data may go to which "
        "server.",
        (REDACTIONS,),
    ),
    Control(
        "CC6.8", "soc2", "Unauthorised or malicious software",
        "The introduction of unauthorised or malicious software is prevented or detected and acted on.",
        "Servers are pinned (package versions, tool-definition hashes); drift is blocked and recorded until a "
        "person reviews it; sandbox findings (unsandboxed servers, limits hit) are entries.",
        "Vet servers before adopting them, patch and protect the hosts, review drift promptly.",
        (PIN_DRIFT, PIN_CHANGES, SANDBOX),
    ),
    Control(
        "CC7.1", "soc2", "Configuration changes detected",
        "Detection and monitoring find configuration changes that introduce vulnerabilities.",
        "The configuration digest recorded at every gateway start, configuration loads and every policy change "
        "(kill switches included), in order.",
        "Vulnerability management and scanning; review of bastion.toml changes in version control.",
        (CONFIG_CHANGES, CONFIG),
    ),
    Control(
        "CC7.2", "soc2", "Monitoring for anomalies",
        "System components are monitored for anomalies that may indicate malicious acts or errors.",
        "The detectors in force (first use, drift, volume, errors, silence), every alert state change, check "
        "flips and heartbeats, and the gateway runs showing that monitoring covered the period.",
        "Staff the alert channels, tune the detectors, monitor hosts and networks outside Bastion.",
        (MONITORING, COVERAGE, ALERTS),
    ),
    Control(
        "CC7.3", "soc2", "Security events evaluated",
        "Security events are evaluated to decide whether they are incidents needing action.",
        "Each alert of the period with its triage: who acknowledged or resolved it, when, and their note.",
        "The incident-response policy, severity criteria, and the judgement behind each triage.",
        (ALERTS, TRIAGE),
    ),
    Control(
        "CC7.4", "soc2", "Incidents contained",
        "Identified incidents are responded to: understood, contained, remediated and communicated.",
        "Containment as entries: tools switched off and on again (policy.change kill/unkill), secrets revoked, "
        "client tokens revoked.",
        "The incident-response plan, communication to customers and regulators, root-cause analysis.",
        (CONTAINMENT,),
    ),
    Control(
        "CC8.1", "soc2", "Changes authorised and approved",
        "Changes to infrastructure, software and procedures are authorised, tested, approved and documented.",
        "Policy changes and tool-definition reviews with who made or approved them (policy.change, including "
        "candidate policies made live by `bastion policy promote` with who and why; pin.change review.approved "
        "and review.rejected).",
        "Change management: tickets, peer review and testing of bastion.toml, separating who asks from who "
        "approves.",
        (CHANGES_APPROVED,),
    ),
    Control(
        "164.312(a)(1)", "hipaa", "Access control",
        "Systems holding ePHI allow access only to the persons or software programs that were granted it.",
        "Deny-by-default policy per client and server; the access review, and every call and refusal of the "
        "period.",
        "Decide who and which agents may reach ePHI (information access management) and keep the grants in "
        "bastion.toml in line with that decision.",
        (ACCESS_REVIEW, CALLS, DENIED),
    ),
    Control(
        "164.312(a)(2)(i)", "hipaa", "Unique user identification",
        "Each user has a unique name or number by which their identity is tracked.",
        "Every call names its authenticated client; every server has its own identity (server.id) and "
        "credential versions; token issue and revocation and identity rotation are entries.",
        "One identity per person or agent (no shared tokens), and knowing who is accountable for each.",
        (IDENTITIES, CLIENT_CHANGES, IDENTITY_CHANGES),
    ),
    Control(
        "164.312(b)", "hipaa", "Audit controls",
        "Mechanisms record and let the organisation examine activity in systems that hold or use ePHI.",
        "The tamper-evident record of every call (intent before forwarding, outcome after), exported for the "
        "period, and the verifier's signed result.",
        "Audit logging in the systems behind the MCP servers, and examining the records (see 164.308).",
        (CALLS, VERIFICATION, COVERAGE),
    ),
    Control(
        "164.312(c)(1)", "hipaa", "Integrity",
        "ePHI is protected from being altered or destroyed improperly.",
        "Write and destructive tools are refused unless granted, dangerous calls wait for a person, and the "
        "log itself is append-only: payloads are removed only by recorded redaction or shredding.",
        "Backups and the integrity of the data stores behind the servers; who may change ePHI.",
        (APPROVALS, REDACTIONS, VERIFICATION),
    ),
    Control(
        "164.312(c)(2)", "hipaa", "Mechanism to authenticate ePHI",
        "An electronic mechanism corroborates that records were not altered or destroyed without authority.",
        "A Merkle tree over every entry (RFC 6962), Ed25519-signed checkpoints bounding the period, a "
        "consistency proof between them, inclusion proofs for samples, and the verifier's result.",
        "Keep the verifier key and published checkpoints out of the operators' reach; integrity mechanisms for "
        "ePHI stored behind the servers.",
        (VERIFICATION, CHECKPOINTS, SAMPLES),
    ),
    Control(
        "164.312(d)", "hipaa", "Person or entity authentication",
        "Whoever seeks access is verified to be the person or entity claimed.",
        "A bearer token per client (stored hashed) or an OAuth access token checked against its issuer, "
        "per-server identities and secrets; issuing, revoking and rotating them are entries, and every request "
        "refused for a missing, unknown, expired or tampered token, or a token without the scope, is one "
        "(auth.denied).",
        "Authenticating the people behind each client (single sign-on, MFA) and handing out tokens safely.",
        (IDENTITIES, CLIENT_CHANGES, IDENTITY_CHANGES, AUTH_DENIED),
    ),
    Control(
        "164.308(a)(1)(ii)(D)", "hipaa", "Information system activity review",
        "Records of system activity (audit logs, access reports, incident tracking) are reviewed regularly.",
        "Reviews recorded as entries: alert triage, tool-definition reviews and approval decisions, each with "
        "who and when.",
        "A review schedule and procedure, and reviewing this pack; reviews done outside Bastion need evidence "
        "of their own.",
        (REVIEWS,),
    ),
    Control(
        "164.316(b)(2)(i)", "hipaa", "Retention",
        "Required documentation is kept for six years from its creation or from when it was last in effect.",
        "The retention profile in force, the oldest entry and the oldest payload still present. Entries are "
        "never pruned; old payloads are crypto-shredded a whole day at a time, by a recorded command.",
        "Keeping policies, risk assessments and this pack for six years, and backups of the audit store.",
        (RETENTION,),
    ),
)  # fmt: skip


def controls_for(framework: Literal["soc2", "hipaa", "all"]) -> tuple[Control, ...]:
    return tuple(c for c in CONTROLS if framework in ("all", c.framework))

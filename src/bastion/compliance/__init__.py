"""Compliance: the SOC 2 and HIPAA control mapping, and the evidence pack for an audit period.

    catalog   the controls (paraphrased requirements, what Bastion evidences, what it cannot)
    controls  which entries evidence which control; each control's status from what happened
    timeline  the period, gateway runs, and gaps in monitoring
    evidence  reading the period out of the audit store (binary search, never a full scan)
    views     access review, identities, alerts and triage, inventory, configuration snapshot
    attest    bounding checkpoints, samples nobody can steer, signatures over the pack
    pack      writing the folder; check: re-checking it offline
    render    index.html (Jinja2) and report.pdf (headless Chromium)

Pure where it can be: `catalog`, `controls`, `timeline` and `views` take values and return
values; the store, the files and Chromium are touched only by `evidence`, `attest`, `pack`,
`check` and `render`.
"""

from bastion.compliance.catalog import CONTROLS, Control, controls_for
from bastion.compliance.check import PackCheck, check_pack
from bastion.compliance.controls import Assessment, Facts, Status, assess
from bastion.compliance.pack import Outcome, Request, build_pack
from bastion.compliance.timeline import Period, PeriodError

__all__ = [
    "CONTROLS",
    "Assessment",
    "Control",
    "Facts",
    "Outcome",
    "PackCheck",
    "Period",
    "PeriodError",
    "Request",
    "Status",
    "assess",
    "build_pack",
    "check_pack",
    "controls_for",
]

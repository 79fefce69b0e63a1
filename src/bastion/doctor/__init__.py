"""Doctor: what works on this host for the configuration, and what to do about what does not.

    checks  Check, Status and the facts each probe returns; pure functions judging them
    probes  the I/O edge: a real sandbox start, stat calls, PostgreSQL, TCP to each alert sink
    run     diagnose(): every probe judged, in order; Diagnosis.exit_code is 0 or 1

`bastion doctor` (cli/doctor.py) prints a Diagnosis.
"""

from __future__ import annotations

from bastion.doctor.checks import Check, Status
from bastion.doctor.run import Diagnosis, diagnose

__all__ = ["Check", "Diagnosis", "Status", "diagnose"]

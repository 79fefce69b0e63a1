"""Whether a process is still running, asked of the host: the one check behind every "is the
gateway that wrote this gone?" (unsigned audit tails, stale sandbox cgroups, stale gateway rows).

Ground floor: the standard library only.
"""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """True while `pid` exists (one owned by another user counts: signalling it is refused, not unknown)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

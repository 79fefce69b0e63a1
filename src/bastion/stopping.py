"""Stopping a gateway (or the dashboard) on a signal, the way its clients' going away stops it.

SIGTERM is how service managers, container runtimes, orchestrators in a rolling update and MCP
clients closing a server ask a process to end. Left to Python's default it ends the process at
once: outcomes still queued are lost, the last entries stay without a signed checkpoint (so
`bastion audit verify` fails until the next start seals them), and `gateway.stop` is never
written. A gateway instead hands SIGTERM and SIGINT to `stop_on_signal`: the first one stops it
cleanly (requests in flight are answered where the front can, the audit log is flushed and
signed, servers are stopped); a second one ends the process at once, for an operator who will
not wait.

Ground floor: the standard library and anyio only.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Final

import anyio
import anyio.abc

__all__ = ["STOP_SIGNALS", "stop_on_signal"]

STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)

announce = logging.getLogger("bastion.announce")


async def stop_on_signal(
    stop: Callable[[], None], *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Call `stop` on the first SIGTERM or SIGINT; end the process at once on the next one.

    Runs until cancelled (with the gateway it stops). Must run on the main thread, as every
    signal handler must."""
    with anyio.open_signal_receiver(*STOP_SIGNALS) as received:
        task_status.started()
        stopping = False
        async for number in received:
            name = signal.Signals(number).name
            if stopping:
                announce.warning("bastion: %s again: stopping at once", name)
                signal.signal(number, signal.SIG_DFL)
                signal.raise_signal(number)
                return  # not reached: the default action of both signals ends the process
            stopping = True
            announce.warning("bastion: %s: stopping (another one stops at once)", name)
            stop()

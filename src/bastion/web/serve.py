"""`bastion dashboard`: the dashboard alone, for gateways that have no HTTP front of their own."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import uvicorn

from bastion.approvals.store import open_approvals
from bastion.approvals.webhook import LinkKey
from bastion.errors import ConfigError, ConfigProblem
from bastion.store.sqlite import StateStore
from bastion.transport.http_front_app import is_loopback, split_listen
from bastion.web.app import dashboard_app
from bastion.web.auth import Sessions

__all__ = ["serve_dashboard"]

logger = logging.getLogger(__name__)


async def serve_dashboard(home: Path, store_url: str | None, listen: str) -> None:
    try:
        host, port = split_listen(listen)
    except ValueError as exc:
        raise ConfigError(None, [ConfigProblem("--listen", str(exc), "write e.g. 127.0.0.1:8766")]) from None
    state = StateStore.open(home)
    approvals = open_approvals(home, store_url)

    def holder(token: str) -> tuple[str, str] | None:
        return state.holder_of_token(token, time.time())

    app = dashboard_app(approvals, Sessions(holder), LinkKey(home), secure_cookies=not is_loopback(host))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    logger.warning("bastion dashboard at http://%s:%d/", host, port)
    try:
        await server.serve()
    finally:
        approvals.close()
        state.close()

"""`bastion dashboard`: the dashboard alone, for gateways that have no HTTP front of their own."""

from __future__ import annotations

import logging
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import uvicorn

from bastion.approvals.store import open_approvals
from bastion.approvals.webhook import LinkKey
from bastion.audit.entry import Kind, Record
from bastion.audit.service import append_once, open_store
from bastion.config.model import BastionConfig
from bastion.errors import ConfigError, ConfigProblem
from bastion.inventory.pins import LOCK_NAME
from bastion.store.sqlite import StateStore
from bastion.transport.http_front_app import is_loopback, listening_socket, split_listen
from bastion.watch.store import open_watch
from bastion.web.app import dashboard_app
from bastion.web.auth import Sessions
from bastion.web.data import AuditView
from bastion.web.pages import Sources

__all__ = ["dashboard_banner", "serve_dashboard"]


async def serve_dashboard(
    home: Path, store_url: str | None, listen: str, config: BastionConfig | None, config_path: Path | None
) -> None:
    try:
        host, port = split_listen(listen)
    except ValueError as exc:
        raise ConfigError(None, [ConfigProblem("--listen", str(exc), "write e.g. 127.0.0.1:8766")]) from None
    settings = config or BastionConfig()
    store_url = store_url or settings.audit.store
    with ExitStack() as closing:
        state = StateStore.open(home)
        closing.callback(state.close)
        approvals = open_approvals(home, store_url)
        closing.callback(approvals.close)
        watch = open_watch(home, store_url)
        closing.callback(watch.close)
        audit_store = open_store(home, store_url)
        closing.callback(audit_store.close)

        def holder(token: str) -> tuple[str, str] | None:
            return state.holder_of_token(token, time.time())

        async def record(kind: str, fields: dict[str, Any]) -> None:
            await append_once(settings, home, os.environ, store_url, Record(Kind(kind), fields))

        lock = config_path.parent / LOCK_NAME if config_path is not None else None
        sources = Sources(
            AuditView(audit_store, home),
            state,
            watch,
            approvals,
            config,
            lock,
            record,
            settings.dashboard.payload_roles,
        )
        app = dashboard_app(
            approvals, Sessions(holder), LinkKey(home), secure_cookies=not is_loopback(host), sources=sources
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", log_config=None, access_log=False)
        )
        # Where to go is what the person who ran the command needs, not a warning: a plain line on
        # stderr (stdout stays free, as for every command that serves).
        with listening_socket(host, port) as sock:
            logging.getLogger("bastion.announce").info(dashboard_banner(host, port))
            await server.serve(sockets=[sock])


def dashboard_banner(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return (
        f"bastion: dashboard at http://{shown}:{port}/ "
        "(sign in with a token from `bastion tokens create --client NAME --role approver`)"
    )

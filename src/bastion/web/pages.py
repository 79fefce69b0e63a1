"""The dashboard's pages besides approvals: overview, inventory, live calls, a call's evidence,
alerts with triage, and the audit log's integrity with a verify-now button.

Reads go to the stores in worker threads. Actions (triage, verify) need a signed-in viewer
whose role may act, and triage is recorded in the audit log like triage from the CLI.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from bastion.approvals.model import Status
from bastion.approvals.store import ApprovalStore
from bastion.config.model import BastionConfig
from bastion.inventory.pins import Lock, load_lock
from bastion.store.sqlite import StateStore
from bastion.watch.store import Triage, WatchStore
from bastion.web.auth import Viewer
from bastion.web.data import AuditView, CallFilter, inventory, svg_bars

__all__ = ["Pages", "Shell", "Sources"]

SHADOW_PERIODS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}
"""The periods the Shadow page offers, as seconds back from now."""
Record = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Writes an audit entry for an action taken in the dashboard: (kind, fields)."""


@dataclass
class Sources:
    audit: AuditView
    state: StateStore
    watch: WatchStore | None
    approvals: ApprovalStore | None
    config: BastionConfig | None
    lock_path: Path | None
    record: Record
    payload_roles: tuple[str, ...] = ("admin",)


class Shell(Protocol):
    """What these pages need of the dashboard that hosts them (`web.app.Dashboard` is one).

    Declared here, by the pages that use it, so that the shell imports the pages and not the
    other way round."""

    def signed_in(
        self, page: Callable[[Request, Viewer], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """The page behind sign-in (and a CSRF token on POST)."""
        ...

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse: ...
    def refuse(self, status: int, title: str, message: str) -> HTMLResponse: ...


class Pages:
    def __init__(self, shell: Shell, sources: Sources) -> None:
        self._shell = shell
        self._s = sources

    def routes(self) -> list[Route]:
        guard = self._shell.signed_in
        return [
            Route("/overview", guard(self.overview)),
            Route("/inventory", guard(self.inventory)),
            Route("/calls", guard(self.calls)),
            Route("/calls/events", guard(self.calls_events)),
            Route("/calls/{log}/{index:int}", guard(self.call)),
            Route("/shadow", guard(self.shadow)),
            Route("/alerts", guard(self.alerts)),
            Route("/alerts/triage", guard(self.triage), methods=["POST"]),
            Route("/integrity", guard(self.integrity)),
            Route("/integrity/verify", guard(self.verify), methods=["POST"]),
            Route("/integrity/progress", guard(self.progress)),
        ]

    async def overview(self, request: Request, viewer: Viewer) -> Response:
        def gather() -> dict[str, Any]:
            gateways = self._s.state.gateways()
            servers = self._s.state.servers()
            alerts = self._s.watch.alerts() if self._s.watch else []
            pending = self._s.approvals.list(Status.PENDING) if self._s.approvals else []
            activity = self._s.audit.activity()
            failing = self._s.audit.problems()  # after the reads above: what they found counts too
            return {
                "failing": failing[0].describe() if failing else None,
                "gateways": gateways,
                "servers": servers,
                "alerts": alerts,
                "pending": pending,
                "chart": svg_bars(activity),
                "calls_24h": sum(c for _h, c, _d in activity),
                "denials_24h": sum(d for _h, _c, d in activity),
                "inventory": inventory(self._s.config, self._lock()),
            }

        data = await anyio.to_thread.run_sync(gather)
        return self._shell.render("overview.html", viewer=viewer, **data)

    async def inventory(self, request: Request, viewer: Viewer) -> Response:
        servers = await anyio.to_thread.run_sync(inventory, self._s.config, self._lock())
        return self._shell.render(
            "inventory.html", viewer=viewer, servers=servers, configured=self._s.config is not None
        )

    async def calls(self, request: Request, viewer: Viewer) -> Response:
        query = request.query_params
        wanted = CallFilter(*(query.get(name, "") for name in ("server", "tool", "client", "decision")))
        rows = await anyio.to_thread.run_sync(self._s.audit.calls, wanted)
        template = "calls_rows.html" if query.get("fragment") else "calls.html"
        return self._shell.render(template, viewer=viewer, rows=rows, wanted=wanted, query=str(query))

    async def shadow(self, request: Request, viewer: Viewer) -> Response:
        """The candidate policy against the live one on recorded traffic (`bastion policy shadow`)."""
        period = request.query_params.get("period", "7d")
        seconds = SHADOW_PERIODS.get(period, SHADOW_PERIODS["7d"])
        server = request.query_params.get("server", "")
        report = await anyio.to_thread.run_sync(self._s.audit.shadow, time.time() - seconds, server)
        return self._shell.render(
            "shadow.html", viewer=viewer, report=report, period=period, periods=SHADOW_PERIODS, server=server
        )

    async def calls_events(self, request: Request, viewer: Viewer) -> Response:
        """Server-sent events: `changed` whenever a new entry lands in the log."""

        async def stream() -> AsyncIterator[bytes]:
            seen: tuple[str, int] | None = None
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                latest = await anyio.to_thread.run_sync(self._s.audit.latest)
                if latest != seen:
                    seen = latest
                    yield b"event: changed\ndata: 1\n\n"
                await anyio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def call(self, request: Request, viewer: Viewer) -> Response:
        may_see = viewer.role in self._s.payload_roles
        log, index = request.path_params["log"], request.path_params["index"]
        found = await anyio.to_thread.run_sync(self._s.audit.detail, log, index, may_see)
        if found is None:
            return self._shell.refuse(404, "Not found", "No such entry.")
        pretty = {
            key: orjson.dumps(found[key], option=orjson.OPT_INDENT_2).decode() for key in ("entry", "payload", "proof")
        }
        return self._shell.render("call.html", viewer=viewer, c=found, pretty=pretty, may_see=may_see)

    async def alerts(self, request: Request, viewer: Viewer) -> Response:
        watch = self._s.watch
        rows = await anyio.to_thread.run_sync(lambda: watch.alerts(include_resolved=True)) if watch else []
        checks = await anyio.to_thread.run_sync(watch.checks) if watch else []
        return self._shell.render("alerts.html", viewer=viewer, alerts=rows, checks=checks, now=time.time())

    async def triage(self, request: Request, viewer: Viewer) -> Response:
        form = await request.form()
        key, action = str(form.get("key") or ""), str(form.get("action") or "")
        if not viewer.may_decide or self._s.watch is None or action not in ("ack", "resolve"):
            return self._shell.refuse(403, "Refused", "Your role may look, not triage.")
        note = str(form.get("note") or "")
        triage = Triage("tri_" + secrets.token_hex(6), key, action, viewer.name, note, time.time())
        await anyio.to_thread.run_sync(self._s.watch.request_triage, triage)
        fields = {"alert": key, "triage": action, "by": viewer.name, "channel": "dashboard", "note": note}
        await self._s.record("alert.triage", fields)
        return RedirectResponse("/alerts", status_code=303)

    async def integrity(self, request: Request, viewer: Viewer) -> Response:
        logs = await anyio.to_thread.run_sync(self._s.audit.integrity)
        state = self._s.audit.verification
        problems = [p.describe() for p in self._s.audit.problems()]
        return self._shell.render(
            "integrity.html", viewer=viewer, logs=logs, state=state, problems=problems, now=time.time()
        )

    async def verify(self, request: Request, viewer: Viewer) -> Response:
        """Start re-verifying every log (in a thread of its own; the page follows its progress)."""
        state = self._s.audit.verification
        if not state.running:
            state.running, state.done_entries, state.reports = True, 0, []

            def progress(done: int, total: int) -> None:
                state.done_entries, state.total_entries = done, total

            def run() -> None:
                try:
                    state.reports = self._s.audit.verify(progress)
                finally:
                    state.running, state.finished = False, time.time()

            threading.Thread(target=run, name="bastion-verify", daemon=True).start()
        return RedirectResponse("/integrity", status_code=303)

    async def progress(self, request: Request, viewer: Viewer) -> Response:
        """Server-sent events with the verification's progress, then `done`."""
        state = self._s.audit.verification

        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                body = orjson.dumps(
                    {"done": state.done_entries, "total": state.total_entries, "running": state.running}
                )
                yield b"event: progress\ndata: " + body + b"\n\n"
                if not state.running:
                    yield b"event: done\ndata: {}\n\n"
                    return
                await anyio.sleep(0.3)

        return StreamingResponse(stream(), media_type="text/event-stream")

    def _lock(self) -> Lock | None:
        path = self._s.lock_path
        return load_lock(path) if path is not None and path.exists() else None

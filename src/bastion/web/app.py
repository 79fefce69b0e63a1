"""The dashboard (Starlette + Jinja2): server-rendered pages, a little hand-written JavaScript
for live updates over server-sent events, no third-party scripts, works offline.

This module is the shell (sign-in, sessions, CSRF, security headers) and the approval pages;
`pages.py` has the overview, inventory, calls, alerts and integrity pages. Every action is a
POST with a CSRF token from a signed-in viewer whose role may act.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.approvals.model import Scope as DecisionScope
from bastion.approvals.model import Status, Verdict
from bastion.approvals.store import ApprovalStore
from bastion.approvals.webhook import LinkKey, SignedLink
from bastion.errors import StoreError
from bastion.web.auth import COOKIE, Sessions, Viewer
from bastion.web.pages import Pages, Sources

__all__ = ["dashboard_app"]

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # not no-referrer: that makes browsers send "Origin: null" on POSTs
    "Cache-Control": "no-store",
}
WINDOWS = {"10m": 600.0, "1h": 3600.0, "8h": 28800.0}
Page = Callable[[Request], Awaitable[Response]]


def dashboard_app(
    approvals: ApprovalStore | None,
    sessions: Sessions,
    links: LinkKey | None,
    *,
    secure_cookies: bool = False,
    sources: Sources | None = None,
) -> ASGIApp:
    return SecurityHeaders(Dashboard(approvals, sessions, links, secure_cookies, sources).app())


class Dashboard:
    """The pages, each a method; `signed_in` guards those that need a viewer (and a CSRF token on POST)."""

    def __init__(
        self,
        approvals: ApprovalStore | None,
        sessions: Sessions,
        links: LinkKey | None,
        secure: bool,
        sources: Sources | None = None,
    ) -> None:
        self._approvals = approvals
        self._sources = sources
        self._sessions = sessions
        self._links = links
        self._secure = secure
        self._templates = Environment(loader=PackageLoader("bastion.web", "templates"), autoescape=select_autoescape())
        self._templates.filters["when"] = _when

    def app(self) -> Starlette:
        pages = Pages(self, self._sources).routes() if self._sources is not None else []
        routes = [
            *pages,
            Route("/", self.home),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.signed_in(self.logout), methods=["POST"]),
            Route("/approvals", self.signed_in(self.approval_list)),
            Route("/approvals/events", self.signed_in(self.events)),
            Route("/approvals/link", self.link, methods=["GET", "POST"]),
            Route("/approvals/{id}", self.signed_in(self.approval_detail)),
            Route("/approvals/{id}/decide", self.signed_in(self.decide), methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"),
        ]
        return Starlette(routes=routes, exception_handlers={StoreError: _store_down})

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self._templates.get_template(name).render(**context), status_code=status)

    def refuse(self, status: int, title: str, message: str) -> HTMLResponse:
        return self.render("message.html", status, title=title, message=message)

    def signed_in(self, page: Callable[[Request, Viewer], Awaitable[Response]]) -> Page:
        async def guarded(request: Request) -> Response:
            viewer = self._sessions.viewer(request.cookies.get(COOKIE))
            if viewer is None:
                return RedirectResponse("/login", status_code=303)
            if request.method == "POST":
                form = await request.form()
                if not self._sessions.csrf_ok(viewer, _text(form.get("csrf"))) or not _same_origin(request):
                    return self.refuse(403, "Refused", "The form was stale or foreign.")
            return await page(request, viewer)

        return guarded

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/overview" if self._sources is not None else "/approvals", status_code=303)

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render("login.html", error=None)
        form = await request.form()
        found = self._sessions.sign_in(_text(form.get("token")) or "")
        if found is None:
            return self.render("login.html", 401, error="That token is not valid for the dashboard.")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, found[0], httponly=True, samesite="strict", secure=self._secure)
        return response

    async def logout(self, request: Request, viewer: Viewer) -> Response:
        self._sessions.sign_out(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    async def approval_list(self, request: Request, viewer: Viewer) -> Response:
        if self._approvals is None:
            return self.render(
                "message.html", viewer=viewer, title="Approvals", message="No approval channel is configured."
            )
        pending = await anyio.to_thread.run_sync(self._approvals.list, Status.PENDING)
        everything = await anyio.to_thread.run_sync(self._approvals.list)
        recent = [a for a in everything if a.status is not Status.PENDING][:20]
        template = "approvals_rows.html" if request.query_params.get("fragment") else "approvals.html"
        return self.render(template, viewer=viewer, pending=pending, recent=recent, now=time.time())

    async def approval_detail(self, request: Request, viewer: Viewer) -> Response:
        if self._approvals is None:
            return self.refuse(404, "Not found", "No approval channel is configured.")
        approval = await anyio.to_thread.run_sync(self._approvals.get, request.path_params["id"])
        if approval is None:
            return self.refuse(404, "Not found", "No such approval.")
        return self.render("approval.html", viewer=viewer, a=approval, now=time.time())

    async def decide(self, request: Request, viewer: Viewer) -> Response:
        if not viewer.may_decide or self._approvals is None:
            return self.refuse(403, "Refused", "Your role may look, not decide.")
        form = await request.form()
        now = time.time()
        scope, until = _scope(_text(form.get("scope")) or "call", now)
        allow = _text(form.get("action")) == "approve"
        reason = _text(form.get("reason")) or ""
        verdict = Verdict(allow, viewer.name, "dashboard", now, scope, until, reason)
        decided = await anyio.to_thread.run_sync(self._approvals.decide, request.path_params["id"], verdict)
        if decided is None:
            return self.refuse(409, "Already decided", "Someone decided first, or it expired.")
        return RedirectResponse(f"/approvals/{decided.id}", status_code=303)

    async def events(self, request: Request, viewer: Viewer) -> Response:
        """Server-sent events: a `changed` event whenever the set of pending approvals changes."""

        approvals = self._approvals
        if approvals is None:
            return self.refuse(404, "Not found", "No approval channel is configured.")

        async def stream() -> AsyncIterator[bytes]:
            seen: tuple[str, ...] | None = None
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                pending = await anyio.to_thread.run_sync(approvals.list, Status.PENDING)
                current = tuple(a.id for a in pending)
                if current != seen:
                    seen = current
                    yield f"event: changed\ndata: {len(current)}\n\n".encode()
                await anyio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def link(self, request: Request) -> Response:
        """A webhook's signed link: GET shows what it will do, POST (one click) does it, once."""
        source = request.query_params if request.method == "GET" else await request.form()
        signed = _link(source)
        if self._links is None or signed is None or self._approvals is None:
            return self.refuse(400, "Broken link", "This link is incomplete.")
        problem = self._links.check(signed, time.time())
        approval = await anyio.to_thread.run_sync(self._approvals.get, signed.approval)
        if problem is not None or approval is None:
            return self.refuse(403, "Refused", problem or "No such approval.")
        if request.method == "GET":
            return self.render("link.html", a=approval, link=signed)
        if not await anyio.to_thread.run_sync(self._approvals.use_link, signed.nonce, time.time()):
            return self.refuse(409, "Used", "This link was used already.")
        verdict = Verdict(signed.action == "approve", "webhook link", "webhook", time.time())
        decided = await anyio.to_thread.run_sync(self._approvals.decide, signed.approval, verdict)
        if decided is None:
            return self.refuse(409, "Already decided", "Someone decided first, or it expired.")
        return self.refuse(200, decided.status.value.capitalize(), f"{decided.id} is {decided.status.value}.")


def _scope(text: str, now: float) -> tuple[DecisionScope, float | None]:
    if text == "session":
        return DecisionScope.SESSION, None
    if text in WINDOWS:
        return DecisionScope.WINDOW, now + WINDOWS[text]
    return DecisionScope.CALL, None


def _when(moment: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment)) if moment else ""


async def _store_down(request: Request, exc: Exception) -> Response:
    return HTMLResponse("<h1>The approval store is unavailable</h1>", status_code=503)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, with_headers)  # pyright: ignore[reportArgumentType]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by every browser for same-origin form posts; the CSRF token still binds it
    return origin.rstrip("/") == f"{request.url.scheme}://{request.url.netloc}"


def _link(source: Any) -> SignedLink | None:
    try:
        return SignedLink(
            str(source["id"]), str(source["action"]), int(source["exp"]), str(source["nonce"]), str(source["sig"])
        )
    except (KeyError, ValueError, TypeError):
        return None

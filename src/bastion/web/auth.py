"""Dashboard sign-in: a bearer token with a dashboard role, traded for a session cookie.

Roles (`bastion tokens create --client NAME --role …`): `admin` (everything), `approver`
(decide approvals, acknowledge alerts), `auditor` (read-only). Agents' tokens (`agent`, the
default) cannot sign in. Sessions live in memory: restarting the dashboard signs everyone
out. Every form carries a per-session CSRF token, and a POST must also come from the
dashboard's own origin.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DASHBOARD_ROLES", "Sessions", "Viewer"]

DASHBOARD_ROLES = ("admin", "approver", "auditor")
COOKIE = "bastion_session"
LIFETIME = 8 * 3600.0


@dataclass(frozen=True, slots=True)
class Viewer:
    name: str
    role: str
    csrf: str
    expires: float

    @property
    def may_decide(self) -> bool:
        return self.role in ("admin", "approver")


class Sessions:
    """Signed-in viewers by session id (random, 256 bits, HttpOnly, SameSite=Strict cookie)."""

    def __init__(self, lookup: Callable[[str], tuple[str, str] | None]) -> None:
        self._lookup = lookup
        """token -> (client name, role), or None for an unknown, revoked or expired token."""
        self._sessions: dict[str, Viewer] = {}

    def sign_in(self, token: str) -> tuple[str, Viewer] | None:
        found = self._lookup(token.strip())
        if found is None or found[1] not in DASHBOARD_ROLES:
            return None
        session_id = secrets.token_urlsafe(32)
        viewer = Viewer(found[0], found[1], secrets.token_urlsafe(24), time.time() + LIFETIME)
        self._sessions[session_id] = viewer
        return session_id, viewer

    def viewer(self, session_id: str | None) -> Viewer | None:
        viewer = self._sessions.get(session_id or "")
        if viewer is None or viewer.expires < time.time():
            self._sessions.pop(session_id or "", None)
            return None
        return viewer

    def sign_out(self, session_id: str | None) -> None:
        self._sessions.pop(session_id or "", None)

    @staticmethod
    def csrf_ok(viewer: Viewer, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(viewer.csrf, presented)

"""Dashboard sign-in: only dashboard roles trade a token for a session, sessions expire, forms carry CSRF."""

from __future__ import annotations

import time

import pytest

from bastion.web import auth
from bastion.web.auth import DASHBOARD_ROLES, Sessions, Viewer

TOKENS = {"tok-admin": ("ann", "admin"), "tok-approver": ("bob", "approver"), "tok-auditor": ("eve", "auditor"),
          "tok-agent": ("bot", "agent")}  # fmt: skip


def sessions() -> Sessions:
    return Sessions(TOKENS.get)


def test_a_dashboard_role_signs_in_and_is_found_by_its_session() -> None:
    signed = sessions()
    found = signed.sign_in("  tok-approver\n")
    assert found is not None
    session_id, viewer = found
    assert (viewer.name, viewer.role, viewer.may_decide) == ("bob", "approver", True)
    assert len(session_id) >= 43
    assert signed.viewer(session_id) == viewer


def test_an_agents_token_or_an_unknown_one_cannot_sign_in() -> None:
    signed = sessions()
    assert signed.sign_in("tok-agent") is None
    assert signed.sign_in("nonsense") is None
    assert signed.sign_in("") is None


def test_only_admins_and_approvers_may_decide() -> None:
    assert DASHBOARD_ROLES == ("admin", "approver", "auditor")
    deciders = {role for role in DASHBOARD_ROLES if Viewer("x", role, "c", 0.0).may_decide}
    assert deciders == {"admin", "approver"}


def test_each_sign_in_is_its_own_session_and_signing_out_ends_only_that_one() -> None:
    signed = sessions()
    first, second = signed.sign_in("tok-admin"), signed.sign_in("tok-admin")
    assert first is not None
    assert second is not None
    assert first[0] != second[0]
    assert first[1].csrf != second[1].csrf
    signed.sign_out(first[0])
    assert signed.viewer(first[0]) is None
    assert signed.viewer(second[0]) == second[1]
    signed.sign_out(None)
    assert signed.viewer(None) is None


def test_a_session_ends_after_its_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    signed = sessions()
    found = signed.sign_in("tok-auditor")
    assert found is not None
    session_id, viewer = found
    assert viewer.expires == pytest.approx(time.time() + auth.LIFETIME, abs=60)
    later = viewer.expires + 1
    monkeypatch.setattr(auth.time, "time", lambda: later)
    assert signed.viewer(session_id) is None
    monkeypatch.undo()
    assert signed.viewer(session_id) is None, "an expired session is forgotten, not only hidden"


def test_a_form_must_carry_the_sessions_own_csrf_token() -> None:
    viewer = Viewer("ann", "admin", "the-token", 0.0)
    assert Sessions.csrf_ok(viewer, "the-token")
    assert not Sessions.csrf_ok(viewer, "the-tokeN")
    assert not Sessions.csrf_ok(viewer, None)
    assert not Sessions.csrf_ok(viewer, "")

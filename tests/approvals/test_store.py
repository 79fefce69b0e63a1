"""Approvals in the shared store, on SQLite and on a real PostgreSQL: the first decision wins
across connections, expiry, standing grants, single-use links, and a waiter woken by NOTIFY."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql as pgsql

from bastion.approvals.model import Approval, Scope, Status, Verdict, decide, grant_for, mask_arguments, new_id
from bastion.approvals.store import ApprovalStore
from tests.audit.conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'approvals.db'}"
        return
    schema = f"bastion_test_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
        db.execute(pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(schema)))
    try:
        yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as db:
            db.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(schema)))


def request(expires_in: float = 60.0, session: str = "s1") -> Approval:
    now = time.time()
    return Approval(
        new_id(), now, now + expires_in, "gw", "agent", session, "mail", "send", "network", "{}", "needs approval"
    )


def test_the_first_decision_wins_whichever_connection_makes_it(url: str) -> None:
    one, two = ApprovalStore(url), ApprovalStore(url)
    pending = request()
    one.create(pending)
    first = two.decide(pending.id, Verdict(True, "alice", "dashboard", time.time()))
    second = one.decide(pending.id, Verdict(False, "bob", "cli", time.time()))
    assert first is not None
    assert first.status is Status.APPROVED
    assert second is None
    stored = one.get(pending.id)
    assert stored is not None
    assert stored.verdict is not None
    assert stored.verdict.by == "alice"
    one.close()
    two.close()


def test_racing_decisions_from_many_threads_produce_exactly_one_winner(url: str) -> None:
    store = ApprovalStore(url)
    pending = request()
    store.create(pending)
    wins: list[str] = []

    def attempt(name: str) -> None:
        own = ApprovalStore(url)
        if own.decide(pending.id, Verdict(name.endswith("0"), name, "cli", time.time())) is not None:
            wins.append(name)
        own.close()

    threads = [threading.Thread(target=attempt, args=(f"approver-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    store.close()


def test_an_expired_request_cannot_be_approved(url: str) -> None:
    store = ApprovalStore(url)
    pending = request(expires_in=-1)
    store.create(pending)
    assert store.decide(pending.id, Verdict(True, "alice", "cli", time.time())) is None
    expired = store.expire(pending.id, time.time())
    assert expired is not None
    assert expired.status is Status.EXPIRED
    store.close()


class Watched(ApprovalStore):
    """Says when it has looked a request up, so a test can decide only once a waiter is waiting."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.looked = threading.Event()

    def get(self, approval_id: str) -> Approval | None:
        found = super().get(approval_id)
        self.looked.set()
        return found


def test_a_waiter_is_woken_by_a_decision_from_elsewhere(url: str) -> None:
    store, other = Watched(url), ApprovalStore(url)
    pending = request()
    store.create(pending)
    store.looked.clear()

    def later() -> None:
        assert store.looked.wait(10), "the waiter looked the request up"  # and found it pending: it waits on
        other.decide(pending.id, Verdict(False, "bob", "cli", time.time(), reason="no"))

    thread = threading.Thread(target=later)
    started = time.monotonic()
    thread.start()
    result = store.wait(pending.id, time.time() + 20)
    waited = time.monotonic() - started
    thread.join()
    assert result is not None
    assert result.status is Status.DENIED
    assert waited < 5
    store.close()
    other.close()


def test_session_and_window_approvals_become_standing_grants(url: str) -> None:
    store = ApprovalStore(url)
    session_scoped, window_scoped, single = request(session="s1"), request(session="s2"), request(session="s3")
    for pending in (session_scoped, window_scoped, single):
        store.create(pending)
    now = time.time()
    store.decide(session_scoped.id, Verdict(True, "alice", "cli", now, Scope.SESSION))
    store.decide(window_scoped.id, Verdict(True, "alice", "cli", now, Scope.WINDOW, until=now + 600))
    store.decide(single.id, Verdict(True, "alice", "cli", now))
    grants = store.grants(now)
    assert len(grants) == 2
    assert any(g.covers("agent", "s1", "mail", "send", now) and g.session == "s1" for g in grants)
    assert any(g.covers("agent", "anything", "mail", "send", now + 60) for g in grants)
    assert not any(g.covers("agent", "s9", "mail", "send", now + 601) for g in grants)
    assert not any(g.covers("other-agent", "s1", "mail", "send", now) for g in grants)
    store.close()


def test_a_link_nonce_works_once(url: str) -> None:
    store = ApprovalStore(url)
    assert store.use_link("nonce-1", time.time())
    assert not store.use_link("nonce-1", time.time())
    store.close()


def test_decide_is_pure_and_refuses_a_second_verdict() -> None:
    pending = request()
    approved = decide(pending, Verdict(True, "alice", "cli", pending.created, Scope.SESSION))
    assert approved is not None
    assert approved.status is Status.APPROVED
    assert decide(approved, Verdict(False, "bob", "cli", pending.created)) is None
    late = decide(pending, Verdict(True, "alice", "cli", pending.expires + 1))
    assert late is not None
    assert late.status is Status.EXPIRED
    grant = grant_for(approved)
    assert grant is not None
    assert grant.session == pending.session


def test_arguments_shown_to_approvers_have_secrets_masked() -> None:
    shown = mask_arguments({"to": "a@b.c", "api_key": "abc123", "body": "use sk-live0123456789abcdefgh please"})
    assert "abc123" not in shown
    assert "sk-live0123456789abcdefgh" not in shown
    assert "a@b.c" in shown

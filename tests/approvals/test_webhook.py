"""The webhook channel: signed, expiring approve/deny links and the Slack message that carries them."""

from __future__ import annotations

import stat
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bastion.approvals.model import Approval
from bastion.approvals.webhook import LinkKey, SignedLink, WebhookNotifier, slack_message

APPROVAL = Approval(
    "apr_1", 1000.0, 1300.0, "gw", "alice", "s1", "fs", "write_file", "write", '{"path": "x"}', "tools.approve",
    recent=("read_file", "list_dir"),
)  # fmt: skip


def test_the_link_key_is_created_once_as_a_private_file(tmp_path: Path) -> None:
    first = LinkKey(tmp_path)
    path = tmp_path / "keys" / "approval-links.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    link = first.sign("apr_1", "approve", 2000)
    assert LinkKey(tmp_path).check(link, 1500.0) is None


def test_a_genuine_link_verifies_until_it_expires(tmp_path: Path) -> None:
    key = LinkKey(tmp_path)
    link = key.sign("apr_1", "deny", 2000)
    assert key.check(link, 1999.0) is None
    assert key.check(link, 2000.0) == "the link has expired"


def test_a_link_changed_in_any_field_does_not_verify(tmp_path: Path) -> None:
    key = LinkKey(tmp_path)
    link = key.sign("apr_1", "deny", 2000)
    for forged in (
        replace(link, action="approve"),
        replace(link, approval="apr_2"),
        replace(link, expires=9999),
        replace(link, nonce="other"),
    ):
        assert key.check(forged, 1500.0) == "the link's signature does not verify"
    assert key.check(replace(link, action="delete"), 1500.0) == "unknown action"


def test_a_link_signed_under_another_home_does_not_verify(tmp_path: Path) -> None:
    link = LinkKey(tmp_path / "a").sign("apr_1", "approve", 2000)
    assert LinkKey(tmp_path / "b").check(link, 1500.0) is not None


def test_the_notifier_links_expire_with_the_request_or_the_ttl_whichever_is_first(tmp_path: Path) -> None:
    key = LinkKey(tmp_path)
    approve, deny = WebhookNotifier("http://127.0.0.1:9/hook", "https://bastion.example/", key, 60.0).links(APPROVAL)
    assert approve.startswith("https://bastion.example/approvals/link?")
    fields = {name: values[0] for name, values in parse_qs(urlsplit(approve).query).items()}
    assert fields["action"] == "approve"
    assert fields["exp"] == "1060"
    link = SignedLink(fields["id"], fields["action"], int(fields["exp"]), fields["nonce"], fields["sig"])
    assert key.check(link, 1059.0) is None
    assert parse_qs(urlsplit(deny).query)["action"] == ["deny"]
    _, late = WebhookNotifier("http://127.0.0.1:9/hook", "https://b.example", key, 10_000.0).links(APPROVAL)
    assert parse_qs(urlsplit(late).query)["exp"] == ["1300"]


def test_the_slack_message_names_the_call_and_carries_both_buttons() -> None:
    message = slack_message(APPROVAL, "https://b/approve", "https://b/deny")
    assert message["text"].startswith("Approval needed: fs.write_file (write) for alice")
    buttons = message["blocks"][2]["elements"]
    assert [(b["text"]["text"], b["url"]) for b in buttons] == [
        ("Approve", "https://b/approve"),
        ("Deny", "https://b/deny"),
    ]
    assert "*Just before:* read_file, list_dir" in message["blocks"][1]["text"]["text"]
    assert "expires in 300 s" in message["blocks"][3]["elements"][0]["text"]


@pytest.mark.anyio
async def test_an_unreachable_webhook_is_reported_as_not_sent(tmp_path: Path) -> None:
    notifier = WebhookNotifier("http://127.0.0.1:9/hook", "https://b.example", LinkKey(tmp_path), 60.0)
    assert await notifier(APPROVAL) is False

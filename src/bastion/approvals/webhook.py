"""The webhook channel: a Slack-compatible message with signed, single-use, expiring links.

Each link names the approval, the action (approve or deny), an expiry and a random nonce,
signed with HMAC-SHA256 under a key kept in `BASTION_HOME/keys/approval-links.key` (0600).
The dashboard's `/approvals/link` page checks the signature and the expiry, asks for one
click to confirm (so that link previews never decide), and spends the nonce: a link works
once. Point `webhook_url` at a Slack incoming webhook (or anything that accepts the same JSON).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import orjson

from bastion.approvals.model import Approval
from bastion.files import write_private

__all__ = ["LinkKey", "SignedLink", "WebhookNotifier", "slack_message"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SignedLink:
    approval: str
    action: str
    expires: int
    nonce: str
    signature: str

    def query(self) -> str:
        return urlencode(
            {
                "id": self.approval,
                "action": self.action,
                "exp": self.expires,
                "nonce": self.nonce,
                "sig": self.signature,
            }
        )


class LinkKey:
    """The key that signs webhook links (created on first use)."""

    def __init__(self, home: Path) -> None:
        path = home / "keys" / "approval-links.key"
        if not path.exists():
            write_private(path, secrets.token_bytes(32))
        self._key = path.read_bytes()

    def _mac(self, approval: str, action: str, expires: int, nonce: str) -> str:
        message = f"{approval}|{action}|{expires}|{nonce}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, approval: str, action: str, expires: int) -> SignedLink:
        nonce = secrets.token_urlsafe(12)
        return SignedLink(approval, action, expires, nonce, self._mac(approval, action, expires, nonce))

    def check(self, link: SignedLink, now: float) -> str | None:
        """None if the link is genuine and unexpired, else why not (it may still be spent already)."""
        if link.action not in ("approve", "deny"):
            return "unknown action"
        expected = self._mac(link.approval, link.action, link.expires, link.nonce)
        if not hmac.compare_digest(expected, link.signature):
            return "the link's signature does not verify"
        if now >= link.expires:
            return "the link has expired"
        return None


def slack_message(approval: Approval, approve_url: str, deny_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook payload (text for plain receivers, blocks with two link buttons)."""
    title = f"Approval needed: {approval.server}.{approval.tool} ({approval.risk}) for {approval.client}"
    details = f"*Why:* {approval.why}\n*Arguments:*\n```{approval.arguments[:2500]}```"
    if approval.recent:
        details += "\n*Just before:* " + ", ".join(approval.recent)
    return {
        "text": f"{title}. Approve: {approve_url} Deny: {deny_url}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": details}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "url": approve_url,
                    },
                    {
                        "type": "button",
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Deny"},
                        "url": deny_url,
                    },
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"{approval.id} · expires in {approval.expires - approval.created:.0f} s",
                    }
                ],
            },
        ],
    }


class WebhookNotifier:
    def __init__(self, url: str, public_url: str, key: LinkKey, link_ttl: float) -> None:
        self._url = url
        self._public = public_url.rstrip("/")
        self._key = key
        self._ttl = link_ttl

    def links(self, approval: Approval) -> tuple[str, str]:
        expires = int(min(approval.expires, approval.created + self._ttl))

        def url(action: str) -> str:
            return f"{self._public}/approvals/link?{self._key.sign(approval.id, action, expires).query()}"

        return url("approve"), url("deny")

    async def __call__(self, approval: Approval) -> bool:
        approve, deny = self.links(approval)
        body = orjson.dumps(slack_message(approval, approve, deny))
        try:
            await anyio.to_thread.run_sync(self._post, body)
        except (OSError, urllib.error.URLError) as exc:
            logger.warning("approval %s: the webhook could not be reached: %s", approval.id, exc)
            return False
        return True

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 (the configured webhook URL, http or https only)
            self._url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

"""Server identities: one Ed25519 key pair per server, stable ids, rotation that keeps the past attributable."""

from __future__ import annotations

import base64
import hashlib
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bastion.errors import SecretError
from bastion.identity.servers import ServerIdentities


def test_an_identity_is_created_once_and_stays_the_same(home: Path) -> None:
    first = ServerIdentities(home).identity("mail")
    assert first == ServerIdentities(home).identity("mail")
    assert first.server == "mail"
    assert re.fullmatch(r"srv_[0-9a-f]{16}", first.id)
    public = base64.b64decode(first.public_key)
    assert first.id == "srv_" + hashlib.sha256(public).hexdigest()[:16]


def test_every_server_has_its_own_identity(home: Path) -> None:
    identities = ServerIdentities(home)
    mail, git = identities.identity("mail"), identities.identity("git")
    assert mail.id != git.id
    assert mail.public_key != git.public_key


def test_private_keys_are_readable_only_by_their_owner(home: Path) -> None:
    ServerIdentities(home).identity("mail")
    assert stat.S_IMODE((home / "identities").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "identities" / "mail.key").stat().st_mode) == 0o600


def test_a_key_file_open_to_others_is_refused(home: Path) -> None:
    ServerIdentities(home).identity("mail")
    (home / "identities" / "mail.key").chmod(0o644)
    with pytest.raises(SecretError) as refused:
        ServerIdentities(home).identity("mail")
    assert refused.value.server == "mail"
    with pytest.raises(SecretError):
        ServerIdentities(home).rotate("mail")


def test_a_signature_verifies_under_the_servers_public_key(home: Path) -> None:
    identities = ServerIdentities(home)
    signature = identities.sign("mail", b"record 42")
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(identities.identity("mail").public_key))
    public.verify(signature, b"record 42")
    assert identities.attribute("mail", b"record 42", signature) == identities.identity("mail")
    assert identities.attribute("mail", b"record 43", signature) is None
    assert identities.attribute("git", b"record 42", signature) is None


def test_rotation_changes_the_id_and_keeps_the_retired_key(home: Path) -> None:
    identities = ServerIdentities(home)
    old = identities.identity("mail")
    old_signature = identities.sign("mail", b"before")
    new = identities.rotate("mail")
    assert new.id != old.id
    assert identities.identity("mail") == new
    assert (home / "identities" / "mail.key.1").exists()
    assert stat.S_IMODE((home / "identities" / "mail.key.1").stat().st_mode) == 0o600
    assert identities.history("mail") == [old, new]
    assert identities.attribute("mail", b"before", old_signature) == old
    assert identities.attribute("mail", b"after", identities.sign("mail", b"after")) == new
    newest = identities.rotate("mail")
    assert [i.id for i in identities.history("mail")] == [old.id, new.id, newest.id]


def test_rotating_one_server_leaves_the_others_alone(home: Path) -> None:
    identities = ServerIdentities(home)
    git = identities.identity("git")
    identities.rotate("mail")
    assert identities.identity("git") == git
    assert identities.history("git") == [git]


@pytest.mark.parametrize("server", ["../mail", "", "a/b", "-x"])
def test_a_name_that_is_not_a_server_name_is_refused(home: Path, server: str) -> None:
    with pytest.raises(SecretError):
        ServerIdentities(home).identity(server)
    assert not (home / "identities").exists() or list((home / "identities").iterdir()) == []

"""The secret store: values encrypted at rest, bound to their server, name and version, failing closed."""

from __future__ import annotations

import base64
import logging
import os
import sqlite3
import stat
import sys
import types
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from bastion.errors import SecretError, StoreError
from bastion.identity.secrets import KEYRING_ENV, MASTER_KEY_ENV, SecretInfo, SecretStore
from bastion.types import Secret

VALUE = "sk-live-NEVER-IN-CLEAR-4f1d2c9e8b7a"
OTHER = "ghp_ANOTHER-VALUE-NEVER-IN-CLEAR-0042"


@pytest.fixture
def store(home: Path) -> Iterator[SecretStore]:
    opened = SecretStore.open(home, {})
    yield opened
    opened.close()


def raw(home: Path, query: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Reach into the file the way an attacker with write access to BASTION_HOME would."""
    with sqlite3.connect(home / "secrets.db") as db:
        rows = db.execute(query, parameters).fetchall()
    db.close()
    return rows


def files_containing(home: Path, needle: str) -> list[Path]:
    return [f for f in home.rglob("*") if f.is_file() and needle.encode() in f.read_bytes()]


def test_a_secret_masks_itself_everywhere_but_reveal() -> None:
    secret = Secret(VALUE)
    assert VALUE not in repr(secret)
    assert VALUE not in str(secret)
    assert VALUE not in f"{secret} {secret!r}"
    assert VALUE not in repr([secret, {"k": secret}])
    assert secret.reveal() == VALUE
    assert secret == Secret(VALUE)
    assert secret != Secret(OTHER)
    assert secret != VALUE


def test_setting_a_secret_gives_version_one_then_counts_up(store: SecretStore) -> None:
    assert store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0) == 1
    assert store.environment("mail") == {"API_KEY": VALUE}
    assert store.set("mail", "API_KEY", Secret(OTHER), "bob", 2.0) == 2
    assert store.rotate("mail", "API_KEY", Secret(VALUE), "bob", 3.0) == 3
    assert store.environment("mail") == {"API_KEY": VALUE}
    assert store.versions("mail") == {"API_KEY": 3}
    assert store.list() == [SecretInfo("mail", "API_KEY", 3, 1.0, 3.0, None, "bob")]


def test_a_server_gets_only_its_own_secrets(store: SecretStore) -> None:
    store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    store.set("git", "TOKEN", Secret(OTHER), "alice", 1.0)
    assert store.environment("mail") == {"API_KEY": VALUE}
    assert store.environment("git") == {"TOKEN": OTHER}
    assert store.environment("calendar") == {}
    assert [info.server for info in store.list("git")] == ["git"]
    assert [(info.server, info.name) for info in store.list()] == [("git", "TOKEN"), ("mail", "API_KEY")]


def test_values_never_reach_the_files_in_clear(home: Path, store: SecretStore) -> None:
    store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    store.rotate("mail", "API_KEY", Secret(OTHER), "alice", 2.0)
    store.set("git", "TOKEN", Secret(VALUE), "alice", 3.0)
    store.revoke("git", "TOKEN", "alice", 4.0)
    assert (home / "secrets.db").exists()
    assert files_containing(home, VALUE) == []
    assert files_containing(home, OTHER) == []


def test_the_store_and_its_key_file_are_private_to_the_owner(home: Path, store: SecretStore) -> None:
    assert stat.S_IMODE((home / "secrets.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "keys" / "secrets-master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700


def test_a_ciphertext_copied_to_another_server_does_not_decrypt(home: Path, store: SecretStore) -> None:
    store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    store.set("git", "API_KEY", Secret(OTHER), "alice", 1.0)
    raw(
        home,
        "UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets WHERE server = 'mail') WHERE server = 'git'",
    )
    with pytest.raises(SecretError) as refused:
        store.environment("git")
    assert (refused.value.server, refused.value.name) == ("git", "API_KEY")
    assert VALUE not in str(refused.value)
    assert store.environment("mail") == {"API_KEY": VALUE}


def test_a_ciphertext_copied_to_another_name_or_version_does_not_decrypt(home: Path, store: SecretStore) -> None:
    store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    store.set("mail", "OTHER_KEY", Secret(OTHER), "alice", 1.0)
    raw(home, "UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets WHERE name = 'API_KEY')")
    with pytest.raises(SecretError) as moved:
        store.environment("mail")
    assert moved.value.name == "OTHER_KEY"
    store.set("mail", "OTHER_KEY", Secret(OTHER), "alice", 2.0)
    raw(home, "UPDATE secrets SET version = version + 1 WHERE name = 'API_KEY'")
    with pytest.raises(SecretError) as renumbered:
        store.environment("mail")
    assert renumbered.value.name == "API_KEY"


def test_a_tampered_ciphertext_fails_closed(home: Path, store: SecretStore) -> None:
    store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    [(sealed,)] = raw(home, "SELECT ciphertext FROM secrets")
    assert isinstance(sealed, bytes)
    flipped = sealed[:20] + bytes([sealed[20] ^ 1]) + sealed[21:]
    raw(home, "UPDATE secrets SET ciphertext = ?", (flipped,))
    with pytest.raises(SecretError) as refused:
        store.environment("mail")
    assert (refused.value.server, refused.value.name) == ("mail", "API_KEY")


def test_a_revoked_secret_keeps_its_server_from_starting_until_set_again(home: Path, store: SecretStore) -> None:
    store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    store.set("mail", "OTHER_KEY", Secret(OTHER), "alice", 1.0)
    assert store.rotate("mail", "API_KEY", Secret(VALUE), "alice", 2.0) == 2
    assert store.revoke("mail", "API_KEY", "bob", 3.0) == 2
    assert raw(home, "SELECT ciphertext FROM secrets WHERE name = 'API_KEY'") == [(None,)]
    with pytest.raises(SecretError) as refused:
        store.environment("mail")
    assert (refused.value.server, refused.value.name) == ("mail", "API_KEY")
    assert store.versions("mail") == {"OTHER_KEY": 1}
    info = store.list("mail")[0]
    assert (info.version, info.revoked, info.by) == (2, 3.0, "bob")
    with pytest.raises(SecretError):
        store.revoke("mail", "API_KEY", "bob", 4.0)
    assert store.set("mail", "API_KEY", Secret(OTHER), "bob", 5.0) == 3
    assert store.environment("mail") == {"API_KEY": OTHER, "OTHER_KEY": OTHER}
    assert store.versions("mail") == {"API_KEY": 3, "OTHER_KEY": 1}


def test_rotating_or_revoking_an_unknown_secret_is_refused(store: SecretStore) -> None:
    with pytest.raises(SecretError) as rotated:
        store.rotate("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    assert (rotated.value.server, rotated.value.name) == ("mail", "API_KEY")
    with pytest.raises(SecretError):
        store.revoke("mail", "API_KEY", "alice", 1.0)
    assert store.list() == []


@pytest.mark.parametrize(
    ("server", "name"), [("mail", "1KEY"), ("mail", "API-KEY"), ("mail", "A B"), ("../etc", "KEY"), ("", "KEY")]
)
def test_names_that_are_not_server_or_variable_names_are_refused(store: SecretStore, server: str, name: str) -> None:
    with pytest.raises(SecretError):
        store.set(server, name, Secret(VALUE), "alice", 1.0)
    assert store.list() == []


@pytest.mark.parametrize("value", ["", "a\x00b"])
def test_values_an_environment_cannot_hold_are_refused(store: SecretStore, value: str) -> None:
    with pytest.raises(SecretError):
        store.set("mail", "API_KEY", Secret(value), "alice", 1.0)
    assert store.list() == []


def test_a_key_file_open_to_others_is_refused(home: Path) -> None:
    SecretStore.open(home, {}).close()
    key = home / "keys" / "secrets-master.key"
    key.chmod(0o644)
    with pytest.raises(SecretError) as refused:
        SecretStore.open(home, {})
    assert refused.value.name == key.name


def test_a_store_whose_key_file_is_gone_is_not_given_a_new_key(home: Path) -> None:
    with closing(SecretStore.open(home, {})) as store:
        store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    (home / "keys" / "secrets-master.key").unlink()
    with pytest.raises(SecretError):
        SecretStore.open(home, {})
    assert not (home / "keys" / "secrets-master.key").exists()


def test_a_store_file_left_empty_by_a_crash_on_first_use_is_taken_as_new(home: Path) -> None:
    home.mkdir()
    (home / "secrets.db").touch(mode=0o600)
    with closing(SecretStore.open(home, {})) as store:
        assert store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0) == 1
    assert (home / "keys" / "secrets-master.key").exists()


def test_a_master_key_from_the_environment_is_used_and_a_wrong_one_fails_closed(home: Path) -> None:
    key = {MASTER_KEY_ENV: base64.b64encode(os.urandom(32)).decode()}
    with closing(SecretStore.open(home, key)) as store:
        store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    assert not (home / "keys" / "secrets-master.key").exists()
    with closing(SecretStore.open(home, key)) as store:
        assert store.environment("mail") == {"API_KEY": VALUE}
    with pytest.raises(SecretError) as wrong:
        SecretStore.open(home, {MASTER_KEY_ENV: base64.b64encode(os.urandom(32)).decode()})
    assert VALUE not in str(wrong.value)
    with pytest.raises(SecretError):
        SecretStore.open(home, {})  # no key at all: not a fresh key file either


@pytest.mark.parametrize("encoded", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_master_key_in_the_environment_is_refused(home: Path, encoded: str) -> None:
    with pytest.raises(SecretError):
        SecretStore.open(home, {MASTER_KEY_ENV: encoded})


def test_a_wrong_key_on_a_value_written_under_another_key_fails_closed(home: Path) -> None:
    first = {MASTER_KEY_ENV: base64.b64encode(os.urandom(32)).decode()}
    with closing(SecretStore.open(home, first)) as store:
        store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    raw(home, "DELETE FROM secrets_meta")  # an attacker removes the key check: decryption still refuses
    with closing(SecretStore.open(home, {MASTER_KEY_ENV: base64.b64encode(os.urandom(32)).decode()})) as store:
        with pytest.raises(SecretError) as refused:
            store.environment("mail")
    assert refused.value.name == "API_KEY"


class KeyringError(Exception):
    """Stands in for keyring.errors.KeyringError."""


class FakeKeyring(types.ModuleType):
    """The `keyring` package's two calls, over a dict; `locked` makes them fail as a locked keyring does."""

    def __init__(self) -> None:
        super().__init__("keyring")
        self.entries: dict[tuple[str, str], str] = {}
        self.locked = False

    def get_password(self, service_name: str, username: str) -> str | None:
        if self.locked:
            raise KeyringError("locked")
        return self.entries.get((service_name, username))

    def set_password(self, service_name: str, username: str, password: str) -> None:
        self.entries[(service_name, username)] = password


class FakeKeyringErrors(types.ModuleType):
    KeyringError = KeyringError


@pytest.fixture
def keyring(monkeypatch: pytest.MonkeyPatch) -> FakeKeyring:
    fake = FakeKeyring()
    monkeypatch.setitem(sys.modules, "keyring", fake)
    monkeypatch.setitem(sys.modules, "keyring.errors", FakeKeyringErrors("keyring.errors"))
    return fake


def test_the_master_key_can_live_in_the_os_keyring(home: Path, keyring: FakeKeyring) -> None:
    with closing(SecretStore.open(home, {KEYRING_ENV: "1"})) as store:
        store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    assert len(base64.b64decode(keyring.entries[("bastion", "secrets-master")])) == 32
    assert not (home / "keys" / "secrets-master.key").exists()
    with closing(SecretStore.open(home, {KEYRING_ENV: "1"})) as store:
        assert store.environment("mail") == {"API_KEY": VALUE}


def test_a_keyring_that_fails_fails_closed(home: Path, keyring: FakeKeyring) -> None:
    keyring.locked = True
    with pytest.raises(SecretError):
        SecretStore.open(home, {KEYRING_ENV: "1"})
    assert not (home / "keys" / "secrets-master.key").exists()


def test_asking_for_the_keyring_without_the_package_is_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "keyring", None)
    with pytest.raises(SecretError):
        SecretStore.open(home, {KEYRING_ENV: "1"})


def test_a_store_file_that_is_not_a_database_is_a_store_error(home: Path) -> None:
    home.mkdir()
    (home / "secrets.db").write_bytes(b"this is not sqlite, it is " * 100)
    with pytest.raises(StoreError):
        SecretStore.open(home, {MASTER_KEY_ENV: base64.b64encode(os.urandom(32)).decode()})


def test_no_value_is_logged(store: SecretStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store.set("mail", "API_KEY", Secret(VALUE), "alice", 1.0)
    store.environment("mail")
    store.revoke("mail", "API_KEY", "alice", 2.0)
    with pytest.raises(SecretError):
        store.environment("mail")
    assert VALUE not in caplog.text

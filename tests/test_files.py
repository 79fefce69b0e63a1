"""Private files: replaced whole or not at all, private from the first byte, keys refused when open to others."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from bastion.errors import BastionError, SecretError, StoreError
from bastion.files import (
    MasterKey,
    create_once,
    load_master_key,
    read_private,
    replace_atomically,
    write_new,
    write_private,
)

KEY = MasterKey("TEST_MASTER_KEY", "test-master.key")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "bastion.lock"
    target.write_bytes(b"old\n")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        replace_atomically(target, b"new\n", mode=0o644)
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bastion.lock"]


def test_a_replaced_file_has_exactly_the_mode_asked_for_whatever_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "claude_desktop_config.json"
    previous = os.umask(0o077)
    try:
        replace_atomically(target, b"{}\n", mode=0o644)
    finally:
        os.umask(previous)
    assert mode(target) == 0o644
    assert target.read_bytes() == b"{}\n"


def test_a_private_file_is_0600_in_new_0700_folders(tmp_path: Path) -> None:
    target = tmp_path / "home" / "keys" / "a.key"
    write_private(target, b"k" * 32)
    write_private(target, b"K" * 32)
    assert target.read_bytes() == b"K" * 32
    assert mode(target) == 0o600
    assert mode(target.parent) == 0o700
    assert mode(target.parent.parent) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["a.key"]


def test_the_rename_is_made_durable_by_fsyncing_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bool] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    replace_atomically(tmp_path / "f", b"data", mode=0o600)
    assert synced == [False, True], "the file's data first, then the folder that names it"


def test_a_new_file_is_never_written_over_an_existing_one(tmp_path: Path) -> None:
    target = tmp_path / "backup"
    write_new(target, b"first", 0o600)
    with pytest.raises(FileExistsError):
        write_new(target, b"second", 0o600)
    assert target.read_bytes() == b"first"


def test_create_once_keeps_the_file_that_won(tmp_path: Path) -> None:
    target = tmp_path / "keys" / "mail.key"
    assert create_once(target, b"winner") == b"winner"
    assert create_once(target, b"loser") == b"winner"
    assert target.read_bytes() == b"winner"
    assert mode(target) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["mail.key"]


def test_a_key_file_readable_by_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "test-master.key"
    write_private(path, os.urandom(32))
    path.chmod(0o644)
    with pytest.raises(StoreError) as refused:
        load_master_key(KEY, tmp_path, {}, create=True)
    assert f"chmod 600 {path}" in str(refused.value)
    assert mode(path) == 0o644, "refused, not repaired or replaced"


def test_the_refusal_is_the_callers_error(tmp_path: Path) -> None:
    path = tmp_path / "mail.key"
    path.write_bytes(os.urandom(32))
    path.chmod(0o640)

    def as_secret_error(subject: str, detail: str, fix: str) -> BastionError:
        return SecretError("mail", subject, detail, fix)

    with pytest.raises(SecretError) as refused:
        read_private(path, as_secret_error)
    assert (refused.value.server, refused.value.name) == ("mail", "mail.key")


def test_a_master_key_is_created_when_asked_and_then_kept(tmp_path: Path) -> None:
    assert load_master_key(KEY, tmp_path, {}, create=False) is None
    assert not (tmp_path / "keys").exists()
    created = load_master_key(KEY, tmp_path, {}, create=True)
    assert created is not None
    assert len(created) == 32
    assert mode(tmp_path / "keys" / "test-master.key") == 0o600
    assert load_master_key(KEY, tmp_path, {}, create=True) == created
    assert load_master_key(KEY, tmp_path, {}, create=False) == created


def test_a_key_file_of_the_wrong_size_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "test-master.key"
    write_private(path, b"short")
    with pytest.raises(StoreError):
        load_master_key(KEY, tmp_path, {}, create=True)
    assert path.read_bytes() == b"short"


def test_the_environment_key_wins_and_a_malformed_one_is_refused(tmp_path: Path) -> None:
    key = os.urandom(32)
    assert load_master_key(KEY, tmp_path, {KEY.env: base64.b64encode(key).decode()}, create=True) == key
    assert not (tmp_path / "keys").exists(), "no key file is made when the environment holds the key"
    for malformed in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(StoreError):
            load_master_key(KEY, tmp_path, {KEY.env: malformed}, create=True)

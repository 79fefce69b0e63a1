"""Where Bastion keeps its state: BASTION_HOME, else the XDG data folder, created private to its owner."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bastion.errors import StoreError
from bastion.store.home import bastion_home, ensure_home


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_bastion_home_is_honoured_over_everything_else_with_the_user_folder_expanded() -> None:
    environ = {"BASTION_HOME": "~/state", "XDG_DATA_HOME": "/xdg", "HOME": "/home/ada"}
    assert bastion_home(environ) == Path("~/state").expanduser()
    assert bastion_home({**environ, "BASTION_HOME": "/srv/bastion"}) == Path("/srv/bastion")


def test_without_bastion_home_the_state_lives_in_the_xdg_data_folder() -> None:
    assert bastion_home({"XDG_DATA_HOME": "/xdg", "HOME": "/home/ada"}) == Path("/xdg/bastion")
    assert bastion_home({"BASTION_HOME": "", "XDG_DATA_HOME": "/xdg"}) == Path("/xdg/bastion"), "empty is unset"


def test_without_either_it_is_under_the_users_local_share() -> None:
    assert bastion_home({"HOME": "/home/ada"}) == Path("/home/ada/.local/share/bastion")
    assert bastion_home({"HOME": "/home/ada", "XDG_DATA_HOME": ""}) == Path("/home/ada/.local/share/bastion")


def test_a_missing_home_is_created_with_its_parents_and_only_its_owner_may_enter_it(tmp_path: Path) -> None:
    home = tmp_path / "a" / "b" / "bastion"
    assert ensure_home(home) == home
    assert home.is_dir()
    assert mode(home) == 0o700


def test_an_existing_home_open_to_others_is_made_private(tmp_path: Path) -> None:
    home = tmp_path / "bastion"
    home.mkdir()
    home.chmod(0o755)
    (home / "bastion.db").write_bytes(b"kept")
    ensure_home(home)
    assert mode(home) == 0o700
    assert (home / "bastion.db").read_bytes() == b"kept", "what the folder holds is left alone"


def test_a_home_that_cannot_be_a_folder_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(StoreError):
        ensure_home(blocker / "bastion")
    with pytest.raises(StoreError):
        ensure_home(blocker)

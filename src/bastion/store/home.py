"""Where Bastion keeps its state: BASTION_HOME, default ~/.local/share/bastion, created 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from bastion.errors import StoreError

__all__ = ["bastion_home", "ensure_home"]


def bastion_home(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("BASTION_HOME")
    if explicit:
        return Path(explicit).expanduser()
    data = environ.get("XDG_DATA_HOME")
    base = Path(data).expanduser() if data else Path(environ.get("HOME", "~")).expanduser() / ".local" / "share"
    return base / "bastion"


def ensure_home(home: Path) -> Path:
    """Create the state directory private to this user; refuse one that others can read."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(home.stat().st_mode)
    except OSError as exc:
        raise StoreError(f"cannot create state directory {home}: {exc.strerror}") from exc
    if mode & 0o077:
        try:
            os.chmod(home, 0o700)
        except OSError as exc:
            raise StoreError(
                f"state directory {home} is accessible to other users (mode {mode:o}); run: chmod 700 {home}"
            ) from exc
    return home

"""Shared fixtures: every test gets its own BASTION_HOME."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PYTHON = sys.executable
BASTION = [PYTHON, "-m", "bastion"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("BASTION_HOME", str(path))
    return path


def child_env(home: Path) -> dict[str, str]:
    """The environment for a Bastion subprocess in tests: ours, with its own state directory."""
    return {**os.environ, "BASTION_HOME": str(home)}

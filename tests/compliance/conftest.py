"""The recorded quarter and its pack, built once and shared by the pack and tamper tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from bastion.audit.checkpoint import Verifier
from bastion.audit.keys import Keyring
from bastion.compliance import Period, Request, build_pack
from bastion.compliance.render import find_chromium
from bastion.config.model import AuditConfig, BastionConfig
from bastion.store.audit_open import open_store
from tests.compliance.scenario import PERIOD, Quarter, at, record_quarter

__all__ = ["Built", "build", "request"]


@dataclass
class Built:
    home: Path
    quarter: Quarter
    pack: Path
    verifiers: list[Verifier]


def request(home: Path, period: str = PERIOD, **changes: Any) -> Request:
    keyring = Keyring(home, "")
    values: dict[str, Any] = {
        "period": Period.parse(period),
        "home": home,
        "signer": keyring.signer(create=False),
        "verifiers": keyring.verifiers(),
        "now": at("2027-02-01T00:00:00"),
        "config": BastionConfig(audit=AuditConfig(retention="hipaa")),
        "config_source": "bastion.toml",
        "chromium": find_chromium(),
    }
    return Request(**(values | changes))


def build(home: Path, out: Path, **changes: Any) -> Path:
    store = open_store(home, None)
    try:
        build_pack(store, request(home, **changes), out)
    finally:
        store.close()
    return out


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("quarter")
    home = root / "home"
    home.mkdir(mode=0o700)
    quarter = anyio.run(record_quarter, home)
    pack = build(home, root / "pack")
    return Built(home, quarter, pack, Keyring(home, "").verifiers())

"""Pins at a running gateway: which lock is in force for each pinning mode, and the listing stage
that shows every offer to the pins before passing it on unchanged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from bastion.config.load import parse_config
from bastion.config.model import BastionConfig
from bastion.errors import PinError
from bastion.inventory.enforce import PinListings, pins_in_force
from bastion.inventory.pins import Lock, save_lock
from bastion.proxy.listings import Offer
from bastion.proxy.pipeline import ClientInfo


def mode(pinning: str) -> BastionConfig:
    return parse_config(f'[gateway]\npinning = "{pinning}"\n')


def test_pinning_off_or_no_lock_path_enforces_nothing(tmp_path: Path) -> None:
    (tmp_path / "bastion.lock").write_text("not json", encoding="utf-8")
    assert pins_in_force(mode("off"), tmp_path / "bastion.lock") is None
    assert pins_in_force(mode("enforce"), None) is None


def test_auto_enforces_only_once_a_lock_has_been_written(tmp_path: Path) -> None:
    path = tmp_path / "bastion.lock"
    assert pins_in_force(mode("auto"), path) is None
    save_lock(path, Lock())
    assert pins_in_force(mode("auto"), path) == Lock()


def test_enforce_without_a_lock_pins_nothing_so_every_server_is_blocked(tmp_path: Path) -> None:
    assert pins_in_force(mode("enforce"), tmp_path / "bastion.lock") == Lock()


def test_a_lock_that_does_not_load_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "bastion.lock").write_text("{", encoding="utf-8")
    with pytest.raises(PinError):
        pins_in_force(mode("auto"), tmp_path / "bastion.lock")


@pytest.mark.anyio
async def test_the_admit_stage_shows_what_the_server_said_and_passes_the_offer_on() -> None:
    seen: list[tuple[str, str, str | None, Mapping[str, Sequence[Mapping[str, Any]]]]] = []

    async def observe(server: str, version: str, instructions: str | None, said: Mapping[str, Any]) -> None:
        seen.append((server, version, instructions, said))

    said = {"tools": [{"name": "read", "description": "as said"}]}
    shown = {"tools": [{"name": "read", "description": "as screened"}]}
    offer = Offer(ClientInfo("alice", "s1"), "fs", "1.0", "be nice", said, ("tools",), shown, "be nice")
    passed: list[Offer] = []

    async def offer_next(given: Offer) -> Offer:
        passed.append(given)
        return given

    stage = PinListings(observe)
    assert stage.name == "admit"
    assert await stage(offer, offer_next) is offer
    assert passed == [offer]
    assert seen == [("fs", "1.0", "be nice", said)]

"""The listing pipeline: declared order, stages that drop or replace items, and the session that runs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import anyio
import pytest
from tests.proxy.fakes import FakeServer, RecordingClient, fake_connector

from bastion.config.model import GatewayConfig, ServerConfig
from bastion.proxy.listings import (
    INSTRUCTIONS,
    LISTING_ORDER,
    ListingStage,
    Offer,
    OfferNext,
    RecordListings,
    compose_listings,
    either,
)
from bastion.proxy.pipeline import Call, ClientInfo
from bastion.proxy.session import Session
from bastion.types import Reply

pytestmark = pytest.mark.anyio

CLIENT = ClientInfo("tester", "s1")


def offer(*names: str, relisted: tuple[str, ...] = ("tools",)) -> Offer:
    tools = tuple({"name": name} for name in names)
    return Offer(CLIENT, "fs", "1.0", "Reads files.", {"tools": tools}, relisted, {"tools": tools}, "Reads files.")


class Seen:
    """A stage that writes down what it was shown, in the order stages ran."""

    def __init__(self, name: str, log: list[tuple[str, tuple[str, ...]]]) -> None:
        self.name = name
        self._log = log

    async def __call__(self, offer: Offer, offer_next: OfferNext) -> Offer:
        self._log.append((self.name, tuple(str(item["name"]) for item in offer.shown.get("tools", ()))))
        return await offer_next(offer)


class Drop:
    """A stage that withholds one tool from what is shown."""

    def __init__(self, name: str, tool: str) -> None:
        self.name = name
        self._tool = tool

    async def __call__(self, offer: Offer, offer_next: OfferNext) -> Offer:
        kept = [item for item in offer.shown["tools"] if item["name"] != self._tool]
        return await offer_next(replace(offer, shown={**offer.shown, "tools": kept}))


class Describe:
    """A stage that replaces every tool's description, and the instructions."""

    name = "screen"

    async def __call__(self, offer: Offer, offer_next: OfferNext) -> Offer:
        tools = [{**item, "description": "[checked]"} for item in offer.shown["tools"]]
        return await offer_next(replace(offer, shown={**offer.shown, "tools": tools}, instructions="[checked]"))


async def test_stages_run_in_the_declared_order_first_stage_outermost() -> None:
    log: list[tuple[str, tuple[str, ...]]] = []
    chain = compose_listings([Seen(name, log) for name in LISTING_ORDER])
    await chain(offer("read"))
    assert [name for name, _ in log] == list(LISTING_ORDER)


async def test_stages_out_of_order_or_twice_or_unknown_are_refused() -> None:
    log: list[tuple[str, tuple[str, ...]]] = []
    with pytest.raises(ValueError, match="order"):
        compose_listings([Seen("admit", log), Seen("screen", log)])
    with pytest.raises(ValueError, match="once"):
        compose_listings([Seen("screen", log), Seen("screen", log)])
    with pytest.raises(ValueError, match="among"):
        compose_listings([Seen("hide", log)])


async def test_no_stages_pass_the_offer_through_unchanged() -> None:
    given = offer("read", "write")
    assert await compose_listings([])(given) is given


async def test_a_stage_drops_an_item_and_later_stages_never_see_it() -> None:
    log: list[tuple[str, tuple[str, ...]]] = []
    chain = compose_listings([Drop("screen", "write"), Seen("admit", log)])
    settled = await chain(offer("read", "write"))
    assert [item["name"] for item in settled.shown["tools"]] == ["read"]
    assert log == [("admit", ("read",))]
    assert [item["name"] for item in settled.said["tools"]] == ["read", "write"]


async def test_a_stage_replaces_items_and_instructions() -> None:
    settled = await compose_listings([Describe()])(offer("read"))
    assert settled.shown["tools"] == [{"name": "read", "description": "[checked]"}]
    assert settled.instructions == "[checked]"
    assert settled.said_instructions == "Reads files."


class Events:
    """Session events that keep what was reported as listed."""

    def __init__(self) -> None:
        self.reported: list[tuple[str, str, list[str]]] = []

    async def refused(self, call: Call, reply: Reply) -> None:
        return None

    async def failed(self, call: Call, error: BaseException) -> None:
        return None

    async def listed(self, client: ClientInfo, server: str, kind: str, items: list[dict[str, Any]]) -> None:
        self.reported.append((server, kind, [str(item["name"]) for item in items]))


async def test_the_record_stage_reports_tools_as_shown_and_only_when_they_were_listed_anew() -> None:
    events = Events()
    chain = compose_listings([Drop("screen", "write"), RecordListings(events)])
    await chain(offer("read", "write"))
    await chain(offer("read", relisted=("prompts",)))
    assert events.reported == [("fs", "tools", ["read"])]


async def test_either_gives_the_first_reason_and_asks_no_further() -> None:
    asked: list[str] = []

    def pins(server: str, item: Mapping[str, Any]) -> Mapping[str, str] | None:
        asked.append("pins")
        return {"rule": "pins.unreviewed"} if item["name"] == "new" else None

    def policy(server: str, item: Mapping[str, Any]) -> Mapping[str, str] | None:
        asked.append("policy")
        return None

    hide = either(pins, policy)
    assert hide("fs", {"name": "new"}) == {"rule": "pins.unreviewed"}
    assert asked == ["pins"]
    assert hide("fs", {"name": "old"}) is None
    assert asked == ["pins", "pins", "policy"]


async def test_the_session_shows_what_the_stages_leave_and_pins_see_what_the_server_said() -> None:
    said: list[tuple[str, list[str]]] = []

    class Admit:
        name = "admit"

        async def __call__(self, offer: Offer, offer_next: OfferNext) -> Offer:
            said.append((offer.server, [str(item["name"]) for item in offer.said["tools"]]))
            return await offer_next(offer)

    stages: list[ListingStage] = [Drop("screen", "write"), Admit()]
    session = Session(
        {"fs": ServerConfig(command="unused")},
        GatewayConfig(),
        CLIENT,
        RecordingClient(),
        fake_connector({"fs": FakeServer("fs", ["read", "write"])}),
        client_capabilities={},
        listings=stages,
    )
    listed: Reply = {}
    async with anyio.create_task_group() as tasks:
        with anyio.fail_after(5):
            await tasks.start(session.run)
        listed = await session.handle("tools/list", None, 1)
        tasks.cancel_scope.cancel()
    assert isinstance(listed, dict)
    assert [tool["name"] for tool in listed["tools"]] == ["read"]
    assert said == [("fs", ["read", "write"])]
    assert [tool["name"] for tool in session.listing("fs", "tools")] == ["read", "write"]


async def test_a_server_coming_up_relists_its_instructions_first() -> None:
    relisted: list[tuple[str, ...]] = []

    class Screen:
        name = "screen"

        async def __call__(self, offer: Offer, offer_next: OfferNext) -> Offer:
            relisted.append(offer.relisted)
            return await offer_next(offer)

    session = Session(
        {"fs": ServerConfig(command="unused")},
        GatewayConfig(),
        CLIENT,
        RecordingClient(),
        fake_connector({"fs": FakeServer("fs", ["read"])}),
        client_capabilities={},
        listings=[Screen()],
    )
    async with anyio.create_task_group() as tasks:
        with anyio.fail_after(5):
            await tasks.start(session.run)
        tasks.cancel_scope.cancel()
    assert relisted == [(INSTRUCTIONS, "tools")]

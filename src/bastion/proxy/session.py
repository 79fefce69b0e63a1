"""A front session: one client's view of every configured server.

The session routes each client request to the server that owns it (undoing the
namespacing), runs calls through the pipeline, aggregates listings, relays what servers
send back (progress, logs, list changes, sampling, elicitation, roots) to the client that
caused it, and bridges the two protocol eras in both directions.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import anyio

from bastion.codes import INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND, SERVER_UNAVAILABLE
from bastion.config.model import GatewayConfig, ServerConfig
from bastion.errors import ConfigError, ConfigProblem, GatewayFull
from bastion.proxy.bridge import ParkedCalls
from bastion.proxy.catalog import Catalog, Hide, InvalidCursor, Listing, Namer, build_catalog, paginate
from bastion.proxy.listings import INSTRUCTIONS, ListingStage, Offer, compose_listings
from bastion.proxy.pipeline import Call, CallNext, ClientInfo, NoEvents, SessionEvents, Stage, compose
from bastion.proxy.pools import Lease, Pools, Slot
from bastion.proxy.supervisor import StateListener, Supervisor
from bastion.proxy.upstream import Connection
from bastion.transport.link import Connector
from bastion.types import Action, Decision, Era, Reply, RpcError

__all__ = ["ClientPeer", "NoClient", "Session"]

logger = logging.getLogger(__name__)

SERVER_TO_CLIENT_REQUESTS = frozenset({"sampling/createMessage", "elicitation/create", "roots/list"})
LIST_CHANGED = {
    "notifications/tools/list_changed": "tools",
    "notifications/prompts/list_changed": "prompts",
    "notifications/resources/list_changed": "resources",
}
LISTINGS = {
    "tools/list": "tools",
    "prompts/list": "prompts",
    "resources/list": "resources",
    "resources/templates/list": "resourceTemplates",
}
MAX_INPUT_ROUNDS = 10


class ClientPeer(Protocol):
    """The client side of a session, as the front transport offers it."""

    @property
    def can_request(self) -> bool:
        """Whether server-to-client requests can reach this client (not on 2026-07-28 connections)."""
        ...

    async def request(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> Reply: ...

    async def notify(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> None: ...


class NoClient:
    """A session with no client behind it (inventory, preflight): servers' requests to a client are refused."""

    @property
    def can_request(self) -> bool:
        return False

    async def request(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> Reply:
        return RpcError(METHOD_NOT_FOUND, "no client is connected while taking inventory")

    async def notify(self, method: str, params: dict[str, Any] | None, related: int | str | None) -> None:
        return None


class Session:
    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        gateway: GatewayConfig,
        client: ClientInfo,
        peer: ClientPeer,
        connector: Connector,
        *,
        client_capabilities: dict[str, Any],
        stages: Sequence[Stage] = (),
        on_state: StateListener = lambda _change: None,
        events: SessionEvents | None = None,
        hide: Hide = lambda _server, _tool: None,
        listings: Sequence[ListingStage] = (),
        pools: Pools | None = None,
    ) -> None:
        self._offer = compose_listings(listings)
        self._instructions: dict[str, str | None] = {}
        self._events: SessionEvents = events or NoEvents()
        self._client_capabilities = client_capabilities
        self._hide = hide
        self.client = client
        self.peer = peer
        self.servers = dict(servers)
        self._namer = Namer(gateway.namespace, transparent=len(servers) == 1 and not gateway.namespace_single)
        self._listings: dict[str, dict[str, Sequence[Mapping[str, Any]]]] = {kind: {} for kind in LISTINGS.values()}
        """What each server listed, through the listing stages: what clients are shown (through `hide`)."""
        self._raw: dict[str, dict[str, list[dict[str, Any]]]] = {kind: {} for kind in LISTINGS.values()}
        """What each server listed, as it said it: what pins and the inventory judge."""
        self.catalog = self._build()
        self._supervisors: dict[str, Slot] = {}
        for name, config in servers.items():
            pool = pools.get(name) if pools is not None else None
            self._supervisors[name] = (
                pool.lease(self, client.client_id, client.era, client_capabilities, self._adopt)
                if pool is not None
                else Supervisor(
                    name,
                    config,
                    connector,
                    self,
                    client_capabilities=client_capabilities,
                    on_up=self._adopt,
                    on_state=on_state,
                    backoff_max=gateway.restart_backoff_max,
                    prefer=client.era,
                )
            )
        self._pipeline: CallNext = compose(stages, self._forward)
        self._to_client: CallNext = compose(stages, self._forward_to_client)
        self._inflight: dict[str, dict[int | str, None]] = {name: {} for name in servers}
        self._progress: dict[int | str, int | str] = {}
        self._parked = ParkedCalls()
        self._tasks: anyio.abc.TaskGroup | None = None
        self.log_level: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every server; report readiness once each has had its first try at starting.

        Two servers exposing the same name is a configuration error, raised here at start-up.
        """
        await self._run(task_status, strict=True)

    async def run_lenient(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Like `run`, but collisions are left for the caller to report (for the inventory)."""
        await self._run(task_status, strict=False)

    async def _run(self, task_status: anyio.abc.TaskStatus[None], *, strict: bool) -> None:
        self._join_pools()
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                for supervisor in self._supervisors.values():
                    tasks.start_soon(supervisor.run)
                for supervisor in self._supervisors.values():
                    await supervisor.first_attempt.wait()
                if strict and self.catalog.collisions:
                    problems = [
                        ConfigProblem("gateway.namespace", c.describe(), "rename a server, or change gateway.namespace")
                        for c in self.catalog.collisions
                    ]
                    raise ConfigError(None, problems)
                task_status.started()
        finally:
            self._leave_pools()  # also when the session ends before its leases' own tasks ran

    def _join_pools(self) -> None:
        """Take this session's place on each pooled server's process, or raise `GatewayFull` having taken none."""
        leases = [slot for slot in self._supervisors.values() if isinstance(slot, Lease)]
        try:
            for lease in leases:
                lease.acquire()
        except GatewayFull:
            self._leave_pools()
            raise

    def _leave_pools(self) -> None:
        for slot in self._supervisors.values():
            if isinstance(slot, Lease):
                slot.release()

    def supervisors(self) -> Mapping[str, Slot]:
        return self._supervisors

    def start_failures(self) -> dict[str, str]:
        """Why each server that is not up after its first try is not (call once `run` has started)."""
        return {name: sup.detail for name, sup in self._supervisors.items() if sup.upstream is None}

    def listing(self, server: str, kind: str) -> list[dict[str, Any]]:
        """What one server itself listed (before screening, namespacing and filtering): tools, prompts…"""
        return list(self._raw[kind].get(server, []))

    def capabilities(self) -> dict[str, Any]:
        """What the aggregate offers the client: the union of what the servers offer."""
        merged: dict[str, Any] = {"tools": {"listChanged": True}}
        for supervisor in self._supervisors.values():
            upstream = supervisor.upstream
            if upstream is None:
                continue
            caps = upstream.capabilities
            if "prompts" in caps:
                merged["prompts"] = {"listChanged": True}
            if "resources" in caps:
                subscribe = bool(merged.get("resources", {}).get("subscribe")) or bool(
                    (caps.get("resources") or {}).get("subscribe")
                )
                merged["resources"] = {"listChanged": True, "subscribe": subscribe}
            for simple in ("completions", "logging"):
                if simple in caps:
                    merged[simple] = {}
        return merged

    def instructions(self) -> str | None:
        """Every server's instructions (as screened), labelled by server when there are several."""
        texts = {
            name: self._instructions.get(name, sup.upstream.instructions)
            for name, sup in self._supervisors.items()
            if sup.upstream is not None
        }
        parts = [f"[{name}] {text}" if len(self._supervisors) > 1 else text for name, text in texts.items() if text]
        return "\n\n".join(parts) or None

    # -- requests from the client ------------------------------------------------------------------------------

    async def handle(self, method: str, params: dict[str, Any] | None, request_id: int | str) -> Reply:
        if method == "tools/call":
            return await self._call_named(method, params, request_id, self.catalog.tool_routes, "tool")
        if method == "prompts/get":
            return await self._call_named(method, params, request_id, self.catalog.prompt_routes, "prompt")
        if method in ("resources/read", "resources/subscribe", "resources/unsubscribe"):
            return await self._call_resource(method, params, request_id)
        if method in LISTINGS:
            return self._list(LISTINGS[method], params)
        if method == "completion/complete":
            return await self._complete(params, request_id)
        if method == "ping":
            return {}
        if method == "logging/setLevel":
            return await self._set_level(params)
        return RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")

    async def failure(
        self, method: str, params: dict[str, Any] | None, request_id: int | str, error: Exception
    ) -> Reply:
        """The answer to a request the gateway failed on: logged with its traceback, recorded as
        `call.error`, and a -32603 for this request alone (each front's one error boundary calls this)."""
        logger.error("request %r (%s) failed inside the gateway", request_id, method, exc_info=error)
        name = params.get("name") if params else None
        call = Call(self.client, "", method, params, name if isinstance(name, str) else None, request_id)
        await self._events.failed(call, error)
        return RpcError(INTERNAL_ERROR, "Internal error: the gateway failed on this request (logged and recorded)")

    async def notification(self, method: str, params: dict[str, Any] | None) -> None:
        if method == "notifications/roots/list_changed":
            for supervisor in self._supervisors.values():
                if supervisor.upstream is not None:
                    await supervisor.upstream.notify(method, params)
        elif method != "notifications/initialized":
            logger.debug("client notification %s not relayed", method)

    async def _call_named(
        self, method: str, params: dict[str, Any] | None, request_id: int | str, routes: Mapping[str, Any], what: str
    ) -> Reply:
        name = params.get("name") if params else None
        if not isinstance(name, str):
            return RpcError(INVALID_PARAMS, f"Invalid params: {method} needs a {what} name")
        route = routes.get(name)
        if route is None:
            # The same answer for a hidden tool and one that does not exist; the record says which.
            refusal = RpcError(INVALID_PARAMS, f"Unknown {what}: {name}")
            await self._events.refused(self._unrouted(method, name, params, request_id), refusal)
            return refusal
        assert params is not None
        call = Call(self.client, route.server, method, {**params, "name": route.name}, route.name, request_id)
        if what == "tool":
            call.definition = route.item
            call.exposed = name
            if self.peer.can_request and "elicitation" in self._client_capabilities:
                call.ask = functools.partial(self.peer.request, related=request_id)
        return await self._chain(call)

    def _unrouted(self, method: str, name: str, params: dict[str, Any] | None, request_id: int | str) -> Call:
        """A call that matched no route: which server hid it, if one did, for the record only."""
        owner, item = next(
            (
                (server, item)
                for server in self.servers
                for item in self._raw["tools"].get(server, [])
                if name in (item.get("name"), self._namer.expose(server, str(item.get("name"))))
            ),
            ("", None),
        )
        call = Call(self.client, owner, method, params, str(item.get("name")) if item else name, request_id)
        hidden = self._hide(owner, item) if item is not None else None
        call.decision = (
            Decision.from_record(hidden)
            if hidden is not None
            else Decision(Action.DENY, "unknown", "no server offers this tool")
        )
        return call

    async def _call_resource(self, method: str, params: dict[str, Any] | None, request_id: int | str) -> Reply:
        uri = params.get("uri") if params else None
        if not isinstance(uri, str):
            return RpcError(INVALID_PARAMS, f"Invalid params: {method} needs a uri")
        route = self.catalog.route_resource(uri)
        if route is None and len(self._supervisors) == 1:
            route_server = next(iter(self._supervisors))
        elif route is None:
            return RpcError(INVALID_PARAMS, f"Unknown resource: {uri}")
        else:
            route_server = route.server
        return await self._chain(Call(self.client, route_server, method, params, uri, request_id))

    async def _complete(self, params: dict[str, Any] | None, request_id: int | str) -> Reply:
        ref = params.get("ref") if params else None
        if not isinstance(ref, dict):
            return RpcError(INVALID_PARAMS, "Invalid params: completion/complete needs a ref")
        assert params is not None
        ref_type = ref.get("type")  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
        if ref_type == "ref/prompt":
            route = self.catalog.prompt_routes.get(str(ref.get("name")))  # pyright: ignore[reportUnknownMemberType,reportUnknownArgumentType]
            if route is None:
                return RpcError(INVALID_PARAMS, f"Unknown prompt: {ref.get('name')}")  # pyright: ignore[reportUnknownMemberType]
            forwarded = {**params, "ref": {**ref, "name": route.name}}
            return await self._chain(
                Call(self.client, route.server, "completion/complete", forwarded, route.name, request_id)
            )
        if ref_type == "ref/resource":
            uri = str(ref.get("uri"))  # pyright: ignore[reportUnknownMemberType,reportUnknownArgumentType]
            route = self.catalog.route_resource(uri)
            if route is None:
                return RpcError(INVALID_PARAMS, f"Unknown resource: {uri}")
            return await self._chain(Call(self.client, route.server, "completion/complete", params, uri, request_id))
        return RpcError(INVALID_PARAMS, f"Invalid params: unknown ref type {ref_type!r}")

    async def _set_level(self, params: dict[str, Any] | None) -> Reply:
        level = params.get("level") if params else None
        if not isinstance(level, str):
            return RpcError(INVALID_PARAMS, "Invalid params: logging/setLevel needs a level")
        self.log_level = level
        for supervisor in self._supervisors.values():
            upstream = supervisor.upstream
            if upstream is None:
                continue
            upstream.log_level = level
            if upstream.era is Era.HANDSHAKE and "logging" in upstream.capabilities:
                await upstream.request("logging/setLevel", {"level": level})
        return {}

    def _list(self, kind: str, params: dict[str, Any] | None) -> Reply:
        items = {
            "tools": self.catalog.tools,
            "prompts": self.catalog.prompts,
            "resources": self.catalog.resources,
            "resourceTemplates": self.catalog.templates,
        }[kind]
        cursor = params.get("cursor") if params else None
        try:
            page = paginate(items, cursor if isinstance(cursor, str) else None)
        except InvalidCursor:
            return RpcError(INVALID_PARAMS, "Invalid params: unknown cursor")
        result: dict[str, Any] = {kind: page["items"]}
        if "nextCursor" in page:
            result["nextCursor"] = page["nextCursor"]
        return result

    # -- the terminal stages -----------------------------------------------------------------------------------

    async def _chain(self, call: Call) -> Reply:
        upstream = self._supervisors[call.server].upstream if call.server in self._supervisors else None
        if upstream is not None:
            call.server_version = str(upstream.server_info.get("version", ""))
        return await self._pipeline(call)

    async def _forward(self, call: Call) -> Reply:
        supervisor = self._supervisors[call.server]
        upstream = supervisor.upstream
        if upstream is None:
            return RpcError(SERVER_UNAVAILABLE, f"server {call.server!r} {supervisor.unavailable_reason()}")
        inflight = self._inflight[call.server]
        request_id = call.request_id if call.request_id is not None else id(call)
        inflight[request_id] = None
        token = _progress_token(call.params)
        if token is not None:
            self._progress[token] = request_id
        try:
            if self.client.era is Era.MODERN and upstream.era is Era.HANDSHAKE and self._tasks is not None:
                return await self._parked.call(
                    self._tasks, upstream.name, call.params, lambda params: upstream.request(call.method, params)
                )
            reply = await upstream.request(call.method, call.params)
            if self.client.era is Era.HANDSHAKE and _needs_input(reply):
                reply = await self._drive_input(upstream, call, reply)
            return reply
        finally:
            inflight.pop(request_id, None)
            if token is not None:
                self._progress.pop(token, None)

    async def _drive_input(self, upstream: Connection, call: Call, reply: Reply) -> Reply:
        """Bridge a 2026-07-28 server's input-required result to a handshake-era client.

        The server asks for sampling, elicitation or roots inside its result; the client
        of the older era expects those as requests. Bastion sends them, collects the
        answers, and retries the original request with them, as a modern client would.
        """
        for _round in range(MAX_INPUT_ROUNDS):
            if not _needs_input(reply):
                return reply
            assert isinstance(reply, dict)
            requests = reply.get("inputRequests") or {}
            responses: dict[str, Any] = {}
            for key, request in requests.items():
                inner = await self.server_request(upstream, str(request.get("method")), request.get("params"))
                if isinstance(inner, RpcError):
                    return inner
                responses[key] = inner
            if not requests:
                await anyio.sleep(0.05)
            params = dict(call.params or {})
            params["inputResponses"] = responses
            if reply.get("requestState") is not None:
                params["requestState"] = reply["requestState"]
            reply = await upstream.request(call.method, params)
        return RpcError(
            INTERNAL_ERROR, f"server {upstream.name!r} kept asking for input past {MAX_INPUT_ROUNDS} rounds"
        )

    async def _forward_to_client(self, call: Call) -> Reply:
        related = self._related(call.server)
        return await self.peer.request(call.method, call.params, related)

    def _related(self, server: str) -> int | str | None:
        inflight = self._inflight.get(server)
        return next(reversed(inflight), None) if inflight else None

    # -- what servers send -------------------------------------------------------------------------------------

    async def server_request(self, upstream: Connection, method: str, params: dict[str, Any] | None) -> Reply:
        if method not in SERVER_TO_CLIENT_REQUESTS:
            return RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
        if not self.peer.can_request:
            answer = await self._parked.ask(upstream.name, method, params)
            if answer is not None:
                return answer
            return RpcError(
                METHOD_NOT_FOUND,
                f"{method} cannot reach this client: it speaks the 2026-07-28 protocol, which has no server requests",
            )
        return await self._to_client(Call(self.client, upstream.name, method, params, None, None))

    async def server_notification(self, upstream: Connection, method: str, params: dict[str, Any] | None) -> None:
        if method in LIST_CHANGED:
            kind = LIST_CHANGED[method]
            await self._refresh(upstream, kind)
            await self.peer.notify(method, params, None)
            if kind == "resources":
                await self._refresh(upstream, "resourceTemplates")
        elif method == "notifications/progress":
            token = params.get("progressToken") if params else None
            related = self._progress.get(token) if isinstance(token, int | str) else None
            await self.peer.notify(method, params, related)
        elif method == "notifications/cancelled":
            logger.debug("server %s cancelled one of its own requests", upstream.name)
        else:
            await self.peer.notify(method, params, self._related(upstream.name))

    async def _adopt(self, upstream: Connection) -> None:
        """A server came up: learn what it offers, then tell the client the lists changed."""
        upstream.log_level = self.log_level
        caps = upstream.capabilities
        kinds = [("tools", "tools" in caps), ("prompts", "prompts" in caps)]
        kinds += [("resources", "resources" in caps), ("resourceTemplates", "resources" in caps)]
        relisted = [INSTRUCTIONS]
        for kind, offered in kinds:
            if offered:
                await self._fetch(upstream, kind)
                relisted.append(kind)
            else:
                self._listings[kind].pop(upstream.name, None)
                self._raw[kind].pop(upstream.name, None)
        await self._settle(upstream, tuple(relisted))

    async def _refresh(self, upstream: Connection, kind: str) -> None:
        """The server said one of its lists changed: list it again."""
        await self._fetch(upstream, kind)
        await self._settle(upstream, (kind,))

    async def _fetch(self, upstream: Connection, kind: str) -> None:
        """Every page of one list, kept as the server said it."""
        method = {v: k for k, v in LISTINGS.items()}[kind]
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _page in range(1000):
            reply = await upstream.request(method, {"cursor": cursor} if cursor else None)
            if isinstance(reply, RpcError):
                logger.warning("server %s: %s failed: %s", upstream.name, method, reply.message)
                break
            page = reply.get(kind)
            if isinstance(page, list):
                items.extend(item for item in page if isinstance(item, dict))  # pyright: ignore[reportUnknownVariableType]
            cursor = reply.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        self._raw[kind][upstream.name] = items

    async def _settle(self, upstream: Connection, relisted: tuple[str, ...]) -> None:
        """Run what was listed anew through the listing stages, keep what comes out, rebuild the catalog."""
        name = upstream.name
        kinds = [kind for kind in relisted if kind != INSTRUCTIONS]
        offer = await self._offer(
            Offer(
                self.client,
                name,
                str(upstream.server_info.get("version", "")),
                upstream.instructions,
                {kind: self._raw[kind].get(name, []) for kind in self._raw},
                relisted,
                {kind: self._raw[kind][name] for kind in kinds},
                upstream.instructions if INSTRUCTIONS in relisted else self._instructions.get(name),
                frozenset(
                    str(item.get("name"))
                    for server, listed in self._listings["tools"].items()
                    if server != name
                    for item in listed
                ),
            )
        )
        if INSTRUCTIONS in relisted:
            self._instructions[name] = offer.instructions
        for kind in kinds:
            self._listings[kind][name] = offer.shown[kind]
        self.catalog = self._build()

    def _build(self) -> Catalog:
        listing: dict[str, Listing] = {kind: dict(value) for kind, value in self._listings.items()}
        return build_catalog(
            self._namer,
            listing["tools"],
            listing["prompts"],
            listing["resources"],
            listing["resourceTemplates"],
            self._hide,
        )


def _progress_token(params: dict[str, Any] | None) -> int | str | None:
    meta = params.get("_meta") if params else None
    token = meta.get("progressToken") if isinstance(meta, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
    return token if isinstance(token, int | str) else None


def _needs_input(reply: Reply) -> bool:
    return isinstance(reply, dict) and reply.get("resultType") == "input_required"

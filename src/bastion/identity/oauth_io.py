"""The I/O edge of the OAuth resource server: the issuer's metadata, keys and introspection.

Everything here is asynchronous (httpx2, the SDK's HTTP client) and bounded by `[auth]
timeout`. A failure fails closed: tokens that need what could not be fetched are refused,
and a log line says what could not be reached. Neither tokens nor the introspection secret
are ever logged.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

import anyio
import httpx2
import orjson

from bastion.clock import Clock
from bastion.config.model import AuthConfig
from bastion.errors import ConfigError, ConfigProblem, TransportError
from bastion.identity.oauth import (
    Denial,
    Keys,
    Principal,
    Rules,
    UnknownKey,
    bastion_principal,
    check_introspection,
    check_jwt,
    looks_like_jwt,
    parse_keys,
)
from bastion.types import Secret

__all__ = ["Introspector", "IssuerKeys", "IssuerUnavailable", "TokenGate", "metadata_urls"]

logger = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 1024 * 1024
VERIFIED_CACHE_SIZE = 4096
INTROSPECTION_CACHE_SECONDS = 60.0
INTROSPECTION_CACHE_SIZE = 1024


class IssuerUnavailable(TransportError):
    """The issuer's metadata, keys or introspection endpoint could not be used (tokens that need it are refused)."""

    def __init__(self, what: str, url: str, problem: str) -> None:
        super().__init__(f"{what} at {url}: {problem}")
        self.what = what
        self.url = url
        self.problem = problem


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be: RFC 8414 §3.1 first, then OpenID Connect Discovery."""
    parts = urlsplit(issuer)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    return [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
        f"{origin}{path}/.well-known/openid-configuration",
    ]


async def _fetch_json(http: httpx2.AsyncClient, what: str, url: str, **request: Any) -> object:
    """GET (or POST, with `data`) a JSON document of at most MAX_DOCUMENT_BYTES; IssuerUnavailable if not."""
    method = "POST" if "data" in request else "GET"
    try:
        async with http.stream(method, url, follow_redirects=False, **request) as response:
            if response.status_code != 200:
                raise IssuerUnavailable(what, url, f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise IssuerUnavailable(what, url, f"larger than {MAX_DOCUMENT_BYTES} bytes")
    except httpx2.HTTPError as exc:
        raise IssuerUnavailable(what, url, type(exc).__name__) from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise IssuerUnavailable(what, url, "not JSON") from None


class IssuerKeys:
    """The issuer's signing keys: fetched when first needed and again after `jwks_max_age`, and
    once more for a key id they lack (key rotation), at most once per `jwks_cooldown`."""

    def __init__(self, http: httpx2.AsyncClient, auth: AuthConfig, clock: Clock) -> None:
        self._http = http
        self._auth = auth
        self._clock = clock
        self._jwks_url = auth.jwks_url
        self._keys: Keys | None = None
        self._fetched_at = float("-inf")
        self._tried_at = float("-inf")
        self._failure: IssuerUnavailable | None = None
        self._lock = anyio.Lock()
        self.fetches = 0
        """How many times the keys were fetched (for status and tests)."""

    async def current(self) -> Keys:
        """The keys in force; IssuerUnavailable if they cannot be had (fail closed)."""
        keys = self._keys
        if keys is not None and self._clock.monotonic() - self._fetched_at < self._auth.jwks_max_age:
            return keys
        async with self._lock:
            now = self._clock.monotonic()
            if self._keys is not None and now - self._fetched_at < self._auth.jwks_max_age:
                return self._keys
            if self._failure is not None and now - self._tried_at < self._auth.jwks_cooldown:
                raise self._failure  # the issuer failed moments ago: do not hammer it
            return await self._fetch()

    async def refreshed(self, seen: Keys) -> Keys | None:
        """The keys fetched again because `seen` lacked a token's key; None if that is rate-limited
        or fails (the failure is logged)."""
        async with self._lock:
            if self._keys is not None and self._keys is not seen:
                return self._keys  # another request fetched them meanwhile
            if self._clock.monotonic() - self._tried_at < self._auth.jwks_cooldown:
                return None
            try:
                return await self._fetch()
            except IssuerUnavailable:
                return None

    async def _fetch(self) -> Keys:
        self._tried_at = self._clock.monotonic()
        try:
            with anyio.fail_after(self._auth.timeout * 4):  # discovery may try three documents, then the keys
                url = self._jwks_url or await self._discover()
                self._jwks_url = url
                keys = self._parse(url, await _fetch_json(self._http, "the issuer's keys (JWKS)", url))
        except TimeoutError:
            self._failed(IssuerUnavailable("the issuer's keys", self._jwks_url or self._auth.issuer, "timed out"))
        except IssuerUnavailable as exc:
            self._failed(exc)
        self.fetches += 1
        self._keys, self._fetched_at, self._failure = keys, self._tried_at, None
        logger.info("fetched %d signing keys of %s from %s", len(keys), self._auth.issuer, url)
        return keys

    def _failed(self, failure: IssuerUnavailable) -> NoReturn:
        self._failure = failure
        logger.error("OAuth tokens are refused: cannot fetch %s", failure)
        raise failure

    @staticmethod
    def _parse(url: str, document: object) -> Keys:
        keys = parse_keys(document)
        if keys is None:
            raise IssuerUnavailable("the issuer's keys (JWKS)", url, 'it is not a JWKS ({"keys": [...]})')
        if not keys:
            raise IssuerUnavailable("the issuer's keys (JWKS)", url, "it lists no keys")
        return keys

    async def _discover(self) -> str:
        """`jwks_uri` from the issuer's metadata, whose `issuer` must be the configured one (RFC 8414 §3.3)."""
        problems: list[str] = []
        for url in metadata_urls(self._auth.issuer):
            try:
                document = await _fetch_json(self._http, "the issuer's metadata", url)
            except IssuerUnavailable as exc:
                problems.append(f"{url}: {exc.problem}")
                continue
            fields = cast(dict[str, Any], document) if isinstance(document, dict) else {}
            if fields.get("issuer") != self._auth.issuer:
                raise IssuerUnavailable("the issuer's metadata", url, "it names another issuer")
            jwks = fields.get("jwks_uri")
            if not isinstance(jwks, str) or not jwks.startswith(("https://", "http://")):
                raise IssuerUnavailable("the issuer's metadata", url, "it has no jwks_uri; set [auth] jwks_url")
            if jwks.startswith("http://") and not self._auth.issuer.startswith("http://"):
                raise IssuerUnavailable("the issuer's metadata", url, "its jwks_uri is not https")
            logger.info("issuer %s publishes its keys at %s", self._auth.issuer, jwks)
            return jwks
        raise IssuerUnavailable("the issuer's metadata", self._auth.issuer, "; ".join(problems))


class Introspector:
    """RFC 7662 introspection of opaque tokens, authenticated as a client with HTTP Basic.
    Active answers are kept up to a minute (never past the token's expiry), keyed by the token's hash."""

    def __init__(
        self, http: httpx2.AsyncClient, url: str, auth: AuthConfig, environ: Mapping[str, str], clock: Clock
    ) -> None:
        self._http = http
        self._url = url
        self._timeout = auth.timeout
        self._clock = clock
        self._credentials: tuple[str, Secret] | None = None
        if auth.introspection_client_id is not None and auth.introspection_secret_env is not None:
            value = environ.get(auth.introspection_secret_env)
            if not value:
                problem = f"environment variable {auth.introspection_secret_env} (the introspection secret) is not set"
                raise ConfigError(None, [ConfigProblem("auth.introspection_secret_env", problem, "set it")])
            self._credentials = (auth.introspection_client_id, Secret(value))
        self._cache: OrderedDict[str, tuple[float, Mapping[str, Any]]] = OrderedDict()

    async def __call__(self, token: str) -> Mapping[str, Any]:
        """The issuer's answer about `token`; IssuerUnavailable if there is none."""
        key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        cached = self._cache.get(key)
        if cached is not None and self._clock.now() < cached[0]:
            return cached[1]
        self._cache.pop(key, None)
        auth = None
        if self._credentials is not None:
            auth = httpx2.BasicAuth(self._credentials[0], self._credentials[1].reveal())
        data = {"token": token, "token_type_hint": "access_token"}
        headers = {"Accept": "application/json"}
        try:
            with anyio.fail_after(self._timeout):
                answer = await _fetch_json(
                    self._http, "introspection", self._url, data=data, auth=auth, headers=headers
                )
        except TimeoutError:
            raise IssuerUnavailable("introspection", self._url, "timed out") from None
        if not isinstance(answer, dict):
            raise IssuerUnavailable("introspection", self._url, "the answer is not a JSON object")
        fields = cast(dict[str, Any], answer)
        if fields.get("active") is True:
            expires = fields.get("exp")
            until = self._clock.now() + INTROSPECTION_CACHE_SECONDS
            if isinstance(expires, int | float) and not isinstance(expires, bool):
                until = min(until, float(expires))
            self._cache[key] = (until, fields)
            while len(self._cache) > INTROSPECTION_CACHE_SIZE:
                self._cache.popitem(last=False)
        return fields


class TokenGate:
    """Who a bearer token is: Bastion's own token, a JWT from the issuer, or (opaque tokens that
    are not Bastion's) the issuer's introspection answer."""

    def __init__(
        self,
        lookup: Callable[[str], str | None],
        clock: Clock,
        rules: Rules | None = None,
        keys: IssuerKeys | None = None,
        introspect: Introspector | None = None,
    ) -> None:
        self._lookup = lookup
        self._clock = clock
        self._rules = rules
        self._keys = keys
        self._introspect = introspect
        self._verified: OrderedDict[bytes, tuple[float, Keys, Principal]] = OrderedDict()
        """Token hash -> (valid until, the keys that verified it, who it is): a client sends the same
        token with every request, and checking its signature each time costs more than the rest of
        the request. An entry holds only while those keys are the ones in force."""

    async def __call__(self, token: str) -> Principal | Denial:
        if self._rules is not None and self._keys is not None and looks_like_jwt(token):
            return await self._jwt(token, self._rules, self._keys)
        client = self._lookup(token)
        if client is not None:
            return bastion_principal(client)
        if self._rules is not None and self._introspect is not None:
            return await self._introspected(token, self._rules, self._introspect)
        return Denial(
            "token.unknown", "the token is not valid (unknown, expired or revoked)", facts={"credential": "bastion"}
        )

    async def _jwt(self, token: str, rules: Rules, source: IssuerKeys) -> Principal | Denial:
        try:
            keys = await source.current()
        except IssuerUnavailable as exc:
            return _unavailable(exc, "jwt")
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        known = self._verified.get(digest)
        if known is not None and known[1] is keys and self._clock.now() < known[0]:
            self._verified.move_to_end(digest)
            return known[2]
        verdict = check_jwt(token, keys, rules, self._clock.now())
        fresh: Keys | None = None
        if isinstance(verdict, UnknownKey):
            fresh = await source.refreshed(keys)
            verdict = check_jwt(token, fresh, rules, self._clock.now()) if fresh is not None else verdict
        if isinstance(verdict, UnknownKey):
            facts = {**verdict.facts, "refetched": fresh is not None}
            return Denial(
                "token.unknown_key", "the token is signed with a key the issuer does not publish", facts=facts
            )
        if isinstance(verdict, Principal) and verdict.expires is not None:
            self._verified[digest] = (verdict.expires + rules.leeway, fresh or keys, verdict)
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return verdict

    async def _introspected(self, token: str, rules: Rules, introspect: Introspector) -> Principal | Denial:
        try:
            answer = await introspect(token)
        except IssuerUnavailable as exc:
            return _unavailable(exc, "introspection")
        return check_introspection(answer, rules, self._clock.now())


def _unavailable(exc: IssuerUnavailable, credential: str) -> Denial:
    if credential == "introspection":
        logger.error("an opaque token is refused: cannot use %s", exc)
    return Denial(
        "issuer.unavailable",
        "the authorization server cannot be reached to check the token; try again shortly",
        status=503,
        error=None,
        facts={"credential": credential, "problem": str(exc)},
    )

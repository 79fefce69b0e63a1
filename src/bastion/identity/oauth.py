"""OAuth 2.1 access tokens at the HTTP front, judged as values (the MCP authorization spec).

Pure: the issuer's keys, the rules and the moment are passed in; fetching keys, metadata and
introspection answers is `oauth_io`. A JWT is judged in this order, first failure wins:

    header      well-formed; `alg` among the configured asymmetric algorithms (never `none`, never HS*)
    key         by `kid` among the issuer's keys (unknown: the edge refetches them once, then refuses);
                the key's own `alg`, `use` and type must fit
    signature   PyJWT, with the key's algorithm bound
    claims      `iss` is the issuer, `aud` names this resource (RFC 8707), `exp` and `nbf` (and a
                future `iat`) within the leeway
    principal   the client name (`client_claim`, else `client_id`, `azp`, `sub`), the required
                scopes (403 `insufficient_scope`), and the capabilities its scopes carry

The capabilities are a ceiling, never a grant of their own: the policy still decides what the
client's configuration allows, and a tool above read whose capability the token does not
carry is hidden (`scope.<capability>`). A refusal names a stable reason and never the token.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import jwt

from bastion.config.model import AuthConfig

__all__ = [
    "CLIENT_CLAIMS",
    "Denial",
    "DenialBudget",
    "Keys",
    "Principal",
    "Rules",
    "UnknownKey",
    "bastion_principal",
    "challenge",
    "check_introspection",
    "check_jwt",
    "looks_like_jwt",
    "parse_keys",
    "protected_resource_metadata",
    "resource_metadata_url",
]

CLIENT_CLAIMS = ("client_id", "azp", "sub")
"""Where the client's name is looked for when `client_claim` is not configured, in this order."""
WELL_KNOWN = "/.well-known/oauth-protected-resource"
_MAX_NAME = 256


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an accepted bearer token speaks for."""

    client: str
    grants: frozenset[str] | None = None
    """Capabilities the token carries: a ceiling on what the client's configuration grants it.
    None: the credential does not limit them (Bastion's own tokens)."""
    credential: str = "bastion"
    """bastion (Bastion's own token), jwt, or introspection."""
    issuer: str | None = None
    subject: str | None = None
    scopes: tuple[str, ...] = ()
    expires: float | None = None
    """The token's `exp`, if it has one."""


@functools.lru_cache(maxsize=1024)
def bastion_principal(client: str) -> Principal:
    """Who a Bastion token of `client` is: a frozen value, one per client rather than one made per
    request (the token itself is still looked up on every request)."""
    return Principal(client)


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request is refused before it reaches MCP handling: what the client and the log are told."""

    reason: str
    """A stable code: token.expired, token.audience, token.scope …"""
    description: str
    """For a person, and safe in a header; never quotes the token or its claims."""
    status: int = 401
    error: str | None = "invalid_token"
    """The RFC 6750 error code: invalid_token, insufficient_scope, or None (no token, issuer down)."""
    facts: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """For the audit entry: credential, alg, kid, issuer, and the client only once the signature held."""
    scope: str | None = None
    """The scopes to ask for (insufficient_scope)."""


@dataclass(frozen=True, slots=True)
class UnknownKey:
    """The token names a key the issuer's keys (as last fetched) lack: the edge fetches them once more."""

    kid: str | None
    facts: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Keys:
    """The issuer's signing keys (a JWKS), by `kid`; keys without one are kept apart."""

    by_kid: Mapping[str, Mapping[str, Any]]
    unnamed: tuple[Mapping[str, Any], ...] = ()

    def __len__(self) -> int:
        return len(self.by_kid) + len(self.unnamed)


@dataclass(frozen=True, slots=True)
class Rules:
    """The `[auth]` settings a token is judged by, with the resource's defaults filled in."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    client_claims: tuple[str, ...] = CLIENT_CLAIMS
    scopes: Mapping[str, frozenset[str]] = field(default_factory=dict[str, frozenset[str]])
    required_scopes: tuple[str, ...] = ()
    leeway: float = 30.0

    @classmethod
    def of(cls, auth: AuthConfig, resource: str) -> Rules:
        return cls(
            issuer=auth.issuer,
            audience=auth.audience or resource,
            algorithms=auth.algorithms,
            client_claims=(auth.client_claim,) if auth.client_claim else CLIENT_CLAIMS,
            scopes={scope: frozenset(capabilities) for scope, capabilities in auth.scopes.items()},
            required_scopes=auth.required_scopes,
            leeway=auth.leeway,
        )


def looks_like_jwt(token: str) -> bool:
    """A JWS in compact form (three dot-separated parts); anything else is an opaque token."""
    return token.count(".") == 2


def parse_keys(document: object) -> Keys | None:
    """A fetched JWKS as Keys; None if it is not one (a JSON object with a `keys` list)."""
    listed = cast(dict[str, Any], document).get("keys") if isinstance(document, dict) else None
    if not isinstance(listed, list):
        return None
    by_kid: dict[str, Mapping[str, Any]] = {}
    unnamed: list[Mapping[str, Any]] = []
    for item in cast(list[Any], listed):
        if not isinstance(item, dict):
            continue
        key = cast(dict[str, Any], item)
        kid = key.get("kid")
        if isinstance(kid, str):
            by_kid.setdefault(kid, key)
        elif kid is None:
            unnamed.append(key)
    return Keys(by_kid, tuple(unnamed))


def check_jwt(token: str, keys: Keys, rules: Rules, now: float) -> Principal | Denial | UnknownKey:
    """Judge a JWT access token against the issuer's keys at `now` (seconds since the epoch)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return Denial("token.malformed", "the token is not a well-formed JWT", facts={"credential": "jwt"})
    alg, kid = header.get("alg"), header.get("kid")
    facts: dict[str, Any] = {"credential": "jwt", "alg": _short(alg)}
    if kid is not None:
        facts["kid"] = _short(kid)
    if not isinstance(alg, str) or alg not in rules.algorithms:
        accepted = ", ".join(rules.algorithms)
        return Denial(
            "token.algorithm", f"the token's signature algorithm is not accepted ({accepted} are)", facts=facts
        )
    if kid is not None and not isinstance(kid, str):
        return Denial("token.malformed", "the token's key id (kid) is not text", facts=facts)
    found = _key_for(keys, kid, alg)
    if found is None:
        return UnknownKey(kid, facts)
    if isinstance(found, Denial):
        return Denial(found.reason, found.description, facts=facts)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            jwt.PyJWK(dict(found), algorithm=alg),
            algorithms=[alg],
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError:
        return Denial("token.signature", "the token's signature does not verify", facts=facts)
    except (jwt.PyJWKError, jwt.InvalidKeyError):
        return Denial("token.key", "the issuer's key does not fit the token's algorithm", facts=facts)
    except jwt.PyJWTError:
        return Denial("token.malformed", "the token is not a well-formed JWT", facts=facts)
    # The signature held: from here on the claims are the issuer's own words.
    return _judge_claims(claims, rules, now, facts, jwt_claims=True)


def check_introspection(answer: Mapping[str, Any], rules: Rules, now: float) -> Principal | Denial:
    """Judge an RFC 7662 introspection answer about an opaque token."""
    facts: dict[str, Any] = {"credential": "introspection"}
    if answer.get("active") is not True:
        return Denial("token.inactive", "the token is not active (revoked, expired or unknown)", facts=facts)
    return _judge_claims(answer, rules, now, facts, jwt_claims=False)


def _judge_claims(
    claims: Mapping[str, Any], rules: Rules, now: float, facts: dict[str, Any], *, jwt_claims: bool
) -> Principal | Denial:
    """`iss`, `aud`, times, client and scopes; a JWT must carry `iss` and `exp`, an introspection answer may omit them."""
    issuer = claims.get("iss")
    if issuer is not None:
        facts["issuer"] = _short(issuer)
    client = _client_name(claims, rules.client_claims)
    if client is not None:
        facts["client"] = client
    if issuer != rules.issuer and (jwt_claims or issuer is not None):
        return Denial("token.issuer", "the token was not issued by this gateway's authorization server", facts=facts)
    if not _names_audience(claims.get("aud"), rules.audience):
        return Denial("token.audience", "the token was not issued for this resource (aud)", facts=facts)
    refused = _times(claims, rules.leeway, now, require_exp=jwt_claims)
    if refused is not None:
        return Denial(refused[0], refused[1], facts=facts)
    if client is None:
        wanted = " or ".join(rules.client_claims)
        return Denial("token.client", f"the token names no client ({wanted})", facts=facts)
    scopes = _scopes(claims)
    if scopes is None:
        return Denial("token.claims", "the token's scope claim is not a list of scopes", facts=facts)
    missing = [scope for scope in rules.required_scopes if scope not in scopes]
    if missing:
        return Denial(
            "token.scope",
            f"the token lacks the required scope {' '.join(missing)}",
            status=403,
            error="insufficient_scope",
            facts={**facts, "scopes": list(scopes)},
            scope=" ".join(rules.required_scopes),
        )
    grants = frozenset(capability for scope in scopes for capability in rules.scopes.get(scope, ()))
    subject = claims.get("sub")
    return Principal(
        client,
        grants,
        str(facts["credential"]),
        issuer if isinstance(issuer, str) else None,
        subject if isinstance(subject, str) else None,
        scopes,
        _number(claims.get("exp")),
    )


def _key_for(keys: Keys, kid: str | None, alg: str) -> Mapping[str, Any] | Denial | None:
    """The issuer's key for this token; None if the keys lack it (perhaps rotated since they were fetched)."""
    if kid is not None:
        key = keys.by_kid.get(kid)
        if key is None:
            return None
        return key if _fits(key, alg) else Denial("token.key", "the issuer's key does not fit the token's algorithm")
    fitting = [key for key in (*keys.by_kid.values(), *keys.unnamed) if _fits(key, alg)]
    if len(fitting) > 1:
        return Denial("token.key", "the token names no key (kid) and the issuer has several")
    return fitting[0] if fitting else None


def _fits(key: Mapping[str, Any], alg: str) -> bool:
    """A public signing key whose declared algorithm (if any) is the token's."""
    operations = key.get("key_ops")
    return (
        key.get("kty") in ("RSA", "EC", "OKP")
        and key.get("use", "sig") == "sig"
        and key.get("alg", alg) == alg
        and (operations is None or (isinstance(operations, list) and "verify" in operations))
    )


def _names_audience(aud: object, audience: str) -> bool:
    if isinstance(aud, str):
        return aud == audience
    if isinstance(aud, list):
        return audience in cast(list[object], aud)
    return False


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _times(claims: Mapping[str, Any], leeway: float, now: float, *, require_exp: bool) -> tuple[str, str] | None:
    for name in ("exp", "nbf", "iat"):
        if name in claims and _number(claims[name]) is None:
            return "token.claims", f"the token's {name} claim is not a number"
    expires = _number(claims.get("exp"))
    if expires is None and require_exp:
        return "token.claims", "the token has no expiry (exp)"
    if expires is not None and expires <= now - leeway:
        return "token.expired", "the token has expired"
    not_before = _number(claims.get("nbf"))
    if not_before is not None and not_before > now + leeway:
        return "token.not_yet_valid", "the token is not valid yet (nbf)"
    issued = _number(claims.get("iat"))
    if issued is not None and issued > now + leeway:
        return "token.not_yet_valid", "the token was issued in the future (iat)"
    return None


def _client_name(claims: Mapping[str, Any], names: Iterable[str]) -> str | None:
    for name in names:
        value = claims.get(name)
        if value is None:
            continue
        usable = isinstance(value, str) and 0 < len(value) <= _MAX_NAME and value.isprintable()
        return value if usable else None
    return None


def _scopes(claims: Mapping[str, Any]) -> tuple[str, ...] | None:
    """`scope` (space-separated, RFC 9068) and `scp` (a list, as some issuers write it); None if malformed."""
    found: list[str] = []
    for name in ("scope", "scp"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            found += value.split()
        elif isinstance(value, list) and all(isinstance(item, str) for item in cast(list[object], value)):
            found += cast(list[str], value)
        else:
            return None
    return tuple(dict.fromkeys(found))


def _short(value: object) -> str:
    """A claim or header value as it may appear in a record: text, at most 200 characters."""
    text = value if isinstance(value, str) else repr(value)
    return text[:200]


# -- what the front says about itself -------------------------------------------------------------------------


def resource_metadata_url(resource: str) -> str:
    """RFC 9728 §3.1: the well-known path inserted between the resource's host and its path."""
    parts = urlsplit(resource)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{path}"


def protected_resource_metadata(auth: AuthConfig, resource: str, name: str) -> dict[str, Any]:
    """The RFC 9728 document: this resource, its authorization server, the scopes it knows."""
    document: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": [auth.issuer],
        "bearer_methods_supported": ["header"],
        "resource_name": name,
    }
    scopes = sorted({*auth.scopes, *auth.required_scopes})
    if scopes:
        document["scopes_supported"] = scopes
    return document


def challenge(metadata_url: str | None, denial: Denial | None = None, scope: str | None = None) -> str:
    """The `WWW-Authenticate` value of a refusal (RFC 6750 §3, RFC 9728 §5.1)."""
    parts: list[str] = []
    if denial is not None and denial.error is not None:
        parts.append(f'error="{denial.error}"')
        parts.append(f'error_description="{_header_text(denial.description)}"')
    wanted = denial.scope if denial is not None and denial.scope else scope
    if wanted:
        parts.append(f'scope="{_header_text(wanted)}"')
    if metadata_url is not None:
        parts.append(f'resource_metadata="{metadata_url}"')
    return "Bearer " + (", ".join(parts) if parts else 'realm="bastion"')


def _header_text(text: str) -> str:
    """RFC 6750's error_description alphabet: printable ASCII without `"` and `\\`."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)


class DenialBudget:
    """At most `burst` refusal entries per `window` seconds, so a flood of bad tokens cannot
    flood the audit log; refusals over it are counted, and the count rides on the next entry."""

    def __init__(self, burst: int = 60, window: float = 60.0) -> None:
        self._burst = burst
        self._window = window
        self._started = float("-inf")
        self._used = 0
        self._suppressed = 0

    def take(self, now: float) -> int | None:
        """None: do not record this one; else record it, with this many suppressed before it."""
        if now - self._started >= self._window:
            self._started, self._used = now, 0
        if self._used >= self._burst:
            self._suppressed += 1
            return None
        self._used += 1
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed

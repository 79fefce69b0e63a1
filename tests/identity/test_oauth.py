"""OAuth access tokens judged as values: JWTs against the issuer's keys, introspection answers,
the challenge a refusal carries, and the ceiling a token's scopes put on what its client sees."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from bastion.config.load import parse_config
from bastion.config.model import AuthConfig
from bastion.errors import ConfigError
from bastion.identity.oauth import (
    Denial,
    DenialBudget,
    Keys,
    Principal,
    Rules,
    UnknownKey,
    challenge,
    check_introspection,
    check_jwt,
    looks_like_jwt,
    parse_keys,
    protected_resource_metadata,
    resource_metadata_url,
)
from bastion.policy.compile import compile_policy
from bastion.runtime_http import resource_uri
from bastion.types import Action

NOW = 1_800_000_000.0
ISSUER = "https://as.example"
RESOURCE = "https://bastion.example/mcp"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
AUTH = AuthConfig(
    issuer=ISSUER,
    scopes={"mcp:write": ("write",), "mcp:admin": ("write", "destructive", "exec")},
    required_scopes=("mcp:read",),
)
RULES = Rules.of(AUTH, RESOURCE)


def public_jwk(kid: str, alg: str) -> dict[str, Any]:
    if alg.startswith("RS"):
        data = RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    elif alg.startswith("ES"):
        data = ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True)
    else:
        data = OKPAlgorithm.to_jwk(ED_KEY.public_key(), as_dict=True)
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


KEYS = Keys({"rsa": public_jwk("rsa", "RS256"), "ec": public_jwk("ec", "ES256"), "ed": public_jwk("ed", "EdDSA")})


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": RESOURCE,
        "exp": NOW + 300,
        "iat": NOW - 10,
        "client_id": "agent-7",
        "sub": "user-1",
        "scope": "mcp:read",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(body: dict[str, Any], kid: str = "rsa", alg: str = "RS256") -> str:
    key = {"RS256": RSA_KEY, "ES256": EC_KEY, "EdDSA": ED_KEY}[alg]
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], body: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{b64(signature)}"


def refused(verdict: Principal | Denial | UnknownKey) -> Denial:
    assert isinstance(verdict, Denial), verdict
    return verdict


@pytest.mark.parametrize(("kid", "alg"), [("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")])
def test_a_valid_token_names_its_client_and_the_capabilities_its_scopes_carry(kid: str, alg: str) -> None:
    verdict = check_jwt(sign(claims(scope="mcp:read mcp:write"), kid, alg), KEYS, RULES, NOW)
    assert verdict == Principal(
        "agent-7", frozenset({"write"}), "jwt", ISSUER, "user-1", ("mcp:read", "mcp:write"), NOW + 300
    )


def test_a_token_without_a_mapped_scope_carries_no_capability() -> None:
    verdict = check_jwt(sign(claims()), KEYS, RULES, NOW)
    assert isinstance(verdict, Principal)
    assert verdict.grants == frozenset()


def test_the_client_is_client_id_else_azp_else_sub_unless_a_claim_is_configured() -> None:
    def client(body: dict[str, Any], rules: Rules = RULES) -> str:
        verdict = check_jwt(sign(body), KEYS, rules, NOW)
        assert isinstance(verdict, Principal)
        return verdict.client

    assert client(claims(client_id=None, azp="app")) == "app"
    assert client(claims(client_id=None)) == "user-1"
    configured = Rules.of(AUTH.model_copy(update={"client_claim": "agent"}), RESOURCE)
    assert client(claims(agent="named"), configured) == "named"
    assert refused(check_jwt(sign(claims()), KEYS, configured, NOW)).reason == "token.client"


def test_scp_lists_count_as_scopes() -> None:
    verdict = check_jwt(sign(claims(scope=None, scp=["mcp:read", "mcp:admin"])), KEYS, RULES, NOW)
    assert isinstance(verdict, Principal)
    assert verdict.grants == {"write", "destructive", "exec"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (claims(exp=NOW - 31), "token.expired"),
        (claims(nbf=NOW + 31), "token.not_yet_valid"),
        (claims(iat=NOW + 31), "token.not_yet_valid"),
        (claims(exp=None), "token.claims"),
        (claims(exp="tomorrow"), "token.claims"),
        (claims(aud="https://other.example/mcp"), "token.audience"),
        (claims(aud=None), "token.audience"),
        (claims(iss="https://evil.example"), "token.issuer"),
        (claims(iss=None), "token.issuer"),
        (claims(scope=7), "token.claims"),
    ],
)
def test_claims_outside_the_rules_are_refused_with_their_reason(body: dict[str, Any], reason: str) -> None:
    denial = refused(check_jwt(sign(body), KEYS, RULES, NOW))
    assert (denial.reason, denial.status, denial.error) == (reason, 401, "invalid_token")
    assert denial.facts["client"] == "agent-7"  # the signature held: the claims are the issuer's


def test_the_leeway_absorbs_small_clock_skew() -> None:
    assert isinstance(check_jwt(sign(claims(exp=NOW - 29, nbf=NOW + 29)), KEYS, RULES, NOW), Principal)


def test_an_audience_list_naming_this_resource_is_accepted() -> None:
    assert isinstance(check_jwt(sign(claims(aud=["https://x.example", RESOURCE])), KEYS, RULES, NOW), Principal)


def test_unsigned_and_shared_secret_tokens_are_refused_before_any_key_is_used() -> None:
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    unsigned = forged({"alg": "none", "kid": "rsa"}, claims(), None)
    confused = forged({"alg": "HS256", "kid": "rsa", "typ": "JWT"}, claims(), public_pem)
    for token in (unsigned, confused):
        denial = refused(check_jwt(token, KEYS, RULES, NOW))
        assert denial.reason == "token.algorithm"
        assert "client" not in denial.facts


def test_a_tampered_token_fails_its_signature_and_its_claims_are_not_recorded() -> None:
    header, _body, signature = sign(claims()).split(".")
    widened = b64(json.dumps(claims(scope="mcp:read mcp:admin")).encode())
    denial = refused(check_jwt(f"{header}.{widened}.{signature}", KEYS, RULES, NOW))
    assert denial.reason == "token.signature"
    assert "client" not in denial.facts


def test_an_unknown_key_asks_for_the_keys_again() -> None:
    verdict = check_jwt(sign(claims(), kid="rotated"), KEYS, RULES, NOW)
    assert isinstance(verdict, UnknownKey)
    assert verdict.kid == "rotated"


def test_a_key_must_fit_the_tokens_algorithm() -> None:
    keys = Keys({"rsa": {**public_jwk("rsa", "RS256"), "alg": "RS384"}, "ec": public_jwk("ec", "ES256")})
    assert refused(check_jwt(sign(claims(), "rsa"), keys, RULES, NOW)).reason == "token.key"
    # An RSA key that claims to be an EC one cannot verify an ES256 token.
    lying = Keys({"rsa": {**public_jwk("rsa", "RS256"), "alg": "ES256"}})
    assert refused(check_jwt(sign(claims(), "rsa", "ES256"), lying, RULES, NOW)).reason == "token.key"


def test_a_token_without_kid_uses_the_one_fitting_key_only() -> None:
    token = jwt.encode(claims(), RSA_KEY, algorithm="RS256")
    assert isinstance(check_jwt(token, Keys({}, (public_jwk("x", "RS256"),)), RULES, NOW), Principal)
    several = Keys({"a": public_jwk("a", "RS256"), "b": public_jwk("b", "RS256")})
    assert refused(check_jwt(token, several, RULES, NOW)).reason == "token.key"


def test_a_missing_required_scope_is_403_insufficient_scope_naming_the_scope() -> None:
    denial = refused(check_jwt(sign(claims(scope="mcp:write")), KEYS, RULES, NOW))
    assert (denial.status, denial.error, denial.scope) == (403, "insufficient_scope", "mcp:read")
    assert 'error="insufficient_scope"' in challenge("https://m", denial)
    assert 'scope="mcp:read"' in challenge("https://m", denial)


def test_garbage_is_malformed() -> None:
    assert refused(check_jwt("a.b.c", KEYS, RULES, NOW)).reason == "token.malformed"
    assert looks_like_jwt("a.b.c")
    assert not looks_like_jwt("bst_abc")
    assert not looks_like_jwt("a.b.c.d.e")


def test_introspection_answers_are_judged_like_claims() -> None:
    active = {"active": True, "aud": RESOURCE, "client_id": "svc", "scope": "mcp:read mcp:write", "exp": NOW + 60}
    verdict = check_introspection(active, RULES, NOW)
    assert isinstance(verdict, Principal)
    assert (verdict.client, verdict.grants, verdict.credential) == ("svc", frozenset({"write"}), "introspection")
    assert refused(check_introspection({"active": False}, RULES, NOW)).reason == "token.inactive"
    assert refused(check_introspection({**active, "aud": "https://x"}, RULES, NOW)).reason == "token.audience"
    assert refused(check_introspection({**active, "iss": "https://evil"}, RULES, NOW)).reason == "token.issuer"
    assert refused(check_introspection({**active, "exp": NOW - 60}, RULES, NOW)).reason == "token.expired"


def test_the_challenge_points_at_the_metadata_and_says_why() -> None:
    metadata = resource_metadata_url(RESOURCE)
    assert metadata == "https://bastion.example/.well-known/oauth-protected-resource/mcp"
    assert challenge(metadata) == f'Bearer resource_metadata="{metadata}"'
    assert challenge(metadata, None, "mcp:read") == f'Bearer scope="mcp:read", resource_metadata="{metadata}"'
    denial = Denial("token.expired", 'the "token" has expired')
    assert challenge(metadata, denial) == (
        f'Bearer error="invalid_token", error_description="the ?token? has expired", resource_metadata="{metadata}"'
    )
    assert challenge(None) == 'Bearer realm="bastion"'


def test_the_metadata_document_names_the_issuer_and_every_scope() -> None:
    document = protected_resource_metadata(AUTH, RESOURCE, "bastion")
    assert document["resource"] == RESOURCE
    assert document["authorization_servers"] == [ISSUER]
    assert document["scopes_supported"] == ["mcp:admin", "mcp:read", "mcp:write"]
    assert document["bearer_methods_supported"] == ["header"]


def test_the_denial_budget_counts_what_it_does_not_record() -> None:
    budget = DenialBudget(burst=2, window=10.0)
    assert [budget.take(0.0), budget.take(1.0), budget.take(2.0), budget.take(3.0)] == [0, 0, None, None]
    assert budget.take(10.0) == 2
    assert budget.take(11.0) == 0


def test_a_jwks_is_read_by_kid_and_one_that_is_not_a_jwks_is_none() -> None:
    listed = parse_keys({"keys": [public_jwk("rsa", "RS256"), {**public_jwk("x", "ES256"), "kid": None}, "junk"]})
    assert listed is not None
    assert list(listed.by_kid) == ["rsa"]
    assert len(listed) == 2
    assert parse_keys({"nope": []}) is None
    assert parse_keys([]) is None


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ('issuer = "https://as.example"\nalgorithms = ["HS256"]', "auth.algorithms"),
        ('issuer = "https://as.example"\nalgorithms = ["none"]', "auth.algorithms"),
        ('issuer = "http://as.example"', "auth.issuer"),
        ('issuer = "https://as.example"\nscopes = { "mcp:x" = ["admin"] }', "auth.scopes.mcp:x.0"),
        ('issuer = "https://as.example"\nintrospection_client_id = "x"', "auth"),
        ('issuer = "https://as.example"\nleeway = 3600', "auth.leeway"),
    ],
)
def test_auth_config_errors_name_the_field(text: str, location: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[auth]\n{text}\n")
    assert [problem.location for problem in caught.value.problems] == [location]


POLICY = compile_policy(
    parse_config(
        "[servers.files]\ncommand = 'x'\ngrants = ['write']\ntools.grant = ['purge']\n"
        "[servers.other]\ncommand = 'x'\n"
        "[clients.agent-7]\ngrants = { other = ['write'] }\n"
    )
)
WRITE_TOOL = {"name": "save", "annotations": {"readOnlyHint": False, "destructiveHint": False}}
PURGE_TOOL = {"name": "purge", "annotations": {"readOnlyHint": False, "destructiveHint": True}}
READ_TOOL = {"name": "look", "annotations": {"readOnlyHint": True}}


def decide(client: str, server: str, tool: dict[str, Any], ceiling: frozenset[str] | None) -> tuple[Action, str]:
    decision = POLICY.decide_tool(client, server, POLICY.servers[server].profile(tool), ceiling=ceiling)
    return decision.action, decision.rule


def test_a_tokens_capabilities_are_a_ceiling_never_a_grant() -> None:
    write = frozenset({"write"})
    # Read needs no scope; write needs the scope and a grant (the server's or [clients.NAME]'s).
    assert decide("anyone", "files", READ_TOOL, frozenset()) == (Action.ALLOW, "read")
    assert decide("anyone", "files", WRITE_TOOL, frozenset()) == (Action.DENY, "scope.write")
    assert decide("anyone", "files", WRITE_TOOL, write) == (Action.ALLOW, "grant.write")
    assert decide("anyone", "other", WRITE_TOOL, write) == (Action.DENY, "capability.write")
    assert decide("agent-7", "other", WRITE_TOOL, write) == (Action.ALLOW, "client.grant.write")
    assert decide("agent-7", "other", WRITE_TOOL, frozenset()) == (Action.DENY, "scope.write")
    # A per-tool grant is still bounded by the token.
    assert decide("anyone", "files", PURGE_TOOL, write) == (Action.DENY, "scope.destructive")
    assert decide("anyone", "files", PURGE_TOOL, frozenset({"destructive"})) == (Action.ALLOW, "tools.grant")
    # Bastion's own tokens carry no ceiling.
    assert decide("anyone", "files", WRITE_TOOL, None) == (Action.ALLOW, "grant.write")


def test_the_resource_defaults_to_the_listen_address_and_must_be_named_on_every_address() -> None:
    def resource(listen: str, extra: str = "") -> str:
        return resource_uri(parse_config(f'[http]\nlisten = "{listen}"\n[auth]\nissuer = "{ISSUER}"\n{extra}'))

    assert resource("127.0.0.1:8765") == "http://127.0.0.1:8765/mcp"
    assert resource("[::1]:8765") == "http://[::1]:8765/mcp"
    assert resource("0.0.0.0:8765", f'resource = "{RESOURCE}"') == RESOURCE
    with pytest.raises(ConfigError) as caught:
        resource("0.0.0.0:8765")
    assert [problem.location for problem in caught.value.problems] == ["auth.resource"]

"""Bastion's HTTP front as an OAuth 2.1 resource server, for real: `bastion serve` as a process,
a small authorization server on loopback (RFC 8414 metadata, a JWKS it rotates, RFC 7662
introspection) signing JWTs with keys from `cryptography`, and a remote MCP server that
records every header it is sent."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import subprocess
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx2
import jwt
import mcp_types as mt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from starlette.types import Receive, Scope, Send

from bastion.clock import FakeClock
from bastion.codes import INVALID_PARAMS
from bastion.config.model import AuthConfig
from bastion.identity.oauth import Denial, Principal, Rules
from bastion.identity.oauth_io import IssuerKeys, IssuerUnavailable, TokenGate
from bastion.store.sqlite import StateStore
from tests.conftest import BASTION, PYTHON, child_env
from tests.e2e.support import free_port, through_http, wait_for_port

pytestmark = [pytest.mark.e2e]

REMOTE_SECRET = "remote-server-credential"
INTROSPECTION_SECRET = "introspection-client-secret"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
ACCEPT = "application/json, text/event-stream"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Issuer:
    """A small authorization server: its metadata, its published keys, introspection of opaque tokens."""

    url: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict[str, rsa.RSAPrivateKey])
    published: list[str] = field(default_factory=list[str])
    jwks_requests: int = 0
    broken: bool = False
    opaque: dict[str, dict[str, Any]] = field(default_factory=dict[str, dict[str, Any]])
    introspection_auth: list[str] = field(default_factory=list[str])

    def add_key(self, kid: str, *, publish: bool) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        keys = [
            {**RSAAlgorithm.to_jwk(self.keys[kid].public_key(), as_dict=True), "kid": kid, "alg": "RS256", "use": "sig"}
            for kid in self.published
        ]
        return {"keys": keys}

    def claims(self, audience: str, **changes: Any) -> dict[str, Any]:
        now = time.time()
        body: dict[str, Any] = {
            "iss": self.url,
            "aud": audience,
            "exp": now + 300,
            "iat": now,
            "client_id": "reader",
            "sub": "user-1",
            "scope": "mcp:read",
        }
        body.update(changes)
        return {name: value for name, value in body.items() if value is not None}

    def sign(self, audience: str, kid: str = "k1", **changes: Any) -> str:
        return jwt.encode(self.claims(audience, **changes), self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def forge(self, header: dict[str, Any], body: dict[str, Any], secret: bytes | None) -> str:
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
        return f"{signing_input}.{b64(signature)}"

    def public_pem(self, kid: str) -> bytes:
        return (
            self.keys[kid]
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )


@contextmanager
def authorization_server() -> Generator[Issuer]:
    issuer = Issuer()
    issuer.add_key("k1", publish=True)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/oauth-authorization-server":
                self._json(
                    200,
                    {
                        "issuer": issuer.url,
                        "authorization_endpoint": f"{issuer.url}/authorize",
                        "token_endpoint": f"{issuer.url}/token",
                        "jwks_uri": f"{issuer.url}/jwks",
                        "response_types_supported": ["code"],
                    },
                )
            elif self.path == "/jwks":
                issuer.jwks_requests += 1
                if issuer.broken:
                    self._json(500, {})
                else:
                    self._json(200, issuer.jwks())
            else:
                self._json(404, {})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            issuer.introspection_auth.append(self.headers.get("Authorization", ""))
            token = parse_qs(body).get("token", [""])[0]
            self._json(200, issuer.opaque.get(token, {"active": False}))

        def _json(self, status: int, document: object) -> None:
            payload = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@dataclass
class Remote:
    url: str
    seen: list[dict[str, str]] = field(default_factory=list[dict[str, str]])
    """The headers of every request the remote server received."""


@contextmanager
def remote_server() -> Generator[Remote]:
    """A remote MCP server (the SDK's, over Streamable HTTP) that records the headers it is sent."""
    server = MCPServer("remote")

    @server.tool(annotations=mt.ToolAnnotations(read_only_hint=True))
    def echo(text: str) -> str:  # pyright: ignore[reportUnusedFunction]
        """Echo the text back, in capitals."""
        return text.upper()

    app = server.streamable_http_app()
    port = free_port()
    remote = Remote(f"http://127.0.0.1:{port}/mcp")

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            remote.seen.append({name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]})
        await app(scope, receive, send)

    running = uvicorn.Server(uvicorn.Config(recording, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        anyio.run(wait_for_port, port)
        yield remote
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@dataclass
class Gateway:
    url: str
    base: str
    home: Path
    token: str
    """Bastion's own token, for the client `tester`."""
    issuer: Issuer
    remote: Remote
    notes: Path

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/.well-known/oauth-protected-resource/mcp"

    def jwt(self, **changes: Any) -> str:
        return self.issuer.sign(self.url, **changes)


def serve(home: Path, config: Path, port: int, environ: dict[str, str], stderr: Path) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as sink:
        process = subprocess.Popen([*BASTION, "serve", "--config", str(config)], env=environ, stderr=sink)
    anyio.run(wait_for_port, port)
    return process


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("oauth")
    notes, home = root / "notes", root / "home"
    notes.mkdir()
    (notes / "n.txt").write_text("note", encoding="utf-8")
    port = free_port()
    with authorization_server() as issuer, remote_server() as remote:
        config = root / "bastion.toml"
        demo = f'command = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{notes}"]\n'
        config.write_text(
            f'[http]\nlisten = "127.0.0.1:{port}"\n'
            f'[auth]\nissuer = "{issuer.url}"\njwks_cooldown = 0\nrequired_scopes = ["mcp:read"]\n'
            f'introspection_url = "{issuer.url}/introspect"\nintrospection_client_id = "bastion-rs"\n'
            'introspection_secret_env = "TEST_INTROSPECTION_SECRET"\n'
            '[auth.scopes]\n"mcp:write" = ["write"]\n"mcp:admin" = ["write", "destructive", "exec"]\n'
            f'[servers.notes]\n{demo}fs_read = ["{notes}"]\nfs_write = ["{notes}"]\ngrants = ["write"]\n'
            f'[servers.other]\n{demo}fs_read = ["{notes}"]\n'
            f'[servers.remote]\nurl = "{remote.url}"\nbearer_token_env = "TEST_REMOTE_TOKEN"\n'
            '[clients.writer]\ngrants = { other = ["write"] }\n',
            encoding="utf-8",
        )
        home.mkdir(mode=0o700)
        store = StateStore.open(home)
        token = store.create_token("tester", 0.0, None)
        store.close()
        environ = {
            **child_env(home),
            "TEST_REMOTE_TOKEN": REMOTE_SECRET,
            "TEST_INTROSPECTION_SECRET": INTROSPECTION_SECRET,
        }
        process = serve(home, config, port, environ, root / "stderr.log")
        try:
            base = f"http://127.0.0.1:{port}"
            yield Gateway(f"{base}/mcp", base, home, token, issuer, remote, notes)
        finally:
            process.terminate()
            process.wait(timeout=15)


def post(gateway: Gateway, token: str | None) -> httpx2.Response:
    headers = {"Accept": ACCEPT}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx2.post(gateway.url, json=INITIALIZE, headers=headers, timeout=30)


def denials(home: Path) -> tuple[list[dict[str, Any]], str]:
    found = subprocess.run(
        [*BASTION, "audit", "search", "--kind", "auth.denied", "--json", "--limit", "1000"],
        env=child_env(home),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [json.loads(line) for line in found.stdout.splitlines()], found.stdout


async def tool_names(url: str, token: str, mode: str = "legacy") -> set[str]:
    async with through_http(url, token, mode) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


def test_the_metadata_is_served_and_a_request_without_a_token_is_pointed_at_it(gateway: Gateway) -> None:
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        document = httpx2.get(gateway.base + path, timeout=30).json()
        assert document["resource"] == gateway.url
        assert document["authorization_servers"] == [gateway.issuer.url]
        assert document["scopes_supported"] == ["mcp:admin", "mcp:read", "mcp:write"]
        assert document["bearer_methods_supported"] == ["header"]
    response = post(gateway, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer scope="mcp:read", resource_metadata="{gateway.metadata_url}"'
    )


def test_each_bad_token_is_refused_with_its_reason_and_recorded_without_the_token(gateway: Gateway) -> None:
    issuer, now = gateway.issuer, time.time()
    issuer.add_key("rogue", publish=False)
    valid = gateway.jwt()
    header, _body, signature = valid.split(".")
    widened = b64(json.dumps(issuer.claims(gateway.url, scope="mcp:read mcp:admin")).encode())
    cases = {
        "token.expired": gateway.jwt(exp=now - 120, iat=now - 600),
        "token.not_yet_valid": gateway.jwt(nbf=now + 600),
        "token.audience": gateway.jwt(aud="http://127.0.0.1:1/mcp"),
        "token.issuer": gateway.jwt(iss="https://impostor.example"),
        "token.algorithm": issuer.forge({"alg": "none", "kid": "k1"}, issuer.claims(gateway.url), None),
        "token.unknown_key": gateway.jwt(kid="rogue"),
        "token.signature": f"{header}.{widened}.{signature}",
        "token.scope": gateway.jwt(scope="mcp:write"),
    }
    confused = issuer.forge({"alg": "HS256", "kid": "k1"}, issuer.claims(gateway.url), issuer.public_pem("k1"))
    for reason, token in [*cases.items(), ("token.algorithm", confused)]:
        response = post(gateway, token)
        challenge = response.headers.get("www-authenticate", "")
        if reason == "token.scope":
            assert response.status_code == 403, reason
            assert 'error="insufficient_scope"' in challenge
            assert 'scope="mcp:read"' in challenge
        else:
            assert response.status_code == 401, reason
            assert 'error="invalid_token"' in challenge, reason
        assert "error_description=" in challenge
        assert f'resource_metadata="{gateway.metadata_url}"' in challenge
    entries, text = denials(gateway.home)
    assert {entry["reason"] for entry in entries} >= set(cases)
    for token in [*cases.values(), confused]:
        signature = token.rsplit(".", 1)[1]
        assert token not in text
        assert not signature or signature not in text
    expired = next(entry for entry in entries if entry["reason"] == "token.expired")
    assert (expired["status"], expired["client"], expired["credential"]) == (401, "reader", "jwt")
    forged = next(entry for entry in entries if entry["reason"] == "token.signature")
    assert "client" not in forged  # an unverified claim never names a client in the log


def test_an_unknown_key_is_refetched_then_accepted_once_the_issuer_publishes_it(gateway: Gateway) -> None:
    issuer = gateway.issuer
    issuer.add_key("k2", publish=False)
    token = gateway.jwt(kid="k2")
    before = issuer.jwks_requests
    assert post(gateway, token).status_code == 401
    assert issuer.jwks_requests == before + 1  # one refetch, then refusal
    issuer.published.append("k2")  # the issuer rotates
    assert "notes__read_note" in anyio.run(tool_names, gateway.url, token)
    assert issuer.jwks_requests == before + 2


def test_a_tokens_scopes_decide_what_its_client_sees(gateway: Gateway) -> None:
    write = "mcp:read mcp:write"
    for mode in ("legacy", "auto"):  # the handshake era, and the 2026-07-28 one
        reader = anyio.run(tool_names, gateway.url, gateway.jwt(), mode)
        assert "notes__read_note" in reader
        assert not {"notes__write_note", "other__write_note"} & reader
    # [clients.writer] grants write on `other`; the token's scope must carry write too. The same
    # client with a narrower token never lands in the wider token's session (either era).
    for mode in ("legacy", "auto"):
        wide = anyio.run(tool_names, gateway.url, gateway.jwt(client_id="writer", scope=write), mode)
        assert {"notes__write_note", "other__write_note"} <= wide
        narrow = anyio.run(tool_names, gateway.url, gateway.jwt(client_id="writer"), mode)
        assert not {"notes__write_note", "other__write_note"} & narrow
    # A scope never grants what the configuration does not: `other` grants nobody else write.
    someone = anyio.run(tool_names, gateway.url, gateway.jwt(client_id="someone", scope=write))
    assert "notes__write_note" in someone
    assert "other__write_note" not in someone

    async def write_with(token: str) -> int | None:
        async with through_http(gateway.url, token) as client:
            try:
                await client.call_tool("notes__write_note", {"path": "w.txt", "content": "written"})
            except MCPError as exc:
                return exc.error.code
            return None

    # Hidden: refused exactly like a tool that does not exist.
    assert anyio.run(write_with, gateway.jwt(client_id="sneaky")) == INVALID_PARAMS
    assert not (gateway.notes / "w.txt").exists()
    assert anyio.run(write_with, gateway.jwt(client_id="writer", scope=write)) is None
    assert (gateway.notes / "w.txt").read_text(encoding="utf-8") == "written"
    found = subprocess.run(
        [*BASTION, "audit", "search", "--kind", "call.denied", "--client", "sneaky", "--json"],
        env=child_env(gateway.home),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    [denied] = [json.loads(line) for line in found.stdout.splitlines()]
    assert denied["decision"]["rule"] == "scope.write"


def test_a_remote_server_never_sees_the_clients_token(gateway: Gateway) -> None:
    async def echo(token: str) -> str:
        async with through_http(gateway.url, token) as client:
            result = await client.call_tool("remote__echo", {"text": "hi"})
            assert isinstance(result.content[0], mt.TextContent)
            return result.content[0].text

    client_tokens = [gateway.jwt(), gateway.token]
    assert [anyio.run(echo, token) for token in client_tokens] == ["HI", "HI"]
    seen = gateway.remote.seen
    assert seen
    assert {headers.get("authorization") for headers in seen} == {f"Bearer {REMOTE_SECRET}"}
    for headers in seen:
        for token in client_tokens:
            assert all(token not in value for value in headers.values())


def test_bastions_own_and_introspected_opaque_tokens_work_alongside(gateway: Gateway) -> None:
    issuer = gateway.issuer
    assert "notes__write_note" in anyio.run(tool_names, gateway.url, gateway.token)  # no ceiling
    live = {"active": True, "aud": gateway.url, "client_id": "svc", "scope": "mcp:read", "exp": time.time() + 300}
    issuer.opaque["opaque-live"] = live
    names = anyio.run(tool_names, gateway.url, "opaque-live")
    assert "notes__read_note" in names
    assert "notes__write_note" not in names
    basic = base64.b64encode(f"bastion-rs:{INTROSPECTION_SECRET}".encode()).decode()
    assert issuer.introspection_auth[-1] == f"Basic {basic}"
    assert post(gateway, "opaque-dead").status_code == 401
    entries, text = denials(gateway.home)
    assert any(entry["reason"] == "token.inactive" for entry in entries)
    assert "opaque-dead" not in text
    assert INTROSPECTION_SECRET not in (gateway.home.parent / "stderr.log").read_text(encoding="utf-8")


def test_an_issuer_that_cannot_be_reached_fails_closed(tmp_path: Path) -> None:
    port, nowhere = free_port(), free_port()
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{port}"\n[auth]\nissuer = "http://127.0.0.1:{nowhere}"\n'
        f'[servers.notes]\ncommand = "{PYTHON}"\nargs = ["-m", "bastion.demo.server", "{tmp_path}"]\n',
        encoding="utf-8",
    )
    stderr = tmp_path / "stderr.log"
    process = serve(home, config, port, child_env(home), stderr)
    try:
        issuer = Issuer(url=f"http://127.0.0.1:{nowhere}")
        issuer.add_key("k1", publish=True)
        token = issuer.sign(f"http://127.0.0.1:{port}/mcp")
        response = httpx2.post(
            f"http://127.0.0.1:{port}/mcp",
            json=INITIALIZE,
            headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
            timeout=30,
        )
        assert response.status_code == 503
        [entry], _text = denials(home)
        assert entry["reason"] == "issuer.unavailable"
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert "OAuth tokens are refused: cannot fetch the issuer's metadata" in stderr.read_text(encoding="utf-8")


@pytest.mark.anyio
async def test_refetching_the_keys_is_rate_limited_and_a_broken_issuer_is_not_hammered(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    issuer, clock = gateway.issuer, FakeClock()
    auth = AuthConfig(issuer=issuer.url, jwks_cooldown=10, jwks_max_age=300)
    async with httpx2.AsyncClient(timeout=10) as http:
        keys = IssuerKeys(http, auth, clock)
        first = await keys.current()
        start = issuer.jwks_requests
        assert await keys.refreshed(first) is None  # within the cooldown: no refetch
        assert issuer.jwks_requests == start
        clock.advance(11)
        assert await keys.refreshed(first) is not None
        assert issuer.jwks_requests == start + 1
        issuer.broken = True
        try:
            clock.advance(301)
            with caplog.at_level(logging.ERROR), pytest.raises(IssuerUnavailable):
                await keys.current()
            with pytest.raises(IssuerUnavailable):
                await keys.current()  # moments later: refused without asking again
            assert issuer.jwks_requests == start + 2
        finally:
            issuer.broken = False
    assert "OAuth tokens are refused: cannot fetch the issuer's keys (JWKS)" in caplog.text


@pytest.mark.anyio
async def test_a_verified_token_is_remembered_only_while_it_is_valid_and_its_key_is_published(
    gateway: Gateway,
) -> None:
    issuer, clock = gateway.issuer, FakeClock()
    auth = AuthConfig(issuer=issuer.url, jwks_cooldown=0, jwks_max_age=300, leeway=5)
    issuer.add_key("k3", publish=True)
    now = clock.now()
    lasting = issuer.sign(gateway.url, kid="k3", iat=now, exp=now + 1000)
    brief = issuer.sign(gateway.url, kid="k1", iat=now, exp=now + 10)
    async with httpx2.AsyncClient(timeout=10) as http:
        gate = TokenGate(lambda _token: None, clock, Rules.of(auth, gateway.url), IssuerKeys(http, auth, clock))
        assert isinstance(await gate(lasting), Principal)
        assert isinstance(await gate(brief), Principal)
        clock.advance(16)  # past `brief`'s expiry and the leeway
        assert isinstance(await gate(lasting), Principal)
        expired = await gate(brief)
        assert isinstance(expired, Denial)
        assert expired.reason == "token.expired"
        issuer.published.remove("k3")  # the issuer retires the key
        clock.advance(300)  # the keys in force age out and are fetched again
        retired = await gate(lasting)
        assert isinstance(retired, Denial)
        assert retired.reason == "token.unknown_key"


def test_auth_with_open_access_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "bastion.toml"
    config.write_text(
        f'[http]\nlisten = "127.0.0.1:{free_port()}"\nopen = true\n[auth]\nissuer = "http://127.0.0.1:1"\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [*BASTION, "serve", "--config", str(config)],
        env=child_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "http.open" in done.stderr

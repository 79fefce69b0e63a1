"""Before a stdio server starts: its environment is the allowlist, what its config passes, and its own
secrets; how it is confined and which credential versions it got are recorded for its audit entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config.model import ServerConfig
from bastion.errors import SecretError, ServerUnavailable
from bastion.sandbox.prepare import Launcher, ServerFacts

pytestmark = pytest.mark.anyio

HOST = {"PATH": "/usr/bin:/bin", "HOME": "/home/me", "AWS_SECRET_ACCESS_KEY": "host-only", "REGION": "eu"}


def secrets(server: str) -> tuple[dict[str, str], dict[str, int]]:
    return ({"API_KEY": "k-1"}, {"API_KEY": 3}) if server == "api" else ({}, {})


def revoked(server: str) -> tuple[dict[str, str], dict[str, int]]:
    raise SecretError(server, "API_KEY", "revoked", "set it again")


def test_facts_start_with_each_servers_identity_and_record_each_launch() -> None:
    facts = ServerFacts({"api": "id-1"})
    assert facts.of("api") == {"id": "id-1"}
    facts.launched("api", {"API_KEY": 3}, "off")
    assert facts.of("api") == {"id": "id-1", "sandbox": "off", "credentials": {"API_KEY": 3}}
    facts.launched("api", {}, "bwrap (system)")
    assert facts.of("api") == {"id": "id-1", "sandbox": "bwrap (system)"}  # no stale credential versions
    assert facts.of("unknown") == {}


async def test_an_unsandboxed_server_gets_the_allowlist_its_passes_and_its_own_secrets_only() -> None:
    facts = ServerFacts()
    launcher = Launcher(HOST, facts, secrets)
    server = ServerConfig(command="/bin/true", sandbox="off", env={"MODE": "x"}, env_pass=("REGION",))
    launch = await launcher("api", server)
    assert launch.argv == ["/bin/true"]
    assert launch.env == {"PATH": "/usr/bin:/bin", "HOME": "/home/me", "REGION": "eu", "MODE": "x", "API_KEY": "k-1"}
    assert facts.of("api") == {"sandbox": "off", "credentials": {"API_KEY": 3}}
    other = await launcher("other", server)
    assert "API_KEY" not in other.env  # one server's secret is never another's


async def test_a_sandboxed_server_is_recorded_as_confined(tmp_path: Path) -> None:
    facts = ServerFacts()
    launch = await Launcher(HOST, facts)("srv", ServerConfig(command="/bin/true", fs_read=(str(tmp_path),)))
    launch.cleanup()
    assert launch.sandbox.startswith("bwrap (")
    assert facts.of("srv")["sandbox"] == launch.sandbox


async def test_a_secret_that_cannot_be_read_leaves_the_server_unavailable_and_unrecorded() -> None:
    facts = ServerFacts()
    with pytest.raises(ServerUnavailable) as refused:
        await Launcher(HOST, facts, revoked)("api", ServerConfig(command="/bin/true", sandbox="off"))
    assert refused.value.server == "api"
    assert facts.of("api") == {}

"""npx's part done outside the sandbox: the argv read as npx reads it, and its install directory."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bastion.errors import SandboxError
from bastion.sandbox.npx import NpxRequest, npm_cache, npx_directory, npx_request


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["npx", "-y", "pkg@1.2.3", "/srv"], NpxRequest(("pkg@1.2.3",), None, ("/srv",))),
        (["/usr/bin/npx", "--yes", "@s/pkg", "--flag"], NpxRequest(("@s/pkg",), None, ("--flag",))),
        (["npx", "-p", "a@1", "--package=b", "bin", "x"], NpxRequest(("a@1", "b"), "bin", ("x",))),
        (["npm", "exec", "--yes", "--", "pkg", "a"], NpxRequest(("pkg",), None, ("a",))),
        (["npm", "x", "pkg"], NpxRequest(("pkg",), None, ())),
    ],
)
def test_the_argv_is_read_as_npx_reads_it(argv: list[str], expected: NpxRequest) -> None:
    assert npx_request(argv) == expected


@pytest.mark.parametrize("argv", [["node", "x.js"], ["npm", "install"], ["python3", "-m", "npx"]])
def test_other_commands_are_not_npx(argv: list[str]) -> None:
    assert npx_request(argv) is None


@pytest.mark.parametrize("argv", [["npx"], ["npx", "-y"], ["npx", "--call", "echo hi"], ["npx", "-p"]])
def test_forms_that_cannot_run_sandboxed_are_refused_with_the_fix(argv: list[str]) -> None:
    with pytest.raises(SandboxError) as caught:
        npx_request(argv)
    assert "npx -y PKG@VERSION" in caught.value.fix


def test_the_install_directory_is_npms_own() -> None:
    # libexec: sha512 of the sorted specs joined by newlines, first 16 hex digits.
    specs = ["b@2", "a@1"]
    digest = hashlib.sha512(b"a@1\nb@2").hexdigest()[:16]
    assert npx_directory("/c", specs) == Path("/c", "_npx", digest)
    assert npx_directory("/c", ["@modelcontextprotocol/server-filesystem@2026.8.31"]).name == "68b53d3fd47bf8db"


def test_the_cache_is_npms_setting_else_the_home_default() -> None:
    assert npm_cache({"npm_config_cache": "/x", "HOME": "/h"}) == "/x"
    assert npm_cache({"HOME": "/h"}) == "/h/.npm"
    with pytest.raises(SandboxError):
        npm_cache({})

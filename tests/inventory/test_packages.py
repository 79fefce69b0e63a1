"""Packages a server's launcher runs: argv parsing, exact pins, typosquats, and registry answers."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from typing import Any

import pytest

from bastion.inventory.packages import (
    WELL_KNOWN,
    PackageLookupError,
    PackageRef,
    default_fetcher,
    default_runner,
    npm_info,
    package_ref,
    pypi_info,
    rewrite_exact,
    typosquat,
    unpinned_finding,
)

FS = "@modelcontextprotocol/server-filesystem"

# Launch argv parsing.


@pytest.mark.parametrize(
    ("argv", "name", "version", "exact", "index"),
    [
        (["npx", "-y", f"{FS}@2026.8.31", "/srv"], FS, "2026.8.31", True, 2),
        (["npx", "--yes", f"{FS}@2026.8.31"], FS, "2026.8.31", True, 2),
        (["npx", f"{FS}", "/srv"], FS, None, False, 1),
        (["npx", "-y", f"{FS}@latest", "/srv"], FS, "latest", False, 2),
        (["npx", "-y", f"{FS}@^2026.8.0"], FS, "^2026.8.0", False, 2),
        (["npx", "-y", "some-server@1.x"], "some-server", "1.x", False, 2),
        (["npx", "-y", "some-server@~1.2.3"], "some-server", "~1.2.3", False, 2),
        (["npx", "-y", "some-server@1.2"], "some-server", "1.2", False, 2),
        (["npx", "-y", "some-server@1.2.3-beta.1"], "some-server", "1.2.3-beta.1", True, 2),
        (["npx", "--package=@acme/tools@1.0.0", "acme-mcp", "--stdio"], "@acme/tools", "1.0.0", True, 1),
        (["npx", "-y", "-p", "@acme/tools@next", "acme-mcp"], "@acme/tools", "next", False, 3),
        (["/usr/local/bin/npx", "-y", "server-x@3.0.0"], "server-x", "3.0.0", True, 2),
        (["npx.cmd", "-y", "server-x@3.0.0"], "server-x", "3.0.0", True, 2),
        (["npm", "exec", "--yes", "--", "server-x@3.0.0", "--port", "1"], "server-x", "3.0.0", True, 4),
        (["npx", "--registry", "https://registry.example.test", "server-x@3.0.0"], "server-x", "3.0.0", True, 3),
    ],
)
def test_npx_specs_are_found_and_only_full_versions_are_exact(
    argv: list[str], name: str, version: str | None, exact: bool, index: int
) -> None:
    assert package_ref(argv) == PackageRef("npm", name, version, exact, index)


@pytest.mark.parametrize(
    ("argv", "name", "version", "exact", "index"),
    [
        (["uvx", "mcp-server-time"], "mcp-server-time", None, False, 1),
        (["uvx", "mcp-server-time==2026.10.19", "--local-timezone", "UTC"], "mcp-server-time", "2026.10.19", True, 1),
        (["uvx", "mcp-server-time@2026.10.19"], "mcp-server-time", "2026.10.19", True, 1),
        (["uvx", "mcp-server-time@latest"], "mcp-server-time", "latest", False, 1),
        (["uvx", "--from", "mcp-server-git==2026.1.14", "mcp-server-git"], "mcp-server-git", "2026.1.14", True, 2),
        (["uvx", "--from", "mcp-server-git>=2026.1", "mcp-server-git"], "mcp-server-git", ">=2026.1", False, 2),
        (["uvx", "--from=mcp-server-git~=2026.1", "mcp-server-git"], "mcp-server-git", "~=2026.1", False, 1),
        (["uvx", "--from", "mcp-server-git==2026.*", "mcp-server-git"], "mcp-server-git", "2026.*", False, 2),
        (["uvx", "--python", "3.12", "mcp-server-time==1.0"], "mcp-server-time", "1.0", True, 3),
        (["uvx", "--from", "mcp[cli]==1.9.0", "mcp"], "mcp", "1.9.0", True, 2),
        (["uv", "tool", "run", "mcp-server-fetch==2025.4.7"], "mcp-server-fetch", "2025.4.7", True, 3),
        (["pipx", "run", "mcp-server-fetch==2025.4.7"], "mcp-server-fetch", "2025.4.7", True, 2),
        (["pipx", "run", "mcp-server-fetch"], "mcp-server-fetch", None, False, 2),
        (["pipx", "run", "--spec", "mcp-server-git==1.0", "mcp-server-git"], "mcp-server-git", "1.0", True, 3),
    ],
)
def test_python_launcher_specs_are_found_and_only_one_version_is_exact(
    argv: list[str], name: str, version: str | None, exact: bool, index: int
) -> None:
    assert package_ref(argv) == PackageRef("pypi", name, version, exact, index)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["python", "-m", "mcp_server_time"],
        ["node", "/opt/server/index.js"],
        ["mcp-server-time"],
        ["/usr/local/bin/github-mcp-server", "stdio"],
        ["docker", "run", "-i", "ghcr.io/acme/mcp:1"],
        ["uv", "run", "server.py"],
        ["npx"],
        ["npx", "-y"],
        ["npx", "-c", "echo hi"],
        ["npx", "./local-server"],
        ["npx", "github:acme/mcp-server"],
        ["uvx", "--from", "git+https://github.com/acme/mcp", "acme-mcp"],
        ["uvx", "--from", "acme @ https://example.test/acme.whl", "acme"],
        ["pipx", "install", "mcp-server-time"],
    ],
)
def test_argv_without_a_registry_package_has_no_ref(argv: list[str]) -> None:
    assert package_ref(argv) is None


def test_an_inexact_spec_is_a_finding_and_an_exact_one_is_not() -> None:
    loose = package_ref(["npx", "-y", f"{FS}@latest"])
    exact = package_ref(["npx", "-y", f"{FS}@2026.8.31"])
    assert loose is not None
    assert exact is not None
    assert unpinned_finding(loose) is not None
    assert unpinned_finding(exact) is None


@pytest.mark.parametrize(
    ("argv", "pinned"),
    [
        (["npx", "-y", f"{FS}@latest", "/srv"], ["npx", "-y", f"{FS}@2026.8.31", "/srv"]),
        (["npx", f"{FS}"], ["npx", f"{FS}@2026.8.31"]),
        (["npx", "--package=@acme/tools@^1", "acme-mcp"], ["npx", "--package=@acme/tools@2026.8.31", "acme-mcp"]),
        (["uvx", "--from", "mcp[cli]>=1", "mcp", "run"], ["uvx", "--from", "mcp[cli]==2026.8.31", "mcp", "run"]),
        (
            ["uvx", "--from=mcp-server-git", "mcp-server-git"],
            ["uvx", "--from=mcp-server-git==2026.8.31", "mcp-server-git"],
        ),
        (
            ["uvx", "mcp-server-time", "--local-timezone", "UTC"],
            ["uvx", "mcp-server-time@2026.8.31", "--local-timezone", "UTC"],
        ),
        (["pipx", "run", "mcp-server-fetch"], ["pipx", "run", "mcp-server-fetch==2026.8.31"]),
    ],
)
def test_rewrite_exact_pins_the_spec_and_leaves_everything_else(argv: list[str], pinned: list[str]) -> None:
    ref = package_ref(argv)
    assert ref is not None
    rewritten = rewrite_exact(argv, ref, "2026.8.31")
    assert rewritten == pinned
    again = package_ref(rewritten)
    assert again is not None
    assert again.exact
    assert again.version == "2026.8.31"


def test_rewrite_exact_refuses_a_range_or_a_foreign_ref() -> None:
    argv = ["npx", "-y", f"{FS}@latest"]
    ref = package_ref(argv)
    assert ref is not None
    with pytest.raises(ValueError, match="exact"):
        rewrite_exact(argv, ref, "^1.0.0")
    with pytest.raises(ValueError, match="reference"):
        rewrite_exact(["npx", "-y", "other@1.0.0"], ref, "1.0.0")


# Typosquatting.


@pytest.mark.parametrize(
    ("name", "neighbour"),
    [
        ("@modelcontextprotocol/server-filesystm", FS),
        ("@modelcontextprotocol/server-fliesystem", FS),
        ("@modelcontextprot0col/server-filesystem", FS),
        ("@evil/server-filesystem", FS),
        ("server-filesystem", FS),
        ("mcp-server-fecth", "mcp-server-fetch"),
        ("mcp_server_git", "mcp-server-git"),
        ("mcp-server-gitt", "mcp-server-git"),
        ("mcp.server.time", "mcp-server-time"),
        ("MCP-Server-Tme", "mcp-server-time"),
    ],
)
def test_a_name_one_edit_from_a_well_known_server_is_a_typosquat(name: str, neighbour: str) -> None:
    assert typosquat(name) == neighbour


@pytest.mark.parametrize(
    "name", [*WELL_KNOWN, "left-pad", "mcp-server-kubernetes", "@modelcontextprotocol/server-map", "@acme/tools", "mcp"]
)
def test_well_known_and_unrelated_names_are_not_typosquats(name: str) -> None:
    assert typosquat(name) is None


def test_pypi_names_are_compared_after_pypi_normalisation() -> None:
    assert typosquat("mcp_server_git", launcher="pypi") is None
    assert typosquat("mcp_server_gti", launcher="pypi") == "mcp-server-git"


# Registry answers, recorded.

NPM_VIEW: dict[str, Any] = {
    "_id": "@acme/mcp-tools@1.4.2",
    "name": "@acme/mcp-tools",
    "version": "1.4.2",
    "dist-tags": {"latest": "1.4.2"},
    "time": {
        "created": "2025-01-02T03:04:05.000Z",
        "1.4.1": "2025-05-01T10:00:00.000Z",
        "1.4.2": "2025-06-01T12:00:00.000Z",
    },
    "maintainers": ["alice <alice@acme.test>", "bob <bob@acme.test>"],
    "_npmUser": "alice <alice@acme.test>",
    "scripts": {"build": "tsc", "postinstall": "node ./scripts/telemetry.js", "test": "vitest"},
    "dependencies": {"@modelcontextprotocol/sdk": "^1.30.0", "zod": "^3.25.0"},
    "optionalDependencies": {"fsevents": "^2.3.3"},
    "dist": {
        "integrity": "sha512-q83vXw0GH2LfXgS8sAmVcD1Zk0CUr0W4W1Y5cZyO3FQdJ2Tj8oyf7k3r1a1xq0HcGm1pXkYtZ8E0k5u6x5w==",
        "shasum": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
        "tarball": "https://registry.npmjs.org/@acme/mcp-tools/-/mcp-tools-1.4.2.tgz",
    },
}


class FakeNpm:
    def __init__(self, answer: Any, fail_with: PackageLookupError | None = None) -> None:
        self.answer = answer
        self.fail_with = fail_with
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        if self.fail_with is not None and "--offline" not in argv:
            raise self.fail_with
        return json.dumps(self.answer)


def test_npm_info_reads_integrity_date_publishers_scripts_and_dependencies() -> None:
    run = FakeNpm(NPM_VIEW)
    info = npm_info("@acme/mcp-tools", "1.4.2", run)
    assert run.calls == [["npm", "view", "@acme/mcp-tools@1.4.2", "--json"]]
    assert info.version == "1.4.2"
    assert info.integrity == NPM_VIEW["dist"]["integrity"]
    assert info.published == "2025-06-01T12:00:00.000Z"
    assert info.publishers == ("alice <alice@acme.test>", "bob <bob@acme.test>")
    assert dict(info.install_scripts) == {"postinstall": "node ./scripts/telemetry.js"}
    assert info.dependency_count == 3
    assert info.source == "registry"


def test_npm_info_without_a_version_asks_for_the_latest() -> None:
    run = FakeNpm(NPM_VIEW)
    assert npm_info("@acme/mcp-tools", None, run).version == "1.4.2"
    assert run.calls == [["npm", "view", "@acme/mcp-tools", "--json"]]


def test_npm_info_of_a_range_takes_the_newest_match_and_object_maintainers() -> None:
    older = {**NPM_VIEW, "version": "1.4.1", "_npmUser": {"name": "carol", "email": "carol@acme.test"}}
    newer = {**NPM_VIEW, "_npmUser": {"name": "carol", "email": "carol@acme.test"}, "maintainers": [{"name": "carol"}]}
    info = npm_info("@acme/mcp-tools", "^1.4.0", FakeNpm([older, newer]))
    assert info.version == "1.4.2"
    assert info.publishers == ("carol <carol@acme.test>", "carol")


def test_npm_info_names_a_native_build_as_an_install_script() -> None:
    answer = {"name": "native-mcp", "version": "0.1.0", "gypfile": True}
    info = npm_info("native-mcp", "0.1.0", FakeNpm(answer))
    assert "install" in info.install_scripts
    assert info.integrity is None
    assert info.dependency_count == 0


def test_npm_info_falls_back_to_the_local_cache_only_when_the_registry_is_unreachable() -> None:
    offline = FakeNpm(NPM_VIEW, PackageLookupError("npm view", "getaddrinfo ENOTFOUND", unreachable=True))
    info = npm_info("@acme/mcp-tools", "1.4.2", offline)
    assert info.source == "cache"
    assert offline.calls[-1] == ["npm", "view", "--offline", "@acme/mcp-tools@1.4.2", "--json"]
    refused = FakeNpm(NPM_VIEW, PackageLookupError("npm view", "E404 Not Found"))
    with pytest.raises(PackageLookupError):
        npm_info("@acme/mcp-tools", "1.4.2", refused)
    assert len(refused.calls) == 1


@pytest.mark.parametrize(("name", "version"), [("--registry=https://evil.test", None), ("ok", "-1"), ("a b", None)])
def test_npm_info_refuses_names_that_could_be_options(name: str, version: str | None) -> None:
    run = FakeNpm(NPM_VIEW)
    with pytest.raises(PackageLookupError):
        npm_info(name, version, run)
    assert run.calls == []


def test_npm_info_without_a_version_in_the_answer_is_an_error() -> None:
    with pytest.raises(PackageLookupError):
        npm_info("ghost", "9.9.9", FakeNpm({}))


def pypi_file(filename: str, packagetype: str, sha256: str, uploaded: str) -> dict[str, Any]:
    return {
        "filename": filename,
        "packagetype": packagetype,
        "python_version": "py3" if packagetype == "bdist_wheel" else "source",
        "digests": {"md5": "0" * 32, "sha256": sha256, "blake2b_256": "1" * 64},
        "upload_time": uploaded[:19],
        "upload_time_iso_8601": uploaded,
        "url": f"https://files.pythonhosted.org/packages/ab/cd/{filename}",
        "yanked": False,
    }


WHEEL = pypi_file(
    "mcp_server_time-2026.10.19-py3-none-any.whl", "bdist_wheel", "5c" * 32, "2026-10-19T06:48:51.554744Z"
)
SDIST = pypi_file("mcp_server_time-2026.10.19.tar.gz", "sdist", "4a" * 32, "2026-10-19T06:48:53.010816Z")
PYPI_RELEASE: dict[str, Any] = {
    "info": {
        "name": "mcp-server-time",
        "version": "2026.10.19",
        "author": None,
        "author_email": "Anthropic, PBC. <support@anthropic.test>",
        "maintainer": None,
        "maintainer_email": None,
        "requires_dist": [
            "mcp<3,>=2.3",
            "pydantic>=2.0.0",
            "tzdata>=2024.2",
            "tzlocal>=5.3.1",
            'pytest; extra == "dev"',
        ],
    },
    "urls": [SDIST, WHEEL],
    "ownership": {
        "organization": None,
        "roles": [{"role": "Owner", "user": "dsp"}, {"role": "Maintainer", "user": "cliffhall"}],
    },
}


class FakePyPI:
    def __init__(self, pages: dict[str, Any]) -> None:
        self.pages = pages
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        if url not in self.pages:
            raise PackageLookupError(url, "HTTP 404")
        return json.dumps(self.pages[url]).encode()


def test_pypi_info_reads_the_wheel_hash_upload_time_people_and_dependencies() -> None:
    fetch = FakePyPI({"https://pypi.org/pypi/mcp-server-time/2026.10.19/json": PYPI_RELEASE})
    info = pypi_info("mcp-server-time", "2026.10.19", fetch)
    assert info.version == "2026.10.19"
    assert info.integrity == "sha256:" + "5c" * 32
    assert info.published == "2026-10-19T06:48:51.554744Z"
    assert info.publishers == ("dsp (Owner)", "cliffhall (Maintainer)", "Anthropic, PBC. <support@anthropic.test>")
    assert dict(info.install_scripts) == {}
    assert info.dependency_count == 4
    assert info.source == "registry"


def test_pypi_info_without_a_version_reads_the_latest_release() -> None:
    fetch = FakePyPI({"https://pypi.org/pypi/mcp-server-time/json": PYPI_RELEASE})
    assert pypi_info("mcp-server-time", None, fetch).version == "2026.10.19"


def test_pypi_info_prefers_a_pure_wheel_over_platform_wheels() -> None:
    platform = pypi_file(
        "fast-2.0-cp311-cp311-manylinux_2_17_x86_64.whl", "bdist_wheel", "aa" * 32, "2026-01-01T00:00:00Z"
    )
    pure = pypi_file("fast-2.0-py3-none-any.whl", "bdist_wheel", "bb" * 32, "2026-01-01T00:00:01Z")
    release = {"info": {"name": "fast", "version": "2.0"}, "urls": [platform, pure]}
    fetch = FakePyPI({"https://pypi.org/pypi/fast/2.0/json": release})
    assert pypi_info("fast", "2.0", fetch).integrity == "sha256:" + "bb" * 32


def test_a_sdist_only_release_runs_setup_py_at_install() -> None:
    release = {"info": {"name": "old-mcp", "version": "0.1", "requires_dist": None}, "urls": [SDIST]}
    info = pypi_info("old-mcp", "0.1", FakePyPI({"https://pypi.org/pypi/old-mcp/0.1/json": release}))
    assert "setup.py" in info.install_scripts
    assert info.integrity == "sha256:" + "4a" * 32
    assert info.dependency_count == 0


def test_pypi_info_falls_back_to_the_project_document_for_an_older_release() -> None:
    project: dict[str, Any] = {
        "info": {**PYPI_RELEASE["info"], "version": "2026.11.1"},
        "urls": [],
        "releases": {"2026.10.19": [SDIST, WHEEL], "2026.11.1": []},
        "ownership": PYPI_RELEASE["ownership"],
    }
    fetch = FakePyPI({"https://pypi.org/pypi/mcp-server-time/json": project})
    info = pypi_info("mcp-server-time", "2026.10.19", fetch)
    assert fetch.urls == [
        "https://pypi.org/pypi/mcp-server-time/2026.10.19/json",
        "https://pypi.org/pypi/mcp-server-time/json",
    ]
    assert info.integrity == "sha256:" + "5c" * 32
    assert info.publishers == ("dsp (Owner)", "cliffhall (Maintainer)")
    assert info.dependency_count is None  # the project's info describes another release
    with pytest.raises(PackageLookupError):
        pypi_info("mcp-server-time", "1999.1.1", fetch)


@pytest.mark.parametrize(("name", "version"), [("../admin", None), ("mcp-server-time", "1.0/../../x"), ("a[b]", None)])
def test_pypi_info_refuses_names_and_versions_that_would_bend_the_url(name: str, version: str | None) -> None:
    fetch = FakePyPI({})
    with pytest.raises(PackageLookupError):
        pypi_info(name, version, fetch)
    assert fetch.urls == []


def test_the_default_fetcher_refuses_anything_but_https() -> None:
    with pytest.raises(PackageLookupError):
        default_fetcher("http://pypi.org/pypi/mcp-server-time/json")


def test_the_default_runner_reports_a_missing_program_as_unreachable() -> None:
    with pytest.raises(PackageLookupError) as raised:
        default_runner(["bastion-no-such-program-for-tests", "view"])
    assert raised.value.unreachable


# The real registries.

SRI_SHA512 = re.compile(r"sha512-[A-Za-z0-9+/]{86}==")


@pytest.mark.e2e
def test_npm_view_of_the_real_filesystem_server_gives_its_integrity() -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    info = npm_info(FS, "2026.8.31", default_runner)
    assert info.version == "2026.8.31"
    assert info.integrity is not None
    assert SRI_SHA512.fullmatch(info.integrity)
    assert info.dependency_count is not None
    assert info.dependency_count > 0


@pytest.mark.e2e
def test_pypi_of_the_real_time_server_gives_its_wheel_sha256() -> None:
    try:
        info = pypi_info("mcp-server-time", "2026.10.19", default_fetcher)
    except PackageLookupError as exc:
        if exc.unreachable:
            pytest.skip(f"PyPI is unreachable: {exc}")
        raise
    assert info.version == "2026.10.19"
    assert info.integrity is not None
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", info.integrity)
    assert dict(info.install_scripts) == {}

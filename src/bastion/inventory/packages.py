"""The package a server's launcher runs: which one, pinned or not, and what the registry says of it.

`package_ref` reads a launch argv and finds the package spec in it: `npx` / `npm exec` (npm), and
`uvx`, `uv tool run` and `pipx run` (PyPI). A spec is exact only for one full version (npm
`1.2.3` or `1.2.3-beta.1`; PyPI `==1.2.3`, `===1.2.3` or uv's `@1.2.3`); ranges, tags (`latest`,
`^1`, `1.x`, `>=1`) and a bare name are not, and `unpinned_finding` says so. Specs that are not
registry packages (paths, URLs, git) and anything else (`python -m module`, `node server.js`,
plain binaries, docker) give None: there is no registry package to pin.

`npm_info` and `pypi_info` turn a registry's answer into a `PackageInfo` for review before
adoption: version, integrity hash, release date, publishers, install scripts and the number of
direct dependencies. Their I/O is injected (`Runner`, `Fetcher`), so tests feed recorded answers.
`npm_info` asks the registry through `npm view` and falls back to npm's local cache
(`--offline`, source "cache"); `pypi_info` asks PyPI's JSON API for the release and, where an
index serves only the project document, takes the release's files from its `releases` table.

`typosquat` warns when a name is one edit (Damerau-Levenshtein 1) from a well-known MCP server,
also after removing the npm scope and treating `-`, `_` and `.` alike, so `@evil/server-memory`,
`mcp_server_git` and `mcp-server-fecth` are all caught. With `launcher="pypi"` names are first
normalised as PyPI does (PEP 503), where `mcp_server_git` *is* `mcp-server-git`.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import IO, Any

from bastion.errors import BastionError

__all__ = [
    "WELL_KNOWN",
    "Fetcher",
    "PackageInfo",
    "PackageLookupError",
    "PackageRef",
    "Runner",
    "default_fetcher",
    "default_runner",
    "npm_info",
    "package_ref",
    "pypi_info",
    "rewrite_exact",
    "typosquat",
    "unpinned_finding",
]

Runner = Callable[[Sequence[str]], str]
"""Runs an argv (no shell) and returns its stdout; raises `PackageLookupError` on failure."""
Fetcher = Callable[[str], bytes]
"""GETs an https URL and returns the body; raises `PackageLookupError` on failure."""

WELL_KNOWN: tuple[str, ...] = (
    # The reference servers listed in the README of github.com/modelcontextprotocol/servers
    # (current and archived), under the names they are published as on npm and PyPI.
    "@modelcontextprotocol/server-aws-kb-retrieval",
    "@modelcontextprotocol/server-brave-search",
    "@modelcontextprotocol/server-everart",
    "@modelcontextprotocol/server-everything",
    "@modelcontextprotocol/server-filesystem",
    "@modelcontextprotocol/server-gdrive",
    "@modelcontextprotocol/server-github",
    "@modelcontextprotocol/server-gitlab",
    "@modelcontextprotocol/server-google-maps",
    "@modelcontextprotocol/server-memory",
    "@modelcontextprotocol/server-postgres",
    "@modelcontextprotocol/server-puppeteer",
    "@modelcontextprotocol/server-redis",
    "@modelcontextprotocol/server-sequential-thinking",
    "@modelcontextprotocol/server-slack",
    "mcp-server-fetch",
    "mcp-server-git",
    "mcp-server-sentry",
    "mcp-server-sqlite",
    "mcp-server-time",
)


class PackageLookupError(BastionError):
    """A registry lookup failed; `unreachable` when no answer came (network, timeout, no client)."""

    def __init__(self, target: str, detail: str, unreachable: bool = False) -> None:
        self.target = target
        self.detail = detail
        self.unreachable = unreachable
        super().__init__(f"{target}: {detail}")


@dataclass(frozen=True, slots=True)
class PackageRef:
    launcher: str
    """"npm" or "pypi"."""
    name: str
    version: str | None
    """The version or range asked for (`1.2.3`, `^1`, `latest`, `>=1`), None for a bare name."""
    exact: bool
    argv_index: int
    """Where the spec sits in argv (possibly as `--package=SPEC` / `--from=SPEC`)."""


@dataclass(frozen=True, slots=True)
class PackageInfo:
    launcher: str
    name: str
    version: str
    integrity: str | None
    published: str | None
    publishers: tuple[str, ...]
    install_scripts: Mapping[str, str]
    dependency_count: int | None
    source: str
    """"registry" or "cache"."""


# Launch argv parsing.

_SEMVER = re.compile(r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")
_NPM_NAME = re.compile(r"(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*", re.IGNORECASE)
_PYPI_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PYPI_SPEC = re.compile(rf"(?P<name>{_PYPI_NAME})\s*(?P<extras>\[[^\]]*\])?\s*(?P<rest>.*)")
_PYPI_VERSION = re.compile(r"[A-Za-z0-9.+!_-]+")
# Options that take a value, so the value is not mistaken for the package.
_NPX_VALUED = frozenset(
    "-p --package -c --call --registry --cache --userconfig -w --workspace --prefix --loglevel --node-options".split()
)
_UV_VALUED = frozenset(
    """--from --with --with-editable --with-requirements -p --python -i --index-url --index --default-index
    --extra-index-url -f --find-links --directory --project --config-file --cache-dir --color -c --constraints
    --overrides --build-constraints --env-file --exclude-newer --resolution --prerelease --index-strategy
    --keyring-provider --link-mode -C --config-setting --refresh-package -P --upgrade-package --reinstall-package
    --no-binary-package --no-build-package --allow-insecure-host --python-platform --python-preference""".split()
)
_PIPX_VALUED = frozenset("--spec --python --pip-args --index-url -i --backend --fetch-python".split())
_NOT_REGISTRY = ("git+", "git:", "github:", "gitlab:", "bitbucket:", "gist:", "file:", "npm:", "http:", "https:")


def _program(argv0: str) -> str:
    name = re.split(r"[\\/]", argv0)[-1].lower()
    return re.sub(r"\.(cmd|exe|bat|ps1)$", "", name)


def _scan(argv: Sequence[str], start: int, valued: frozenset[str]) -> tuple[int | None, dict[str, int]]:
    """The index of the first positional in argv[start:], and where each valued option's value sits
    (the option's own index for `--opt=value`)."""
    values: dict[str, int] = {}
    i = start
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return (i + 1 if i + 1 < len(argv) else None), values
        if not arg.startswith("-"):
            return i, values
        option = arg.split("=", 1)[0]
        if option in valued:
            if "=" not in arg:
                i += 1
            if i < len(argv):
                values.setdefault(option, i)
        i += 1
    return None, values


def _spec_token(token: str) -> str:
    return token.split("=", 1)[1] if token.startswith("-") else token


def _npm_ref(spec: str, index: int) -> PackageRef | None:
    if spec.startswith(_NOT_REGISTRY) or spec.startswith((".", "/", "~")):
        return None
    at = spec.find("@", 1)
    name, version = (spec, None) if at < 0 else (spec[:at], spec[at + 1 :] or None)
    if not _NPM_NAME.fullmatch(name):
        return None
    return PackageRef("npm", name, version, version is not None and bool(_SEMVER.fullmatch(version)), index)


def _pypi_ref(spec: str, index: int) -> PackageRef | None:
    match = _PYPI_SPEC.fullmatch(spec.strip())
    if match is None or spec.startswith(_NOT_REGISTRY) or "://" in spec:
        return None
    name, rest = match["name"], match["rest"].strip()
    if not rest:
        return PackageRef("pypi", name, None, False, index)
    if rest.startswith("@"):
        version = rest[1:].strip()
        if not _PYPI_VERSION.fullmatch(version):  # `name @ https://…`: a direct reference, not the index
            return None
        return PackageRef("pypi", name, version, version != "latest", index)
    for operator in ("===", "=="):
        if rest.startswith(operator):
            version = rest[len(operator) :].strip()
            return PackageRef("pypi", name, version, bool(_PYPI_VERSION.fullmatch(version)), index)
    return PackageRef("pypi", name, rest, False, index)


def package_ref(argv: Sequence[str]) -> PackageRef | None:
    """The registry package a launch argv runs, or None when it runs no registry package."""
    argv = list(argv)
    if not argv:
        return None
    program = _program(argv[0])
    if program == "npx" or (program == "npm" and argv[1:2] in (["exec"], ["x"])):
        positional, values = _scan(argv, 1 if program == "npx" else 2, _NPX_VALUED)
        index = values.get("--package", values.get("-p"))
        if index is None and ("-c" in values or "--call" in values):
            return None  # runs a script string, not a package
        parse = _npm_ref
    elif program == "uvx" or (program == "uv" and argv[1:3] == ["tool", "run"]):
        positional, values = _scan(argv, 1 if program == "uvx" else 3, _UV_VALUED)
        index = values.get("--from")
        parse = _pypi_ref
    elif program == "pipx" and argv[1:2] == ["run"]:
        positional, values = _scan(argv, 2, _PIPX_VALUED)
        index = values.get("--spec")
        parse = _pypi_ref
    else:
        return None
    index = positional if index is None else index
    return None if index is None else parse(_spec_token(argv[index]), index)


def unpinned_finding(ref: PackageRef) -> str | None:
    """A line for a report when the launcher may run a release nobody reviewed, else None."""
    if ref.exact:
        return None
    launcher = "npx" if ref.launcher == "npm" else "the PyPI launcher"
    asked = "no version" if ref.version is None else f"{ref.version!r}"
    return (
        f"{launcher} runs {ref.name!r} without an exact version ({asked}): a new release would run unreviewed;"
        " run `bastion pin --resolve`"
    )


def rewrite_exact(argv: Sequence[str], ref: PackageRef, version: str) -> list[str]:
    """argv with the package spec pinned to `version`, everything else untouched.

    npm specs become `name@version`; PyPI specs `name[extras]==version`, except uv's positional
    target, which takes its documented exact form `name[extras]@version`.
    """
    argv = list(argv)
    if package_ref(argv) != ref:
        raise ValueError("the reference does not belong to this argv")
    token = argv[ref.argv_index]
    prefix = token.split("=", 1)[0] + "=" if token.startswith("-") else ""
    if ref.launcher == "npm":
        if not _SEMVER.fullmatch(version):
            raise ValueError(f"not an exact npm version: {version!r}")
        spec = f"{ref.name}@{version}"
    else:
        if not _PYPI_VERSION.fullmatch(version) or version == "latest":
            raise ValueError(f"not an exact PyPI version: {version!r}")
        match = _PYPI_SPEC.fullmatch(_spec_token(token).strip())
        extras = (match["extras"] or "") if match else ""
        previous = argv[ref.argv_index - 1]
        uv_target = not prefix and previous != "--from" and _program(argv[0]) in ("uvx", "uv")
        spec = f"{ref.name}{extras}{'@' if uv_target else '=='}{version}"
    argv[ref.argv_index] = prefix + spec
    return argv


# Typosquatting.


def _within_one_edit(a: str, b: str) -> bool:
    """Damerau-Levenshtein distance of at most 1 (one insertion, deletion, substitution or swap)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        swapped = i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
        return swapped or a[i + 1 :] == b[i + 1 :]
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[i + 1 :] == shorter[i:]


def _bare(name: str) -> str:
    name = name.lower()
    if name.startswith("@") and "/" in name:
        name = name.split("/", 1)[1]
    return re.sub(r"[-_.]+", "-", name)


def typosquat(name: str, launcher: str | None = None) -> str | None:
    """The well-known server `name` is one edit away from, or None (an exact match, or no neighbour)."""
    pep503 = launcher == "pypi"
    candidate = re.sub(r"[-_.]+", "-", name).lower() if pep503 else name.lower()
    known = [(re.sub(r"[-_.]+", "-", w) if pep503 else w, w) for w in WELL_KNOWN]
    if any(candidate == form for form, _ in known):
        return None
    for form, original in known:
        if _within_one_edit(candidate, form) or _within_one_edit(_bare(candidate), _bare(form)):
            return original
    return None


# Registry lookups.

_INSTALL_SCRIPTS = ("preinstall", "install", "postinstall", "prepare")


def _check(launcher: str, name: str, version: str | None) -> None:
    """Refuse what could be read as an option or a URL path before it reaches npm or a URL."""
    npm = launcher == "npm"
    good_name = bool(_NPM_NAME.fullmatch(name) if npm else re.fullmatch(_PYPI_NAME, name))
    good_version = version is None or bool(
        re.fullmatch(r"[0-9A-Za-z.+!_^~<>=*| -]+", version) if npm else _PYPI_VERSION.fullmatch(version)
    )
    if not (good_name and good_version) or (version or "").startswith("-"):
        raise PackageLookupError(f"{name} {version or ''}".strip(), f"not a valid {launcher} package name or version")


def _person(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict):
        person: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
        name, email = person.get("name"), person.get("email")
        if isinstance(name, str) and name:
            return f"{name} <{email}>" if isinstance(email, str) and email else name
    return None


def _unique(values: Sequence[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _loads(raw: str | bytes, target: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise PackageLookupError(target, f"the answer is not JSON: {exc}") from exc


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}  # pyright: ignore[reportUnknownVariableType]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []  # pyright: ignore[reportUnknownVariableType]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def npm_info(name: str, version: str | None, run: Runner) -> PackageInfo:
    """What `npm view NAME[@VERSION] --json` says; npm's local cache when the registry cannot answer."""
    _check("npm", name, version)
    spec = name if version is None else f"{name}@{version}"
    source = "registry"
    try:
        out = run(["npm", "view", spec, "--json"])
    except PackageLookupError as exc:
        if not exc.unreachable:  # the registry answered no: a cached copy may be of an unpublished release
            raise
        try:
            out, source = run(["npm", "view", "--offline", spec, "--json"]), "cache"
        except PackageLookupError:
            raise exc from None
    answer = _loads(out, spec)
    if isinstance(answer, list):  # a range matched several versions: npm lists them oldest first
        answer = answer[-1] if answer else None  # pyright: ignore[reportUnknownVariableType]
    data = _dict(answer)
    found = _str(data.get("version"))
    if found is None:
        raise PackageLookupError(spec, "npm knows no such version")
    scripts = _dict(data.get("scripts"))
    hooks = {key: str(scripts[key]) for key in _INSTALL_SCRIPTS if key in scripts}
    if data.get("gypfile") and "install" not in hooks and "preinstall" not in hooks:
        hooks["install"] = "node-gyp rebuild (implicit: the package has a binding.gyp)"
    people = [_person(data.get("_npmUser")), *(_person(m) for m in _list(data.get("maintainers")))]
    dependencies = set(_dict(data.get("dependencies"))) | set(_dict(data.get("optionalDependencies")))
    return PackageInfo(
        "npm",
        name,
        found,
        _str(_dict(data.get("dist")).get("integrity")),
        _str(_dict(data.get("time")).get(found)),
        _unique(people),
        hooks,
        len(dependencies),
        source,
    )


_PYPI = "https://pypi.org/pypi"


def _pypi_documents(name: str, version: str | None, fetch: Fetcher) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
    """(info, the release's files, the whole document) for `version`, or the latest release."""
    target = name if version is None else f"{name}=={version}"
    if version is not None:
        try:
            data = _dict(_loads(fetch(f"{_PYPI}/{name}/{version}/json"), target))
            return _dict(data.get("info")), _list(data.get("urls")), data
        except PackageLookupError as exc:
            if exc.unreachable:
                raise
    data = _dict(_loads(fetch(f"{_PYPI}/{name}/json"), target))
    info = _dict(data.get("info"))
    if version is None or info.get("version") == version:
        return info, _list(data.get("urls")), data
    files = _dict(data.get("releases")).get(version)
    if not isinstance(files, list):
        raise PackageLookupError(target, "PyPI knows no such version")
    return {"version": version}, _list(files), data  # the project's info describes another release


def pypi_info(name: str, version: str | None, fetch: Fetcher) -> PackageInfo:
    """What PyPI's JSON API says of a release: the sha256 of the file an installer would prefer
    (a pure-Python wheel, else the first wheel, else the sdist), its upload time, the project's
    owners and authors, and the number of dependencies installed without extras."""
    _check("pypi", name, version)
    info, release, data = _pypi_documents(name, version, fetch)
    found = _str(info.get("version")) or version
    files = [_dict(item) for item in release]
    wheels = [f for f in files if str(f.get("filename", "")).endswith(".whl")]
    pure = [f for f in wheels if str(f.get("filename")).endswith("-none-any.whl")]
    sdists = [f for f in files if f.get("packagetype") == "sdist"]
    chosen = (pure or wheels or sdists or [None])[0]
    if found is None or chosen is None:
        raise PackageLookupError(f"{name}=={version}", "PyPI lists no files for this release")
    sha256 = _str(_dict(chosen.get("digests")).get("sha256"))
    roles = [_dict(role) for role in _list(_dict(data.get("ownership")).get("roles"))]
    people = [f"{r['user']} ({r.get('role', 'owner')})" for r in roles if isinstance(r.get("user"), str)]
    people += [_str(info.get(k)) for k in ("author", "author_email", "maintainer", "maintainer_email")]  # pyright: ignore[reportArgumentType]
    requires = [str(dep) for dep in _list(info.get("requires_dist"))]
    count = sum(1 for dep in requires if not re.search(r"\bextra\s*==", dep)) if "requires_dist" in info else None
    return PackageInfo(
        "pypi",
        name,
        found,
        None if sha256 is None else f"sha256:{sha256}",
        _str(chosen.get("upload_time_iso_8601")) or _str(chosen.get("upload_time")),
        _unique(people),
        {} if chosen in wheels else {"setup.py": "runs at install (sdist only)"},
        count,
        "registry",
    )


def _printable(text: str, limit: int = 300) -> str:
    return "".join(c if c.isprintable() else "?" for c in text.strip())[:limit]


_NETWORK_CODES = ("ENOTFOUND", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH")


def default_runner(argv: Sequence[str]) -> str:
    """Run argv without a shell (30 s at most) and return its stdout."""
    target = " ".join(argv)
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PackageLookupError(target, "no answer within 30 s", unreachable=True) from exc
    except OSError as exc:
        raise PackageLookupError(target, f"cannot run {argv[0]!r}: {exc.strerror or exc}", unreachable=True) from exc
    if done.returncode != 0:
        output = f"{done.stdout}\n{done.stderr}"
        lines = [line for line in done.stderr.splitlines() if line.strip() and "warn" not in line[:12]]
        detail = _printable(lines[-1] if lines else f"exit status {done.returncode}")
        raise PackageLookupError(target, detail, unreachable=any(code in output for code in _NETWORK_CODES))
    return done.stdout


class _HttpsOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not newurl.startswith("https://"):
            raise urllib.error.HTTPError(newurl, code, "refusing a redirect away from https", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_MAX_BODY = 64 * 1024 * 1024


def default_fetcher(url: str) -> bytes:
    """GET an https URL (30 s timeout, https redirects only, 64 MiB at most)."""
    if not url.startswith("https://"):
        raise PackageLookupError(url, "only https URLs are fetched")
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "bastion-mcp-gateway"})  # noqa: S310 -- https checked above
    try:
        with urllib.request.build_opener(_HttpsOnly).open(request, timeout=30) as response:
            body: bytes = response.read(_MAX_BODY + 1)
    except urllib.error.HTTPError as exc:
        raise PackageLookupError(url, f"HTTP {exc.code}", unreachable=exc.code >= 500 or exc.code == 429) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise PackageLookupError(url, f"cannot reach: {getattr(exc, 'reason', exc)}", unreachable=True) from exc
    if len(body) > _MAX_BODY:
        raise PackageLookupError(url, "the answer is larger than 64 MiB")
    return body

"""Path arguments: may this tool call touch this path?

Bastion checks a call's path arguments (the filesystem server's `read_file {path}`,
`read_multiple_files {paths}`) before the server sees them. `check_path` reads the value the
ways a server might and allows it only when *every* reading passes:

* the raw string, its percent-decodings (repeatedly, so `%252e` → `%2e` → `.`) and its NFC,
  NFD, NFKC and NFKD normalisations (fullwidth dots and solidus, U+FF0E U+FF0E U+FF0F, are
  `../` under NFKC), combined. When only a derived reading fails, the refusal is
  `paths.encoded` or `paths.unicode_form`.
  A file literally named `%2e%2e` is therefore refused: the price of not guessing.
* `file:///abs` and `file://localhost/abs` mean `/abs` (percent-decoded); a URI naming any
  other host is another machine's share (`paths.unc`).
* A backslash anywhere, or a drive letter (`C:`, `c:/`, `C:\\`), is a Windows form
  (`paths.windows_form`): this gateway and its servers are POSIX, where such a path means
  something other than what its author meant (the pinned Node server refuses drive letters
  too). `C:name` without a separator is an ordinary POSIX file name. `//server/share` is
  `/server/share` on POSIX (Node folds the slashes too) and is checked as such.
* `~` and `~/…` are the server's home (`PathRules.home`); `~user/…` is refused, and so is
  any `~` when no home is known (`paths.tilde`). The Node server would take `~user`
  literally; other servers expand it, so it is refused rather than guessed.
* Relative paths are joined to `PathRules.base`. The Node filesystem server resolves them
  against its first allowed directory, so the caller passes that as `base` for it.

Three spellings of the result must lie inside a root (whole components: `/srv/data2` is not
inside `/srv/data`; a root is inside itself): the *lexical* path (`.`, `..` and repeated
separators folded — what the Node server checks and opens); its `realpath` (symlinks
followed, dangling ones and those among the parents included); and the `realpath` of the
unfolded path, which is what the kernel does with `link/..`. The lexical check means a path
that leaves the roots and comes back through a symlink is refused, and that a root reached
through an alias (`/tmp` → `/private/tmp` on macOS) must be spelled resolved, as the Node
server demands too.

Finally no component of those paths may match a denied name (`DEFAULT_DENIED_NAMES` unless
the rules say otherwise), compared case-insensitively and also with trailing dots and spaces
stripped (Windows drops them: `.env.` is `.env`). A pattern with a `/` (`.git/config`)
matches consecutive components. The roots' own components count: to grant `~/.aws`,
narrow `denied_names`. `.envrc` is denied (direnv files export secrets); look-alikes such as
`.envrc-notes`, `env.txt` and `my.environment` match nothing and are allowed.

Limits. The filesystem is read at one moment: a symlink created or swapped between this
check and the server's open (time-of-check/time-of-use) is not seen; the sandbox, which
shows the server only its roots, closes that gap. Hard links are not symlinks: a hard link
inside a root to a file outside it is allowed. Case-insensitive filesystems may reach a root
through another spelling, which the lexical check refuses (fail closed). Windows-only forms
(alternate data streams, 8.3 names, device names) are out of scope on this POSIX gateway.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote

from bastion.policy.refusal import Refusal, quote

__all__ = ["DEFAULT_DENIED_NAMES", "PathRules", "check_path", "check_paths", "resolve_root"]

DEFAULT_DENIED_NAMES: tuple[str, ...] = (
    ".env", ".env.*", ".envrc", ".ssh", ".gnupg", ".aws", ".azure", ".config/gcloud", ".kube/config",
    ".docker/config.json", ".git/config", ".git-credentials", ".netrc", "_netrc", ".npmrc", ".pypirc",
    ".pgpass", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.pem", "*.key", "*.p12", "*.pfx",
)  # fmt: skip

_FORMS = ("NFC", "NFD", "NFKC", "NFKD")
_MAX_READINGS = 64  # a benign path has at most a handful; more is an encoding bomb
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PERCENT = re.compile("%[0-9A-Fa-f]{2}")
_DRIVE = re.compile(r"[A-Za-z]:(?:[\\/]|$)")

Realpath = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class PathRules:
    """Where one server's path arguments may point.

    Roots are absolute and already resolved (`resolve_root`, once at start-up). Write roots are
    readable too. `base` is the server's working directory for relative paths; `home` is what
    the server expands a leading `~` to (None: a leading `~` is refused).
    """

    read_roots: tuple[str, ...]
    write_roots: tuple[str, ...]
    denied_names: tuple[str, ...] = DEFAULT_DENIED_NAMES
    base: str = "/"
    home: str | None = None


def resolve_root(root: str, home: str | None = None) -> str:
    """A configured root as `check_path` compares it: `~` expanded, absolute, symlinks resolved.

    `home` is the server's `~` (default: ours). Reads the filesystem; call it once per root.
    """
    if not root:
        raise ValueError("a root must be a non-empty path")
    if home is not None and (root == "~" or root.startswith("~/")):
        root = home + root[1:]
    return os.path.realpath(os.path.expanduser(root))


def check_path(raw: object, rules: PathRules, *, write: bool, realpath: Realpath = os.path.realpath) -> Refusal | None:
    """None if `raw` is a path the call may use (for writing if `write`), else why not."""
    if not isinstance(raw, str):
        return Refusal("paths.not_text", f"a path must be text, not {type(raw).__name__}")
    if not raw:
        return Refusal("paths.empty", "the path is empty")
    if _CONTROL.search(raw):
        return Refusal("paths.control_character", f"{quote(raw)} contains a control character")
    kind = "writable" if write else "readable"
    roots = rules.write_roots if write else (*rules.read_roots, *rules.write_roots)
    if not roots:
        grant = "fs_write" if write else "fs_read"
        return Refusal("paths.no_roots", f"this server has no {kind} roots: grant it {grant} to allow paths")
    readings = _readings(raw)
    if readings is None:
        return Refusal("paths.encoded", f"{quote(raw)} is percent-encoded too many times to check")
    exact = {_fold(root) for root in roots}
    # A normalised reading may sit in the normalised spelling of a root: NFC and NFD name the same text.
    equivalent = exact | {unicodedata.normalize(form, root) for root in exact for form in ("NFC", "NFD")}
    for text, derived in readings:
        refusal = _check_reading(text, rules, equivalent if derived else exact, kind, realpath)
        if refusal is None:
            continue
        if derived == "encoded":
            return Refusal("paths.encoded", f"{quote(raw)} is percent-encoded; decoded, {refusal.reason}")
        if derived == "unicode_form":
            return Refusal("paths.unicode_form", f"{quote(raw)} changes under Unicode normalisation: {refusal.reason}")
        return refusal
    return None


def check_paths(
    values: object, rules: PathRules, *, write: bool, realpath: Realpath = os.path.realpath
) -> Refusal | None:
    """`check_path` for a string or a list of them (`read_multiple_files {paths}`): None if all pass."""
    if isinstance(values, str):
        return check_path(values, rules, write=write, realpath=realpath)
    if not isinstance(values, list):
        return Refusal("paths.not_text", f"paths must be text or a list of text, not {type(values).__name__}")
    for index, value in enumerate(cast(list[object], values)):
        refusal = check_path(value, rules, write=write, realpath=realpath)
        if refusal is not None:
            return Refusal(refusal.rule, f"path {index + 1}: {refusal.reason}")
    return None


def _readings(raw: str) -> list[tuple[str, str]] | None:
    """Every reading of `raw` with how it was derived ("", "unicode_form", "encoded"), raw first.

    The closure under percent-decoding and the four normal forms; None past `_MAX_READINGS`.
    """
    seen: dict[str, str] = {raw: ""}
    queue = [raw]
    while queue:
        text = queue.pop(0)
        derived = seen[text]
        steps = [(unicodedata.normalize(form, text), derived or "unicode_form") for form in _FORMS]
        if _PERCENT.search(text):
            steps.append((unquote(text, errors="replace"), "encoded"))
        for new, how in steps:
            if new not in seen:
                if len(seen) >= _MAX_READINGS:
                    return None
                seen[new] = how
                queue.append(new)
    return list(seen.items())


def _check_reading(text: str, rules: PathRules, roots: set[str], kind: str, realpath: Realpath) -> Refusal | None:
    """The checks for one reading: its form, then the roots, then the denied names."""
    if _CONTROL.search(text):
        return Refusal("paths.control_character", f"{quote(text)} contains a control character")
    path = text
    if path[:7].lower() == "file://":
        host, _, rest = path[7:].partition("/")
        if host.lower() not in ("", "localhost"):
            return Refusal("paths.unc", f"{quote(text)} names a file on another machine ({quote(host)})")
        path = "/" + unquote(rest, errors="replace")
        if _CONTROL.search(path):
            return Refusal("paths.control_character", f"{quote(text)} decodes to a control character")
        if _DRIVE.match(path[1:]):
            return Refusal("paths.windows_form", f"{quote(text)} is a Windows drive path; this gateway is POSIX")
    if "\\" in path or _DRIVE.match(path):
        return Refusal("paths.windows_form", f"{quote(text)} is a Windows path form; use POSIX '/' paths")
    if path.startswith("~"):
        head, _, tail = path.partition("/")
        if head != "~":
            return Refusal("paths.tilde", f"{quote(text)} names another user's home; use an absolute path")
        if rules.home is None:
            return Refusal("paths.tilde", f"{quote(text)} starts with '~' but this server's home is unknown")
        path = rules.home + "/" + tail
    joined = path if path.startswith("/") else rules.base + "/" + path
    lexical = _fold(joined)
    if not _inside(lexical, roots):
        said = "is" if lexical == text else f"means {quote(lexical)},"
        return Refusal("paths.outside_roots", f"{quote(text)} {said} outside the {kind} roots")
    unfolded = _fold_slashes(joined)
    try:
        first = _realpath_below(lexical, roots) if realpath is os.path.realpath else realpath(lexical)
        resolved = {_fold(first)}
        if unfolded != lexical:
            resolved.add(_fold(realpath(unfolded)))
    except (OSError, ValueError) as error:
        return Refusal("paths.unresolvable", f"{quote(text)} cannot be resolved ({type(error).__name__})")
    for target in sorted(resolved):
        if not _inside(target, roots):
            return Refusal(
                "paths.outside_roots", f"{quote(text)} resolves to {quote(target)}, outside the {kind} roots"
            )
    for candidate in sorted({lexical, *resolved}):
        hit = _denied(candidate, rules.denied_names)
        if hit is not None:
            part, pattern = hit
            return Refusal(
                "paths.denied_name", f"{quote(text)} reaches {quote(part)}, a denied name ({quote(pattern)})"
            )
    return None


def _realpath_below(path: str, roots: set[str]) -> str:
    """`os.path.realpath` of a path already lexically inside a resolved root, with fewer system calls.

    Only the components below the root are looked at (and the root itself, in case it was
    swapped for a link since start-up); at the first symlink the full `realpath` takes over.
    A component that does not exist ends the walk: nothing below it can be a link.
    """
    root = max((r for r in roots if path == r or path.startswith(r.rstrip("/") + "/")), key=len)
    current = root.rstrip("/")
    for part in [root.rstrip("/") or "/", *path[len(root) :].split("/")]:
        if not part:
            continue
        current = part if part.startswith("/") else f"{current}/{part}"
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return path
        if stat.S_ISLNK(mode):
            return os.path.realpath(path)
    return path


def _fold(path: str) -> str:
    """An absolute path with `.`, `..` and repeated separators folded, lexically (`..` stops at `/`)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def _fold_slashes(path: str) -> str:
    """Only repeated separators folded (`//x` is `/x` on Linux); `..` is left for the resolver."""
    return re.sub("/+", "/", path)


def _inside(path: str, roots: set[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _denied(path: str, patterns: tuple[str, ...]) -> tuple[str, str] | None:
    """The first (components, pattern) of `path` matching a denied pattern, or None."""
    parts = [part for part in path.split("/") if part]
    stripped = [name.rstrip(". ") for name in parts]
    variants = [parts] if stripped == parts else [parts, stripped]
    for width, combined, singles in _matchers(patterns):
        for names in variants:
            for start in range(len(names) - width + 1):
                text = "/".join(names[start : start + width]).casefold()
                if combined.match(text) is None:
                    continue
                pattern = next(pattern for pattern, single in singles if single.match(text))
                return "/".join(parts[start : start + width]), pattern
    return None


@functools.lru_cache(maxsize=16)
def _matchers(
    patterns: tuple[str, ...],
) -> tuple[tuple[int, re.Pattern[str], tuple[tuple[str, re.Pattern[str]], ...]], ...]:
    """Per window width: one regex for every pattern of that width (the fast test), and each alone (to name it)."""
    by_width: dict[int, list[tuple[str, str]]] = {}
    for pattern in patterns:
        wanted = pattern.strip("/").casefold()
        by_width.setdefault(wanted.count("/") + 1, []).append((pattern, fnmatch.translate(wanted)))
    return tuple(
        (
            width,
            re.compile("|".join(f"(?:{regex})" for _, regex in items)),
            tuple((pattern, re.compile(regex)) for pattern, regex in items),
        )
        for width, items in by_width.items()
    )

"""Path arguments: may this tool call touch this path?

Bastion checks a call's path arguments (the filesystem server's `read_file {path}`,
`read_multiple_files {paths}`) before the server sees them. `check_path` reads the value the
ways a server might and allows it only when *every* reading passes:

* the raw string, its percent-decodings (repeatedly, so `%252e` → `%2e` → `.`), the lenient
  decodings some servers still do (overlong UTF-8, `%c0%ae` and `%e0%80%ae` for `.`, and
  IIS-style `%u002e`) and its NFC, NFD, NFKC and NFKD normalisations (fullwidth dots and
  solidus, U+FF0E U+FF0E U+FF0F, and the one- and two-dot leaders are `../` under NFKC),
  combined. When only a derived reading fails, the refusal is `paths.encoded` or
  `paths.unicode_form`. A pure-ASCII reading is its own normal form, so it costs nothing.
  A file literally named `%2e%2e` is therefore refused: the price of not guessing.
* `file:///abs` and `file://localhost/abs` mean `/abs` (percent-decoded); a URI naming any
  other host is another machine's share (`paths.unc`).
* A backslash anywhere, or a drive letter (`C:`, `c:/`, `C:\\`), is a Windows form
  (`paths.windows_form`), and `\\\\host\\share` is another machine's share (`paths.unc`). This
  gateway and its servers are POSIX, where `C:\\Users\\me\\notes.md` names no file the caller
  meant: a server takes it as one relative file name (or, folding the backslashes, as a `C:`
  directory) under its working directory, and would read or write the wrong file and report
  success. The pinned Node filesystem server refuses drive paths on POSIX for that reason.
  The refusal says so and asks for the POSIX path. `C:name` without a separator is an ordinary
  POSIX file name. `//server/share` is `/server/share` on POSIX (Node folds the slashes too) and
  is checked as such.
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

Finally no component of those paths may match a denied name (the config's
`DEFAULT_DENIED_NAMES` unless the rules say otherwise), compared case-insensitively and also
with trailing dots and spaces stripped (Windows drops them: `.env.` is `.env`), unless the
same components match one of `allowed_names`, the exceptions (`DEFAULT_ALLOWED_NAMES`: the
templates `.env.example`, `.env.sample`, `.env.template` and `.env.dist`, which hold names,
not secrets). A pattern with a `/` (`.git/config`) matches consecutive components. The
roots' own components count: to grant `~/.aws`, narrow `denied_names`. `.envrc` is denied
(direnv files export secrets); look-alikes such as `.envrc-notes`, `env.txt`, `README.env.md`
and `my.environment` match nothing and are allowed. `check_name` is the same test alone,
without roots or filesystem.

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

from bastion.config.model import DEFAULT_ALLOWED_NAMES, DEFAULT_DENIED_NAMES
from bastion.policy.refusal import Refusal, quote

__all__ = [
    "PathRules",
    "check_name",
    "check_path",
    "check_paths",
    "resolve_root",
]

_FORMS = ("NFC", "NFD", "NFKC", "NFKD")
_MAX_READINGS = 64  # a benign path has at most a handful; more is an encoding bomb
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_PERCENT = re.compile("%[0-9A-Fa-f]{2}")
# Overlong UTF-8 for a code point below 0x80 (2 bytes), 0x800 (3) or 0x10000 (4): strict decoders
# refuse it, lenient ones (old servlet containers, hand-written decoders) read `%c0%ae` as '.'.
_OVERLONG = re.compile(
    "%[Cc][01]%[89ABab][0-9A-Fa-f]|%[Ee]0%[89][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff]0%8[0-9A-Fa-f](?:%[89ABab][0-9A-Fa-f]){2}"
)
_PERCENT_U = re.compile("%[Uu]([0-9A-Fa-f]{4})")  # IIS's %u002e
_DRIVE = re.compile(r"[A-Za-z]:(?:[\\/]|$)")
_ROOTS_SHOWN = 3
_SLASHES = re.compile("/+")

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
    allowed_names: tuple[str, ...] = DEFAULT_ALLOWED_NAMES
    """Exceptions to `denied_names`: components matching one of these are not secrets."""
    section: str = ""
    """Where the roots are configured (`servers.files`), so that a refusal names the setting to change."""


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
        setting = _setting(rules, write)
        return Refusal(
            "paths.no_roots", f"this server has no {kind} roots: add a directory to {setting} to allow paths"
        )
    readings = _readings(raw)
    if readings is None:
        return Refusal("paths.encoded", f"{quote(raw)} is percent-encoded too many times to check")
    exact, equivalent = _root_sets(roots)
    for text, derived in readings:
        refusal = _check_reading(text, rules, equivalent if derived else exact, write, realpath)
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


def check_name(path: str, rules: PathRules) -> Refusal | None:
    """The denied-names test alone, on the path as written (no roots, no filesystem, no decoding).

    For a path that names something other than a file on this machine, such as the path part of
    a git `revision:path`, which names a file in the repository's history.
    """
    hit = _denied(path, rules.denied_names, rules.allowed_names)
    if hit is None:
        return None
    part, pattern = hit
    return Refusal("paths.denied_name", f"{quote(path)} reaches {quote(part)}, a denied name ({quote(pattern)})")


@functools.lru_cache(maxsize=64)
def _root_sets(roots: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """The roots folded, and also in the NFC and NFD spellings a normalised reading may use."""
    exact = frozenset(_fold(root) for root in roots)
    equivalent = exact | {unicodedata.normalize(form, root) for root in exact for form in ("NFC", "NFD")}
    return exact, frozenset(equivalent)


def _readings(raw: str) -> list[tuple[str, str]] | None:
    """Every reading of `raw` with how it was derived ("", "unicode_form", "encoded"), raw first.

    The closure under percent-decoding (strict, overlong UTF-8 and `%u`) and the four normal
    forms; None past `_MAX_READINGS`.
    """
    seen: dict[str, str] = {raw: ""}
    queue = [raw]
    while queue:
        text = queue.pop(0)
        derived = seen[text]
        # ASCII is its own normal form in all four: skip the four calls for the common case.
        steps = [] if text.isascii() else [(unicodedata.normalize(f, text), derived or "unicode_form") for f in _FORMS]
        if "%" in text:
            if _PERCENT.search(text):
                steps.append((unquote(text, errors="replace"), "encoded"))
            if _OVERLONG.search(text):
                steps.append((_OVERLONG.sub(_overlong, text), "encoded"))
            if _PERCENT_U.search(text):
                steps.append((_PERCENT_U.sub(lambda match: chr(int(match[1], 16)), text), "encoded"))
        for new, how in steps:
            if new not in seen:
                if len(seen) >= _MAX_READINGS:
                    return None
                seen[new] = how
                queue.append(new)
    return list(seen.items())


def _overlong(match: re.Match[str]) -> str:
    """The code point an overlong UTF-8 sequence spells, as a lenient decoder reads it."""
    data = bytes.fromhex(match[0].replace("%", ""))
    code = data[0] & (0x7F >> len(data))
    for byte in data[1:]:
        code = (code << 6) | (byte & 0x3F)
    return chr(code)


def _check_reading(
    text: str, rules: PathRules, roots: frozenset[str], write: bool, realpath: Realpath
) -> Refusal | None:
    """The checks for one reading: its form, then the roots, then the denied names."""
    kind = "writable" if write else "readable"
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
            return Refusal("paths.windows_form", _drive_reason(text, kind))
    if "\\" in path or _DRIVE.match(path):
        return _windows_form(text, path, kind)
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
        allowed = rules.write_roots if write else (*rules.read_roots, *rules.write_roots)
        shown = ", ".join(quote(root) for root in allowed[:_ROOTS_SHOWN]) + (
            " …" if len(allowed) > _ROOTS_SHOWN else ""
        )
        return Refusal(
            "paths.outside_roots",
            f"{quote(text)} {said} outside the {kind} roots ({shown}); to allow it, add it or a directory above "
            f"it to {_setting(rules, write)}",
        )
    unfolded = _fold_slashes(joined)
    try:
        first = _realpath_below(lexical, roots) if realpath is os.path.realpath else realpath(lexical)
        resolved = {lexical if first == lexical else _fold(first)}
        if unfolded != lexical:
            resolved.add(_fold(realpath(unfolded)))
    except (OSError, ValueError) as error:
        return Refusal("paths.unresolvable", f"{quote(text)} cannot be resolved ({type(error).__name__})")
    for target in sorted(resolved):
        if target is not lexical and not _inside(target, roots):
            return Refusal(
                "paths.outside_roots", f"{quote(text)} resolves to {quote(target)}, outside the {kind} roots"
            )
    for candidate in sorted({lexical, *resolved}) if len(resolved) > 1 or lexical not in resolved else (lexical,):
        hit = _denied(candidate, rules.denied_names, rules.allowed_names)
        if hit is not None:
            part, pattern = hit
            return Refusal(
                "paths.denied_name", f"{quote(text)} reaches {quote(part)}, a denied name ({quote(pattern)})"
            )
    return None


def _setting(rules: PathRules, write: bool) -> str:
    """The setting that grants roots of this kind (`servers.files.fs_read`)."""
    name = "fs_write" if write else "fs_read"
    return f"{rules.section}.{name}" if rules.section else name


def _windows_form(text: str, path: str, kind: str) -> Refusal:
    """Why a Windows spelling is refused: on this POSIX host it names no file the caller meant."""
    if path.startswith("\\\\") and not path.startswith(("\\\\?\\", "\\\\.\\")):
        host = path[2:].split("\\", 1)[0]
        return Refusal(
            "paths.unc",
            f"{quote(text)} is a UNC path, a share on another machine ({quote(host)}); only this host's files can be checked",
        )
    if _DRIVE.match(path):
        return Refusal("paths.windows_form", _drive_reason(text, kind))
    return Refusal(
        "paths.windows_form",
        f"{quote(text)} separates names with '\\', which POSIX reads as part of one file name; write the path with '/'",
    )


def _drive_reason(text: str, kind: str) -> str:
    return (
        f"{quote(text)} is a Windows drive path, which names no file on this POSIX host (a server would take it "
        f"as a relative name and touch the wrong file); give the file's POSIX path, inside the {kind} roots"
    )


def _realpath_below(path: str, roots: frozenset[str]) -> str:
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
    return _SLASHES.sub("/", path) if "//" in path else path


def _inside(path: str, roots: frozenset[str]) -> bool:
    return path in roots or path.startswith(_prefixes(roots))


@functools.lru_cache(maxsize=64)
def _prefixes(roots: frozenset[str]) -> tuple[str, ...]:
    """What a path below one of the roots starts with (whole components: `/srv/data/`, not `/srv/data`)."""
    return tuple(root.rstrip("/") + "/" for root in roots)


def _denied(path: str, patterns: tuple[str, ...], allowed: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """The first (components, pattern) of `path` matching a denied pattern and no allowed one, or None."""
    if not patterns:
        return None
    folded = path.casefold()
    if _quick(patterns).search(folded) is None:
        return None  # the common case: one search over the whole path, no window matched
    exempt = _matchers(allowed) if allowed else ()
    parts = [part for part in path.split("/") if part]
    stripped = [name.rstrip(". ") for name in parts]
    variants = [parts] if stripped == parts else [parts, stripped]
    for width, combined, singles in _matchers(patterns):
        for names in variants:
            for start in range(len(names) - width + 1):
                text = "/".join(names[start : start + width]).casefold()
                if combined.match(text) is None:
                    continue
                if any(w == width and a.match(text) for w, a, _ in exempt):
                    continue
                pattern = next(pattern for pattern, single in singles if single.match(text))
                return "/".join(parts[start : start + width]), pattern
    return None


@functools.lru_cache(maxsize=16)
def _quick(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One regex that finds any window matching any pattern anywhere in a casefolded path.

    A superset test for `_denied`'s windows (trailing dots and spaces allowed after each
    component, as `_denied` strips them): no match means no window matches.
    """
    alternatives = "|".join(_component_glob(pattern.strip("/").casefold()) for pattern in patterns)
    return re.compile(f"(?:^|/)(?:{alternatives})[. ]*(?=/|$)")


def _component_glob(pattern: str) -> str:
    """A glob as a regex that matches at least what `fnmatch` does, with `*` kept within a component.

    A bracket expression becomes any one character but `/` (a superset: the exact test follows).
    """
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "/":
            out.append("[. ]*/")
        elif char == "[" and (end := _bracket_end(pattern, index)) > 0:
            out.append("[^/]")
            index = end + 1
        else:
            out.append(re.escape(char))
    return "(?:" + "".join(out) + ")"


def _bracket_end(pattern: str, index: int) -> int:
    """Where the bracket expression opened before `index` closes, as `fnmatch` reads it; -1 if it does not."""
    if index < len(pattern) and pattern[index] == "!":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    return pattern.find("]", index)


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

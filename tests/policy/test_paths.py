"""Path arguments: roots, symlinks, encodings, Windows and Unicode forms, `~`, denied names."""

from __future__ import annotations

import fnmatch
import os
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bastion.config.model import DEFAULT_ALLOWED_NAMES, DEFAULT_DENIED_NAMES, PathConfig
from bastion.policy.paths import (
    PathRules,
    check_name,
    check_path,
    check_paths,
    resolve_root,
)
from bastion.policy.refusal import Refusal


@dataclass(frozen=True)
class Tree:
    """A real directory tree: a writable root (also the base), a read-only root, and the rest of the world."""

    root: Path
    readonly: Path
    outside: Path

    @property
    def rules(self) -> PathRules:
        return PathRules(
            read_roots=(str(self.readonly),), write_roots=(str(self.root),), base=str(self.root), home=str(self.root)
        )


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    top = Path(resolve_root(str(tmp_path)))
    root, readonly, outside = top / "root", top / "readonly", top / "outside"
    for directory in (root / "a", readonly, outside / "dir", top / "data", top / "data2"):
        directory.mkdir(parents=True)
    for file in (root / "notes.txt", root / "a" / "b.txt", readonly / "r.txt", outside / "secret.txt"):
        file.write_text("text", encoding="utf-8")
    (root / "link_out").symlink_to(outside / "secret.txt")
    (root / "dangling_out").symlink_to(outside / "missing.txt")
    (root / "parent_out").symlink_to(outside / "dir", target_is_directory=True)
    (root / "link_in").symlink_to(root / "a" / "b.txt")
    (root / "innocent.txt").symlink_to(root / ".env")
    (outside / "back").symlink_to(root, target_is_directory=True)
    return Tree(root, readonly, outside)


def rule(value: object, rules: PathRules, *, write: bool = False) -> str | None:
    refusal = check_path(value, rules, write=write)
    return None if refusal is None else refusal.rule


# Inside and outside the roots.


@pytest.mark.parametrize(
    "path",
    ["notes.txt", "a/b.txt", "a/./b.txt", "a//b.txt", "./a/../notes.txt", "a/", "new-file.txt", "a/new/deep.txt"],
)
def test_relative_paths_inside_the_base_root_are_allowed(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) is None


def test_absolute_paths_inside_a_root_are_allowed(tree: Tree) -> None:
    assert rule(str(tree.root / "a" / "b.txt"), tree.rules) is None
    assert rule(str(tree.readonly / "r.txt"), tree.rules) is None


def test_a_root_is_inside_itself(tree: Tree) -> None:
    assert rule(str(tree.root), tree.rules) is None
    assert rule(str(tree.root) + "/", tree.rules) is None
    assert rule(".", tree.rules) is None


def test_repeated_separators_are_folded(tree: Tree) -> None:
    assert rule(str(tree.root).replace("/", "//") + "///notes.txt", tree.rules) is None


@pytest.mark.parametrize("path", ["..", "../outside/secret.txt", "a/../../outside", "../../../../../../etc/passwd"])
def test_dot_dot_that_leaves_the_roots_is_refused(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) == "paths.outside_roots"


def test_an_absolute_path_outside_the_roots_is_refused_with_a_plain_reason_and_its_fix(tree: Tree) -> None:
    refusal = check_path("/etc/passwd", tree.rules, write=False)
    roots = ", ".join(repr(root) for root in (*tree.rules.read_roots, *tree.rules.write_roots))
    assert refusal == Refusal(
        "paths.outside_roots",
        f"'/etc/passwd' is outside the readable roots ({roots}); to allow it, add it or a directory above it to fs_read",
    )
    named = replace(tree.rules, section="servers.files")
    written = check_path("/etc/passwd", named, write=True)
    assert written is not None
    assert written.reason.endswith("to servers.files.fs_write")


@pytest.mark.parametrize("path", ["/etc/passwd", "/", "/root/.ssh/id_rsa", "file:///etc/shadow", "//etc/passwd"])
def test_absolute_paths_outside_the_roots_are_refused(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) == "paths.outside_roots"
    assert rule(str(tree.outside / "secret.txt"), tree.rules) == "paths.outside_roots"


def test_a_sibling_whose_name_extends_the_root_is_outside_it(tree: Tree) -> None:
    data = tree.root.parent / "data"
    rules = PathRules(read_roots=(str(data),), write_roots=())
    assert rule(str(data / "x.txt"), rules) is None
    assert rule(str(data) + "2/x.txt", rules) == "paths.outside_roots"
    assert rule(str(data) + "2", rules) == "paths.outside_roots"


def test_a_filesystem_root_contains_everything(tree: Tree) -> None:
    assert rule("/etc/hostname", PathRules(read_roots=("/",), write_roots=(), denied_names=())) is None


# Symlinks.


def test_a_link_inside_pointing_outside_is_refused(tree: Tree) -> None:
    assert rule("link_out", tree.rules) == "paths.outside_roots"


def test_a_dangling_link_pointing_outside_is_refused(tree: Tree) -> None:
    assert rule("dangling_out", tree.rules) == "paths.outside_roots"
    assert rule("dangling_out", tree.rules, write=True) == "paths.outside_roots"


def test_a_symlinked_parent_directory_pointing_outside_is_refused(tree: Tree) -> None:
    assert rule("parent_out/anything.txt", tree.rules) == "paths.outside_roots"
    assert rule("parent_out/new/deeper.txt", tree.rules, write=True) == "paths.outside_roots"


def test_a_link_inside_pointing_inside_is_allowed(tree: Tree) -> None:
    assert rule("link_in", tree.rules) is None


def test_link_dot_dot_is_refused_when_the_link_points_outside(tree: Tree) -> None:
    # Lexically 'parent_out/..' is the root; the kernel resolves it to the target's parent.
    assert rule("parent_out/../notes.txt", tree.rules) == "paths.outside_roots"


def test_a_path_that_leaves_the_roots_and_returns_through_a_link_is_refused(tree: Tree) -> None:
    assert rule(str(tree.outside / "back" / "notes.txt"), tree.rules) == "paths.outside_roots"
    assert rule("../outside/back/notes.txt", tree.rules) == "paths.outside_roots"


def test_a_link_to_a_denied_name_is_refused(tree: Tree) -> None:
    assert rule("innocent.txt", tree.rules) == "paths.denied_name"


def test_the_injected_realpath_is_the_one_consulted(tree: Tree) -> None:
    def to_etc(path: str) -> str:
        return "/etc/passwd"

    assert check_path("notes.txt", tree.rules, write=False, realpath=to_etc) == Refusal(
        "paths.outside_roots", "'notes.txt' resolves to '/etc/passwd', outside the readable roots"
    )


def test_a_path_that_cannot_be_resolved_is_refused(tree: Tree) -> None:
    def failing(path: str) -> str:
        raise OSError("too many levels of symbolic links")

    refusal = check_path("notes.txt", tree.rules, write=False, realpath=failing)
    assert refusal is not None
    assert refusal.rule == "paths.unresolvable"


# Reading versus writing.


def test_a_read_only_root_is_readable_but_not_writable(tree: Tree) -> None:
    path = str(tree.readonly / "r.txt")
    assert rule(path, tree.rules, write=False) is None
    assert rule(path, tree.rules, write=True) == "paths.outside_roots"
    refusal = check_path(path, tree.rules, write=True)
    assert refusal is not None
    assert "writable roots" in refusal.reason


def test_write_roots_are_readable(tree: Tree) -> None:
    assert rule("notes.txt", tree.rules, write=False) is None
    assert rule("notes.txt", tree.rules, write=True) is None


def test_no_roots_for_the_access_kind_is_its_own_refusal(tree: Tree) -> None:
    read_only = PathRules(read_roots=(str(tree.readonly),), write_roots=())
    assert rule(str(tree.readonly / "r.txt"), read_only, write=True) == "paths.no_roots"
    assert rule("/anything", PathRules(read_roots=(), write_roots=())) == "paths.no_roots"
    refusal = check_path("/anything", PathRules(read_roots=(), write_roots=()), write=False)
    assert refusal is not None
    assert "fs_read" in refusal.reason


# Malformed values.


@pytest.mark.parametrize("value", [None, 3, b"/root", ["notes.txt"], {"path": "x"}])
def test_a_value_that_is_not_text_is_refused(tree: Tree, value: object) -> None:
    assert rule(value, tree.rules) == "paths.not_text"


def test_an_empty_path_is_refused(tree: Tree) -> None:
    assert rule("", tree.rules) == "paths.empty"


@pytest.mark.parametrize(
    "path", ["notes.txt\x00.png", "\x00", "a\nb", "tab\there", "del\x7f", "c1\x85", "line\u2028sep"]
)
def test_control_characters_are_refused(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) == "paths.control_character"


# Percent-encoding.


@pytest.mark.parametrize(
    "path",
    [
        "%2e%2e/outside/secret.txt",
        "%2E%2E%2Foutside",
        "..%2f..%2fetc%2fpasswd",
        "%252e%252e/outside",
        "%25252e%25252e%25252f",
        "a/%2e%2e%2f%2e%2e/outside",
        "%2fetc%2fpasswd",
        "%2eenv",
        "notes.txt%00.png",
        "%5c%5cserver%5cshare",
        "%7e/../outside",
        # Overlong UTF-8, which lenient decoders read as '.' and '/', and IIS's %u.
        "%c0%ae%c0%ae/outside/secret.txt",
        "%C0%AE%C0%AE%C0%AFoutside",
        "%c0%ae%c0%ae%c1%9coutside",  # %c1%9c is an overlong backslash
        "%e0%80%ae%e0%80%ae/outside",
        "%f0%80%80%ae%f0%80%80%ae/outside",
        "%25c0%25ae%25c0%25ae/outside",
        "%u002e%u002e/outside",
        "%U002E%U002E%u002Foutside",
        "%c0%aeenv",
    ],
)
def test_paths_that_escape_once_percent_decoded_are_refused(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) == "paths.encoded"


@pytest.mark.parametrize("path", ["%c0.txt", "%c0%ae.txt", "a%e0%80%aeb.txt", "%u0041.txt", "%u00e9t%C3%A9.txt"])
def test_lenient_decodings_that_stay_inside_are_allowed(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) is None


@pytest.mark.parametrize("path", ["100%25 done.txt", "caf%C3%A9.txt", "%zz.txt", "50%.txt", "a%2fb.txt", "%41.txt"])
def test_percent_signs_that_stay_inside_are_allowed(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) is None


def test_an_encoding_bomb_is_refused(tree: Tree) -> None:
    assert rule("%" + "25" * 70 + "2e", tree.rules) == "paths.encoded"


# file:// URIs.


def test_a_local_file_uri_means_its_path(tree: Tree) -> None:
    assert rule(f"file://{tree.root}/notes.txt", tree.rules) is None
    assert rule(f"file://localhost{tree.root}/caf%C3%A9.txt", tree.rules) is None
    assert rule("file:///etc/passwd", tree.rules) == "paths.outside_roots"
    assert rule(f"FILE://{tree.root}/%2e%2e/outside", tree.rules) == "paths.outside_roots"


@pytest.mark.parametrize("path", ["file://server/share/x", "file://evil.example/etc/passwd", "file://~/x"])
def test_a_file_uri_naming_another_host_is_refused(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) == "paths.unc"


def test_a_file_uri_with_a_drive_letter_is_a_windows_form(tree: Tree) -> None:
    assert rule("file:///C:/Windows/win.ini", tree.rules) == "paths.windows_form"


# Windows and UNC forms.


@pytest.mark.parametrize(
    "path",
    ["C:\\Windows", "c:/Windows", "C:", "a\\..\\..\\outside", "notes.txt\\", "D:\\", "\\\\?\\C:\\x", "\\\\.\\pipe\\x"],
)
def test_windows_forms_are_refused(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) == "paths.windows_form"


@pytest.mark.parametrize(
    "path", ["C:\\Users\\me\\project\\notes.md", "c:/Users/me/notes.md", "file:///C:/Users/me/notes.md"]
)
def test_a_windows_drive_path_is_refused_saying_it_names_no_file_here(tree: Tree, path: str) -> None:
    # Decided: on a POSIX host a drive path names no file the caller meant. A server would take
    # it as a relative name under its working directory and read or write the wrong file, so it
    # is refused, as the pinned Node filesystem server refuses it, with the reason and the fix.
    refusal = check_path(path, tree.rules, write=False)
    assert refusal is not None
    assert refusal.rule == "paths.windows_form"
    assert "names no file on this POSIX host" in refusal.reason
    assert "POSIX path" in refusal.reason


@pytest.mark.parametrize("path", ["\\\\server\\share", "\\\\evil.example\\c$\\x", "\\\\10.0.0.1\\share\\..\\x"])
def test_a_unc_path_names_another_machine(tree: Tree, path: str) -> None:
    refusal = check_path(path, tree.rules, write=False)
    assert refusal is not None
    assert refusal.rule == "paths.unc"
    assert "another machine" in refusal.reason


def test_a_drive_path_that_climbs_out_is_refused_like_any_windows_form(tree: Tree) -> None:
    assert rule("C:\\..\\..\\etc\\passwd", tree.rules) == "paths.windows_form"
    assert rule("C:/../../etc/passwd", tree.rules) == "paths.windows_form"
    assert rule("%43%3A%5C..%5Cetc", tree.rules) in ("paths.encoded", "paths.windows_form")


def test_a_colon_without_a_separator_is_an_ordinary_posix_name(tree: Tree) -> None:
    assert rule("c:notes.txt", tree.rules) is None


def test_two_leading_slashes_are_one_on_posix(tree: Tree) -> None:
    assert rule("//server/share", tree.rules) == "paths.outside_roots"
    assert rule("/" + str(tree.root / "notes.txt"), tree.rules) is None


# Unicode.


@pytest.mark.parametrize(
    "path",
    [
        "\uff0e\uff0e\uff0foutside\uff0fsecret.txt",  # fullwidth ../outside/secret.txt
        "\uff0e\uff0e/outside",
        "\uff0eenv",  # fullwidth .env
        "\uff3c\uff3cserver\uff3cshare",  # fullwidth backslashes
        "\uff5e/notes.txt",  # fullwidth ~, and this server has no home
        "\u2025/outside",  # TWO DOT LEADER is '..' under NFKC
        "\u2024\u2024/outside",  # ONE DOT LEADER
        "\ufe52\ufe52/outside",  # SMALL FULL STOP
        "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fetc\uff0fpasswd",
    ],
)
def test_paths_that_escape_once_normalised_are_refused(tree: Tree, path: str) -> None:
    assert rule(path, replace(tree.rules, home=None)) == "paths.unicode_form"


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_a_name_with_accents_is_allowed_in_either_form(tree: Tree, form: Literal["NFC", "NFD"]) -> None:
    (tree.root / unicodedata.normalize("NFC", "café.txt")).write_text("x", encoding="utf-8")
    assert rule(unicodedata.normalize(form, "café.txt"), tree.rules) is None


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_a_root_with_accents_admits_paths_in_either_form(tree: Tree, form: Literal["NFC", "NFD"]) -> None:
    root = tree.root / unicodedata.normalize("NFC", "josé")
    root.mkdir()
    rules = PathRules(read_roots=(str(root),), write_roots=())
    assert rule(str(root / unicodedata.normalize(form, "café.txt")), rules) is None


def test_a_division_slash_is_an_ordinary_character(tree: Tree) -> None:
    assert rule("..\u2215outside", tree.rules) is None


# The home directory.


def test_tilde_expands_to_the_servers_home(tree: Tree) -> None:
    assert rule("~/notes.txt", tree.rules) is None
    assert rule("~", tree.rules) is None


def test_tilde_ssh_key_is_denied_when_home_is_inside_a_root(tree: Tree) -> None:
    assert rule("~/.ssh/id_rsa", tree.rules) == "paths.denied_name"


def test_tilde_ssh_key_is_outside_when_home_is_outside_the_roots(tree: Tree) -> None:
    assert rule("~/.ssh/id_rsa", replace(tree.rules, home=str(tree.outside))) == "paths.outside_roots"


@pytest.mark.parametrize("path", ["~root/.ssh/id_rsa", "~root", "~~/x"])
def test_another_users_home_is_refused(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) == "paths.tilde"


def test_tilde_without_a_known_home_is_refused(tree: Tree) -> None:
    assert rule("~/notes.txt", replace(tree.rules, home=None)) == "paths.tilde"


def test_a_tilde_inside_a_path_is_an_ordinary_name(tree: Tree) -> None:
    assert rule("a/~/notes.txt", replace(tree.rules, home=None)) is None


# Denied names.


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.",  # Windows drops the trailing dot
        ".env ",
        ".ENV",
        ".env.local",
        ".env.production",
        ".env.development.local",
        "config/.env",
        ".envrc",
        ".ssh",
        ".ssh/known_hosts",
        ".git/config",
        "repo/.GIT/config",
        "id_rsa",
        "id_ed25519.pub",
        "a/server.pem",
        "tls.KEY",
        "cert.p12",
        ".docker/config.json",
        ".kube/config",
        ".aws/credentials",
        ".netrc",
        ".npmrc",
        ".pypirc",
    ],
)
def test_denied_names_inside_a_root_are_refused(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) == "paths.denied_name"


@pytest.mark.parametrize(
    "path",
    [
        "notes..v2.txt",
        "env.txt",
        ".envrc-notes",
        "my.environment",
        "environment.env.txt",
        ".gitignore",
        ".git/HEAD",
        "config",
        "keys.txt",
        "key.pem.txt",
        "id_rsa_notes/../notes.txt",
        "ssh/config",
        # Templates that list a project's variables hold no secrets (these were refused before).
        ".env.example",
        ".env.sample",
        ".env.template",
        ".env.dist",
        ".ENV.Example",
        "app/.env.example",
        "README.env.md",
        "docs/env.md",
    ],
)
def test_benign_look_alikes_are_allowed(tree: Tree, path: str) -> None:
    assert rule(path, tree.rules) is None


@pytest.mark.parametrize("path", [".env.example/../.env", ".env.example.local", ".env.example/.env", "x.env.example"])
def test_a_template_name_does_not_shelter_a_secret_beside_or_below_it(tree: Tree, path: str) -> None:
    expected = None if path == "x.env.example" else "paths.denied_name"
    assert rule(path, tree.rules) == expected


def test_a_template_name_that_links_to_a_secret_is_refused(tree: Tree) -> None:
    (tree.root / ".env.sample").symlink_to(tree.root / ".env")
    assert rule(".env.sample", tree.rules) == "paths.denied_name"


def test_denied_names_are_configurable(tree: Tree) -> None:
    rules = replace(tree.rules, denied_names=tuple(n for n in DEFAULT_DENIED_NAMES if n != ".env.*"))
    assert rule(".env.local", rules) is None
    assert rule(".env", rules) == "paths.denied_name"
    assert rule("notes.txt", replace(tree.rules, denied_names=("notes.*",))) == "paths.denied_name"


def test_allowed_names_are_configurable(tree: Tree) -> None:
    assert rule(".env.example", replace(tree.rules, allowed_names=())) == "paths.denied_name"
    assert rule(".env.local", replace(tree.rules, allowed_names=(".env.local",))) is None


def test_the_settings_default_to_the_module_lists() -> None:
    settings = PathConfig()
    assert settings.denied_names == DEFAULT_DENIED_NAMES
    assert settings.allowed_names == DEFAULT_ALLOWED_NAMES
    assert PathConfig(denied_names=("*.secret",)).denied_names == ("*.secret",)


@pytest.mark.parametrize("names", [("",), ("/",), ("a\0b",)])
def test_the_settings_refuse_an_empty_pattern(names: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError):
        PathConfig(denied_names=names)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".env", "paths.denied_name"),
        ("config/.env.production", "paths.denied_name"),
        ("keys/server.KEY", "paths.denied_name"),
        ("a/.git/config", "paths.denied_name"),
        ("a/.git/HEAD", None),
        (".env.example", None),
        ("src/main.py", None),
        ("../../etc/passwd", None),  # the names alone: no roots are consulted
    ],
)
def test_check_name_is_the_denied_names_test_alone(path: str, expected: str | None) -> None:
    refusal = check_name(path, PathRules(read_roots=(), write_roots=()))
    assert (refusal.rule if refusal else None) == expected


_NAME_PARTS = st.sampled_from(["a", ".env", ".env.local", ".env.example", "id_rsa", "x.pem", ".git", "config", "b."])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_NAME_PARTS, max_size=5).map("/".join),
    st.lists(st.sampled_from(["*.pem", ".env*", "id_*", ".git/config", "a/b", "[ab]", "c?nfig", "[!x]*"]), max_size=4),
)
def test_the_one_search_prefilter_never_misses_a_denied_name(path: str, patterns: list[str]) -> None:
    """`check_name` finds exactly what matching every window of components with fnmatch finds."""
    parts = [part for part in path.split("/") if part]
    expected = False
    for names in (parts, [part.rstrip(". ") for part in parts]):
        for pattern in patterns:
            width = pattern.count("/") + 1
            windows = ("/".join(names[i : i + width]).casefold() for i in range(len(names) - width + 1))
            expected = expected or any(fnmatch.fnmatchcase(window, pattern.casefold()) for window in windows)
    rules = PathRules(read_roots=(), write_roots=(), denied_names=tuple(patterns), allowed_names=())
    assert (check_name(path, rules) is not None) == expected


def test_a_denied_name_among_the_roots_own_components_denies_the_root(tree: Tree) -> None:
    keys = tree.root / ".ssh"
    keys.mkdir()
    assert rule(str(keys / "known_hosts"), PathRules(read_roots=(str(keys),), write_roots=())) == "paths.denied_name"


# Lists of paths.


def test_a_list_of_allowed_paths_is_allowed(tree: Tree) -> None:
    assert check_paths(["notes.txt", "a/b.txt", str(tree.readonly / "r.txt")], tree.rules, write=False) is None
    assert check_paths([], tree.rules, write=False) is None


def test_one_bad_path_in_a_list_refuses_the_list(tree: Tree) -> None:
    refusal = check_paths(["notes.txt", "link_out"], tree.rules, write=False)
    assert refusal is not None
    assert refusal.rule == "paths.outside_roots"
    assert refusal.reason.startswith("path 2:")


def test_a_single_string_is_checked_as_one_path(tree: Tree) -> None:
    assert check_paths("notes.txt", tree.rules, write=False) is None
    assert check_paths(".env", tree.rules, write=False) == check_path(".env", tree.rules, write=False)


@pytest.mark.parametrize("values", [None, 3, ("notes.txt",), {"paths": []}, ["notes.txt", 7]])
def test_anything_but_text_or_a_list_of_text_is_refused(tree: Tree, values: object) -> None:
    refusal = check_paths(values, tree.rules, write=False)
    assert refusal is not None
    assert refusal.rule == "paths.not_text"


# Resolving configured roots.


def test_resolve_root_expands_home_and_follows_links(tree: Tree) -> None:
    assert resolve_root("~/a", home=str(tree.root)) == str(tree.root / "a")
    assert resolve_root(str(tree.root / "parent_out")) == str(tree.outside / "dir")
    assert resolve_root(str(tree.root) + "/a/../a/") == str(tree.root / "a")


def test_resolve_root_makes_a_relative_root_absolute(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree.root)
    assert resolve_root("a") == str(tree.root / "a")


def test_resolve_root_refuses_an_empty_root() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        resolve_root("")


# Properties, over a tree whose one-letter names are links: 'b' leads outside, 'e' dangles
# outside, 'ab' leads back inside.

ALPHABET = "ab./\\%~2e5cf\uff0e\uff0f\u2215\x00é"
TOKENS = ["a", "b", "e", "ab", ".", "..", "", "~", "%2e%2e", "%252e", "%2f", "\uff0e\uff0e", "C:", "\\", ".env", "é"]
PATHS = st.one_of(st.text(alphabet=ALPHABET, max_size=14), st.lists(st.sampled_from(TOKENS), max_size=6).map("/".join))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    top = Path(resolve_root(str(tmp_path_factory.mktemp("world"))))
    root, outside = top / "root", top / "outside"
    (root / "a").mkdir(parents=True)
    (outside / "a").mkdir(parents=True)
    (root / "b").symlink_to(outside, target_is_directory=True)
    (root / "e").symlink_to(outside / "missing")
    (root / "ab").symlink_to(root / "a", target_is_directory=True)
    return Tree(root, root, outside)


def readings(path: str) -> list[str]:
    """The oracle's own idea of how a server might read `path`: raw, fully decoded, normalised."""
    decoded = path
    while unquote(decoded, errors="replace") != decoded:
        decoded = unquote(decoded, errors="replace")
    return [path, decoded, *(unicodedata.normalize(form, p) for p in (path, decoded) for form in ("NFC", "NFKC"))]


def assert_stays_inside(path: str, rules: PathRules, root: Path) -> None:
    for reading in readings(path):
        tilde = reading == "~" or reading.startswith("~/")
        joined = os.path.join(rules.base, str(rules.home) + reading[1:] if tilde else reading)
        lexical = os.path.normpath("/" + joined.lstrip("/"))
        for candidate in (lexical, os.path.realpath(joined)):
            assert Path(candidate).is_relative_to(root), f"{path!r} reaches {candidate!r}"


@settings(max_examples=300, deadline=None)
@given(PATHS)
def test_an_allowed_path_resolves_inside_a_root_however_it_is_read(world: Tree, path: str) -> None:
    if check_path(path, world.rules, write=True) is None:
        assert_stays_inside(path, world.rules, world.root)


def test_the_property_would_catch_a_checker_that_ignores_symlinks(world: Tree) -> None:
    def lexical_only(path: str) -> str:
        return path

    assert check_path("b/a", world.rules, write=True, realpath=lexical_only) is None
    with pytest.raises(AssertionError):
        assert_stays_inside("b/a", world.rules, world.root)


@settings(max_examples=300, deadline=None)
@given(PATHS)
def test_enough_dot_dots_before_an_allowed_path_escape_and_are_refused(world: Tree, path: str) -> None:
    if check_path(path, world.rules, write=False) is None:
        climbed = "../" * len(world.root.parts) + path
        assert rule(climbed, world.rules) == "paths.outside_roots"

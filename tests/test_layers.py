"""The layers run one way: a package imports only packages on its own layer or below, and no
module imports itself back through others. Read from the source's own import statements
(those under `TYPE_CHECKING` too: a type is a dependency), so a new upward import fails here
before it settles in."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "bastion"

LAYERS: tuple[tuple[str, ...], ...] = (
    # top: the command line and the composition roots wire everything below them
    ("__main__",),
    ("cli",),
    ("runtime_http",),
    ("runtime",),
    ("web", "doctor", "demo"),
    ("watch", "compliance"),
    ("inventory",),
    ("policy",),
    ("approvals",),
    ("audit",),
    ("screen",),
    ("proxy",),
    ("sandbox",),
    ("transport",),
    ("identity",),
    ("config",),
    ("store",),
    # the ground: value types, codes, the clock and private files; under them the error tree
    ("types", "codes", "clock", "files", "processes", "stopping"),
    ("errors",),
)
"""Packages (and top-level modules) from the top layer to the ground."""

RANK = {name: depth for depth, layer in enumerate(LAYERS) for name in layer}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(("bastion", *parts))] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module of ours) for each import statement; `from pkg import name` names
    the submodule when `pkg.name` is one."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for named in targets:
            target = named
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("bastion.") or target == "bastion":
                yield node.lineno, target


def _place(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_package_has_a_layer() -> None:
    places = {_place(module) for module in MODULES} - {""}
    assert places - RANK.keys() == set(), "add the new package to LAYERS, at the layer of what it imports"


def test_imports_never_run_up_a_layer() -> None:
    upward: list[str] = []
    for module, path in MODULES.items():
        place = _place(module)
        if not place:
            continue
        for line, target in _imports(module, path):
            other = _place(target)
            if other and other != place and RANK[other] < RANK[place]:
                upward.append(f"{path.relative_to(SRC.parent)}:{line} {place} imports {target}, a layer above it")
    assert upward == []


def test_no_module_imports_itself_back() -> None:
    graph = {module: {target for _, target in _imports(module, path)} - {module} for module, path in MODULES.items()}
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    # A package's __init__ re-exporting its modules is a face, not a circle.
    real = [circle for circle in circles if not any(_is_face(a, b) for a, b in itertools.pairwise(circle))]
    assert real == []


def _is_face(importer: str, imported: str) -> bool:
    return MODULES[importer].name == "__init__.py" and imported.startswith(importer + ".")

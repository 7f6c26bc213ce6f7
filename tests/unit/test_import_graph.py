"""The import rule of the layout (docs/architecture.md): dependencies point one way.

- `crossmodal/` is the core: it imports no framework (Jina, docarray, FastAPI, pydantic, uvicorn) and nothing of the
  layers over it (`serving/`, the executors `img_emb/`, `txt_emb/`, `pods/`, `app.py`, the top-level `dataset.py`).
- Inside the core, packages import only packages of a lower layer (`CORE_LAYERS`): media and the vocabulary at the
  bottom, the index, the models and the readers over them, search, the photo library and downloads on top.
- Within `crossmodal/` and within `serving/`, modules form no import circle. Imports inside functions count too:
  a lazy import that only hides a circle from Python still ties the modules together.
The graph is read from the source with `ast` (nothing is imported), so the test is fast and sees every import.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = ("jina", "docarray", "fastapi", "starlette", "pydantic", "uvicorn",
                     "serving", "img_emb", "txt_emb", "pods", "app", "dataset")

# The core's packages (and top-level modules), bottom layer first.
CORE_LAYERS = (
    frozenset({"modality", "media", "evaluation", "calibration"}),  # calibration: data files only
    frozenset({"index", "backends", "datasets"}),
    frozenset({"search", "library", "download"}),
)


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of `package` (a folder under the repository root)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name `module` imports, anywhere in its body (relative imports resolved, `from a import b` gives
    both `a` and `a.b`, since b may be a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of the same set it imports."""
    return {name: (imported_names(name, path) & modules.keys()) - {name} for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: every import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", ["crossmodal", "serving"])
def test_no_import_circle(package: str) -> None:
    graph = import_graph(module_files(REPO_ROOT / package))
    found = circles(graph)
    assert not found, "import circles: " + "; ".join(
        " <-> ".join(f"{name} (imports {sorted(graph[name] & set(circle))})" for name in circle) for circle in found)


def test_the_core_imports_no_framework_and_no_outer_layer() -> None:
    upward = sorted((module, name) for module, path in module_files(REPO_ROOT / "crossmodal").items()
                    for name in imported_names(module, path) if name.split(".")[0] in FORBIDDEN_IN_CORE)
    assert not upward, f"crossmodal/ imports what sits over it: {upward}"


def core_part(module: str) -> str:
    """The core package (or top-level module) a module of `crossmodal` belongs to: crossmodal.index.reads -> index."""
    return module.split(".")[1] if "." in module else module


def upward_imports(graph: dict[str, set[str]], layers: tuple[frozenset[str], ...]) -> list[str]:
    """Imports from a part into a part of the same or a higher layer (or one no layer names)."""
    layer_of = {part: number for number, parts in enumerate(layers) for part in parts}
    found = []
    for module, imported in sorted(graph.items()):
        for name in sorted(imported):
            source, target = core_part(module), core_part(name)
            if source == target or module.count(".") == 0:  # within a part; the package's own __init__
                continue
            if source not in layer_of or target not in layer_of or layer_of[target] >= layer_of[source]:
                found.append(f"{module} -> {name}")
    return found


def test_core_packages_import_only_lower_layers() -> None:
    graph = import_graph(module_files(REPO_ROOT / "crossmodal"))
    unplaced = {core_part(module) for module in graph if "." in module} - set().union(*CORE_LAYERS)
    assert not unplaced, f"core parts that no layer names (add them to CORE_LAYERS): {sorted(unplaced)}"
    assert upward_imports(graph, CORE_LAYERS) == []


def test_the_checker_finds_a_circle_through_a_lazy_import(tmp_path: Path) -> None:
    """The rule can fail: two modules that import each other, one of them inside a function."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def late():\n    from .sub import c\n    return c\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from ..a import b\n")  # resolves to pkg.a (and pkg.a.b)
    graph = import_graph(module_files(package))
    assert graph["pkg.sub.c"] == {"pkg.a"}
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    (package / "b.py").write_text("import os\n")
    assert circles(import_graph(module_files(package))) == []


def test_the_layer_rule_finds_an_upward_import() -> None:
    graph = {"crossmodal.media.decoding": {"crossmodal.index.reads"},
             "crossmodal.index.ids": {"crossmodal.backends.spec"}, "crossmodal.backends.spec": set(),
             "crossmodal.index.reads": set(),
             "crossmodal.search.ranking": {"crossmodal.index.reads", "crossmodal.search.fusion"},
             "crossmodal.search.fusion": set()}
    assert upward_imports(graph, CORE_LAYERS) == ["crossmodal.index.ids -> crossmodal.backends.spec",  # same layer
                                                  "crossmodal.media.decoding -> crossmodal.index.reads"]
    graph["crossmodal.index.reads"] = {"crossmodal.library.scan"}  # the index reaching up into the library
    graph["crossmodal.library.scan"] = set()
    assert "crossmodal.index.reads -> crossmodal.library.scan" in upward_imports(graph, CORE_LAYERS)

"""The package's import graph: no cycle anywhere, and no module importing from a layer above it.

Every ``import`` / ``from ... import`` of ``zero123`` code counts, at module level or inside a
function (a lazy import is still a dependency); imports under ``if TYPE_CHECKING:`` do not (they
never run). ``from . import metrics`` is an import of ``zero123.eval.metrics``, not of the package.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "zero123"

#: Layers, lowest first: a unit (top-level module or subpackage) may import its own layer or lower.
#: New units must be placed here (the test says so).
LAYERS: dict[str, int] = {
    # 0: foundations that import no other zero123 unit (zero123 itself is a lazy facade)
    "zero123": 0, "zero123.assets": 0, "zero123.utils": 0, "zero123.devices": 0, "zero123.camera": 0,
    "zero123.schedule": 0, "zero123.image_io": 0,
    # 1: models and pure image / geometry work
    "zero123.models": 1, "zero123.preprocess": 1, "zero123.render": 1,
    # 2: checkpoints return components, never a pipeline
    "zero123.checkpoints": 2,
    # 3: the pipeline
    "zero123.pipeline": 3,
    # 4: use-cases on one pipeline, and the datasets
    "zero123.loading": 4, "zero123.nvs": 4, "zero123.data": 4,
    # 5: long jobs built from those
    "zero123.train": 5, "zero123.eval": 5, "zero123.threed": 5,
    # 6: front ends over the library
    "zero123.batch": 6, "zero123.app": 6,
    # 7: the command line, over everything
    "zero123.cli": 7,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def import_graph() -> dict[str, set[str]]:
    """``module -> {zero123 modules it imports}`` for every module of the package."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_nodes(tree)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    dep = sub if sub in paths else target
                    if dep in paths and dep != mod:
                        graph[mod].add(dep)
            elif isinstance(node, ast.Import):
                graph[mod] |= {a.name for a in node.names if a.name in paths and a.name != mod}
        graph.setdefault(mod, set())
    return graph


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    """The reader sees real edges (so the checks below cannot pass on an empty graph)."""
    graph = import_graph()
    assert "zero123.checkpoints" in graph["zero123.pipeline"]  # from_pretrained's lazy import
    assert "zero123.camera" in graph["zero123.train.data"]
    assert "zero123.eval.metrics" in graph["zero123.eval.runner"]  # `from . import metrics as M`
    assert not graph["zero123"], "the package facade must stay lazy (names resolved by importlib)"


def test_no_import_cycle():
    cycles = _cycles(import_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_cycle_detector_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} (layer {LAYERS[_unit(m)]}) imports {d} (layer {LAYERS[_unit(d)]})"
        for m, deps in graph.items() for d in deps if LAYERS[_unit(d)] > LAYERS[_unit(m)]
    )


def test_no_module_imports_from_a_layer_above():
    graph = import_graph()
    unknown = sorted({_unit(m) for m in graph} - set(LAYERS))
    assert not unknown, f"place these units in LAYERS (tests/test_import_graph.py): {unknown}"
    upward = _upward(graph)
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_upward_import_is_reported():
    """What the old cycle looked like: checkpoints importing the pipeline."""
    graph = {"zero123.checkpoints.load": {"zero123.pipeline"}, "zero123.pipeline": {"zero123.checkpoints.load"}}
    assert _upward(graph) == ["zero123.checkpoints.load (layer 2) imports zero123.pipeline (layer 3)"]
    assert _cycles(graph)


@pytest.mark.parametrize("low,high", [("zero123.checkpoints", "zero123.pipeline"), ("zero123.camera", "zero123.models")])
def test_layer_order_of_the_known_pairs(low, high):
    """checkpoints return components (the pipeline builds from them), the camera core needs no model."""
    assert LAYERS[low] < LAYERS[high]

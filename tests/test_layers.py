"""The package's layers: a module may import its own layer and the layers below it, never one above or beside it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "yolo_prune"

# The foundation: plain modules at the package root that every layer may use (no torch, no Ultralytics).
FOUNDATION = ("yolo_prune._version", "yolo_prune.errors", "yolo_prune.checks", "yolo_prune.atomic", "yolo_prune.cache")
# Rank of each layer; a module may import modules of a lower rank, or of its own layer (the same folder).
LAYERS = {
    "foundation": 0,
    "yolo_prune.pruning": 1,
    "yolo_prune.data": 1,
    "yolo_prune.train": 2,
    "yolo_prune.deploy": 2,
    "yolo_prune.app": 3,
    "yolo_prune.__main__": 4,
}


def layer_of(module: str) -> str:
    """The layer a dotted module name belongs to (its longest prefix in LAYERS)."""
    if any(module == name or module.startswith(name + ".") for name in FOUNDATION):
        return "foundation"
    matches = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    if not matches:
        raise KeyError(f"{module} belongs to no layer: add its folder to LAYERS")
    return max(matches, key=len)


def imports_of(source: str, module: str) -> list[str]:
    """Every yolo_prune module that `source` imports, at the top or inside functions."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from yolo_prune.app import plots` imports the module yolo_prune.app.plots
            found += [f"{node.module}.{alias.name}" for alias in node.names] if node.module in LAYERS else []
            found.append(node.module)
    return [name for name in found if name.split(".")[0] == "yolo_prune"]


def violations(sources: dict[str, str]) -> list[str]:
    """`importer imports imported` for every import that goes up or sideways across layers."""
    bad = []
    for module, source in sources.items():
        own = layer_of(module)
        for imported in imports_of(source, module):
            if imported == "yolo_prune":
                bad.append(f"{module} imports the package root (its names load lazily from the layers)")
                continue
            target = layer_of(imported)
            if target != own and LAYERS[target] >= LAYERS[own]:
                bad.append(f"{module} ({own}) imports {imported} ({target})")
    return bad


def package_sources() -> dict[str, str]:
    sources = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name != "yolo_prune":  # the root only re-exports, lazily, by module name
            sources[name] = path.read_text(encoding="utf-8")
    return sources


def test_no_module_imports_a_layer_above_or_beside_its_own():
    sources = package_sources()
    assert len(sources) > 30  # the walk found the package
    assert violations(sources) == []


def test_the_check_catches_upward_sideways_and_root_imports():
    sources = {
        "yolo_prune.pruning.prune": "from yolo_prune.app.render import render_table\n",
        "yolo_prune.train.finetune": "def f():\n    from yolo_prune.deploy import export\n",
        "yolo_prune.data.convert": "import yolo_prune\n",
        "yolo_prune.app.cli": "from yolo_prune.pruning.prune import prune\nfrom yolo_prune.app import render\n",
    }
    assert violations(sources) == [
        "yolo_prune.pruning.prune (yolo_prune.pruning) imports yolo_prune.app.render (yolo_prune.app)",
        "yolo_prune.train.finetune (yolo_prune.train) imports yolo_prune.deploy.export (yolo_prune.deploy)",
        "yolo_prune.train.finetune (yolo_prune.train) imports yolo_prune.deploy (yolo_prune.deploy)",
        "yolo_prune.data.convert imports the package root (its names load lazily from the layers)",
    ]


def test_every_lazy_name_of_the_package_root_resolves():
    import yolo_prune

    for name in yolo_prune.__all__:
        assert getattr(yolo_prune, name) is not None, name


def import_cycles(sources: dict[str, str]) -> list[list[str]]:
    """Every cycle of imports between the package's modules (each once, from its smallest name), at the top or
    inside functions: a function-level import that closes a circle still ties the two modules into one."""
    graph = {module: sorted(set(imports_of(source, module)) & set(sources)) for module, source in sources.items()}
    cycles: list[list[str]] = []

    def walk(path: list[str]) -> None:
        for nxt in graph[path[-1]]:
            if nxt == path[0]:
                cycles.append(list(path))
            elif nxt not in path and nxt > path[0]:
                walk([*path, nxt])

    for start in sorted(graph):
        walk([start])
    return cycles


def test_no_two_modules_import_each_other_even_through_others():
    assert import_cycles(package_sources()) == []


def test_the_cycle_check_finds_a_circle_closed_inside_a_function():
    sources = {
        "yolo_prune.pruning.a": "from yolo_prune.pruning.b import f\n",
        "yolo_prune.pruning.b": "def f():\n    from yolo_prune.pruning.c import g\n",
        "yolo_prune.pruning.c": "from yolo_prune.pruning import a\n",
        "yolo_prune.pruning.d": "from yolo_prune.pruning.a import x\n",
    }
    assert import_cycles(sources) == [["yolo_prune.pruning.a", "yolo_prune.pruning.b", "yolo_prune.pruning.c"]]

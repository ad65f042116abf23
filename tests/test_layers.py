"""Imports point down: a module may import its own package or a lower layer, never a sibling or a
higher one (the architecture contract; docs/layout.md). Parsed from the source, so a lazy import
inside a function counts too."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Lowest first. A unit is a top-level module or package of mstdeploy.
LAYERS = [
    {"errors"},
    {"faults"},                          # failed writes and allocations as one line
    {"atomic", "progress", "machine"},   # files, progress bars, memory and devices
    {"ir", "data", "distributed"},       # the graph format; data sets; torchrun ranks
    {"loihi"},                           # Loihi's arithmetic, on the graph
    {"models"},                          # torch models (may train on Loihi's grid)
    {"export", "simulate", "backends"},  # models -> graph; graph -> runs
    {"compare"},                         # above both backends: parity, playback, energy
    {"api"},                             # the Python API: every step as a function
    {"demo"},
    {"commands"},
    {"cli"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
SKIP = {"tests", "bench", "docs", ".venv", "runs", "build", "examples"}   # examples: users of the API


def modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SKIP or rel.name == "__init__.py" and len(rel.parts) == 1:
            continue
        yield rel, ["mstdeploy", *rel.with_suffix("").parts]


def imported(tree: ast.AST, name: list[str], is_package: bool):
    """mstdeploy modules named by the imports of one module (relative ones resolved)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".") for a in node.names if a.name.startswith("mstdeploy"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name if is_package else name[:-1]
                base = base[:len(base) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.startswith("mstdeploy"):
                target = node.module.split(".")
            else:
                continue
            if node.module is None:                     # from . import a, b
                yield from (target + [a.name] for a in node.names)
            else:
                yield target


def edges():
    for rel, name in modules():
        tree = ast.parse((ROOT / rel).read_text())
        for target in imported(tree, name, rel.name == "__init__.py"):
            if len(target) > 1:
                yield str(rel), name[1], target[1]


def test_every_unit_has_a_layer():
    units = {name[1] for _, name in modules()}
    assert units <= set(LAYER), sorted(units - set(LAYER))


def test_imports_point_down():
    upward = [f"{where}: {src} (layer {LAYER[src]}) imports {dst} (layer {LAYER.get(dst)})"
              for where, src, dst in edges() if src != dst and LAYER.get(dst, 99) >= LAYER[src]]
    assert not upward, "\n".join(upward)


def test_the_check_sees_imports():
    # the parser resolves relative imports: the engine imports the IR and Loihi's plan
    found = {(s, d) for w, s, d in edges() if w == "simulate/engine.py"}
    assert {("simulate", "ir"), ("simulate", "loihi")} <= found
    assert ("cli", "errors") in {(s, d) for _, s, d in edges()}

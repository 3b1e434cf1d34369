"""The package's import structure: no cycles, and imports point down the layers the README states
(cli -> search -> results -> train/zero_cost -> cost/data/export -> nn/space -> arch -> base).
Function-level (lazy) imports count: a cycle hidden in a function is still a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ghostnas"

# lowest first; a module may import from its own layer or any layer below
LAYERS = [
    {"errors", "defaults", "io", "machine", "idx", "device_runner"},
    {"arch"},
    {"space", "nn"},
    {"cost", "data", "stream", "export"},  # latency timing uses export's ONNX / TFLite writers
    {"train", "zero_cost", "supernet"},
    {"results"},
    {"search"},
    {"cli", "__main__", ""},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if name else []
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
                stem = "ghostnas" + ("." + stem if stem else "")
            else:
                stem = node.module or ""
            targets = [f"{stem}.{a.name}" for a in node.names] + [stem]
        for t in targets:
            if t == "ghostnas" or t.startswith("ghostnas."):
                local = t[len("ghostnas."):] if t != "ghostnas" else ""
                while local and local not in known:  # `from .x import name`: the module is x
                    local = local.rpartition(".")[0]
                if local in known and local != name:
                    out.add(local)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def layer_of(name: str) -> int:
    top = name.split(".")[0]
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"ghostnas.{name} is in no layer: add it to LAYERS (and to the README's layout)")


def test_every_module_is_placed_in_a_layer():
    for name in modules():
        layer_of(name)


def test_imports_point_down_the_layers():
    g = graph()
    upward = sorted(f"{a} -> {b}" for a, deps in g.items() for b in deps
                    if a and layer_of(b) > layer_of(a))
    assert not upward, "imports against the layer order: " + ", ".join(upward)


def test_no_import_cycles():
    g = graph()
    g = {a: {b for b in deps if b != ""} for a, deps in g.items()}  # the package's __init__ is a facade
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(g.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(cycles)


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    """The analysis itself: a function-level import that closes a loop is found."""
    pkg = tmp_path / "ghostnas"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "arch.py").write_text("def f():\n    from .space import x\n")
    (pkg / "space.py").write_text("from .arch import f\nx = 1\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    g = graph()
    assert g["arch"] == {"space"} and g["space"] == {"arch"}

"""The house rules, checked on the source: packages import only downward, nothing imports
itself back (imports inside functions count), production code never loads fixture writers,
and the metrics stay light. A newcomer who adds an upward import sees which rule and where."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Each top-level package and the project packages it may import (itself always allowed).
# dataengine is the engine; converters and vlm (the model layer train and eval share) sit on
# it; curricula sits on vlm (exact lengths need the model's tokenizer and chat format); demo
# drives everything.
LAYERS = {
    "dataengine": set(),
    "converters": {"dataengine"},
    "vlm": {"dataengine"},
    "curricula": {"dataengine", "vlm"},
    "train": {"dataengine", "curricula", "vlm"},
    "eval": {"dataengine", "curricula", "vlm"},
    "demo": {"dataengine", "converters", "curricula", "vlm", "train", "eval"},
}
# The engine discovers converters by walking this namespace package; it never names a dataset.
PLUGIN_NAMESPACE = "converters"
# Narrower rules inside a package: prefix -> project prefixes it must not import.
FORBIDDEN = {
    "eval.metrics": ("vlm", "train", "curricula", "eval.predictor", "eval.runner", "eval.cli"),
    "curricula.spec": ("curricula.loader",),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    mods = {}
    for pkg in LAYERS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            mods[module_name(path)] = path
    return mods


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in the file (module level or inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = {id(n) for block in ast.walk(tree) if _type_checking_block(block) for n in ast.walk(block)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan; the import graph is
    shallow, so recursion is fine)."""
    index, low, stack, out = {}, {}, [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for child in sorted(edges.get(node, ())):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            comp = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(comp) > 1:
                out.append(sorted(comp))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return out


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "import cycles (imports inside functions count):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_packages_import_only_downward():
    bad = []
    for name, targets in graph().items():
        top = name.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other != top and other not in LAYERS[top] and target != PLUGIN_NAMESPACE:
                bad.append(f"{name} imports {target} ({top} may import {sorted(LAYERS[top]) or 'nothing else'})")
            for prefix, banned in FORBIDDEN.items():
                if (name == prefix or name.startswith(prefix + ".")) and target.startswith(banned):
                    bad.append(f"{name} imports {target} ({prefix} must not import {', '.join(banned)})")
    assert not bad, "\n".join(sorted(bad))


def test_engine_imports_no_dataset():
    """The engine finds converters by walking the `converters` namespace, never by name."""
    bad = [f"{n} imports {t}" for n, ts in graph().items() if n.split(".")[0] == "dataengine"
           for t in ts if t.split(".")[0] == PLUGIN_NAMESPACE and t != PLUGIN_NAMESPACE]
    assert not bad, "\n".join(bad)


def test_fixture_writers_stay_out_of_production_code():
    def is_fixture(mod: str) -> bool:  # a dataset's fixture writer, e.g. converters.waymo.fixture
        leaf = mod.rpartition(".")[2]
        return mod.startswith("converters.") and (leaf.startswith("fixture") or leaf.endswith("_fixture"))

    bad = [f"{n} imports {t}" for n, ts in graph().items()
           if not is_fixture(n) and n.split(".")[0] not in ("demo",) for t in ts if is_fixture(t)]
    assert not bad, "\n".join(sorted(bad))


def test_the_graph_sees_function_level_imports(tmp_path):
    """The checker itself: an import inside a function is an edge, a TYPE_CHECKING one is not."""
    src = tmp_path / "m.py"
    src.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import b\n"
                   "def f():\n    from a import x\n")
    modules = {"m": src, "a": src, "b": src}
    assert imports_of("m", src, modules) == {"a"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_importing_the_metrics_loads_no_model_code():
    code = ("import sys, eval.metrics; heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'transformers', 'deepspeed', 'vlm', 'train'}); print(heavy); sys.exit(bool(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"import eval.metrics loaded {proc.stdout.strip()} {proc.stderr[-500:]}"

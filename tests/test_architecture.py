"""The layers of docs/architecture.md, checked on the source: every ``workbench`` import of every
module goes to a layer the module's layer may use, and a method never imports another method."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench

ROOT = Path(workbench.__file__).parent
#: Layer -> the layers its modules may import (besides their own). A method folder's modules may
#: use everything below ``methods`` plus the shared framework above it (analysis, study, viz) but
#: never another method, play, the app or the CLI.
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "flow": {"core", "data"},
    "frames": {"core", "data", "flow"},
    "engine": {"core"},
    "analysis": {"core", "data", "flow", "frames", "engine"},
    "viz": {"core", "data", "flow", "analysis"},
    "study": {"core", "data", "flow", "frames", "engine", "analysis", "viz"},
    "methods": {"core", "data", "flow", "frames", "engine", "analysis", "study", "viz"},
    "play": {"core", "data", "flow", "frames", "engine", "analysis", "viz", "methods"},
}
#: Modules that sit above every method on purpose: the batch over all studies, the main job.
ABOVE_METHODS = {"workbench.study.findings"}


def _imports(source: str, module: str) -> list[str]:
    """Absolute names of the ``workbench`` modules the code ``source`` of file ``module`` imports."""
    package = module.split(".")[:-1]
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if node.module is None:  # from . import a, b
                names += [f"{target}.{a.name}" for a in node.names]
            else:
                names.append(target)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return [n for n in names if n.split(".")[0] == "workbench"]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_imports_only_the_layers_below_it():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        module = name.removesuffix(".__init__")
        layer = _layer(module)
        if layer not in ALLOWED or module in ABOVE_METHODS:
            continue  # app, cli, notebooks and the top-level package may import anything
        for target in _imports(path.read_text(), name):
            other = _layer(target)
            if not (ROOT / other).is_dir() and not (ROOT / f"{other}.py").is_file():
                continue  # an attribute of the package itself (workbench.__version__)
            if other == layer:
                if layer == "methods" and target.split(".")[2:3] != module.split(".")[2:3] and len(target.split(".")) > 2:
                    wrong.append(f"{module} imports another method: {target}")
                continue
            if other not in ALLOWED[layer]:
                wrong.append(f"{module} ({layer}) imports {target} ({other})")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_wrong_import():
    module = "workbench.engine.probe"
    assert _imports("from ..methods.idm import model\nfrom . import ids\n", module) == [
        "workbench.methods.idm", "workbench.engine.ids"]
    assert "methods" not in ALLOWED[_layer(module)]

"""The layout holds: framework imports stay in the HTTP layer, no import cycles, no model list."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICE = REPO_ROOT / "service"
FRAMEWORKS = ("fastapi", "starlette")
ALLOWED_FRAMEWORK_IMPORTERS = ("service/http/", "service/app.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


SOURCES = sorted(SERVICE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_only_the_http_layer_and_the_app_factory_import_the_web_framework(path):
    relative = str(path.relative_to(REPO_ROOT))
    framework = {m for m in imports_of(path) if m.split(".")[0] in FRAMEWORKS}
    if not relative.startswith(ALLOWED_FRAMEWORK_IMPORTERS):
        assert framework == set(), f"{relative} imports {sorted(framework)}"


def test_there_are_no_import_cycles_in_the_service():
    modules = {module_name(path): path for path in SOURCES}
    graph = {
        name: {m for m in imports_of(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ importing its own submodules is not a cycle of the layers.
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_layers_depend_downwards_only():
    """http, rpc -> protocol -> serving -> models -> imaging; nothing below imports what
    is above it, and neither front end imports the other."""
    order = [
        "service.http",
        "service.rpc",
        "service.protocol",
        "service.serving",
        "service.models",
        "service.imaging",
    ]
    for path in SOURCES:
        name = module_name(path)
        own = next((i for i, layer in enumerate(order) if name.startswith(layer)), None)
        if own is None:
            continue
        for imported in imports_of(path):
            other = next((i for i, layer in enumerate(order) if imported.startswith(layer)), None)
            assert other is None or other >= own, f"{name} imports {imported}"
            fronts = {order[own], order[other] if other is not None else None}
            assert fronts != {"service.http", "service.rpc"}, f"{name} imports {imported}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_the_service_has_no_list_of_model_names(path):
    """Models are discovered: no model name is listed, compared with or looked up in the code.

    (A reply may still have a ``"digit"`` key: that is the image kind's answer, not a name.)
    """
    names = {"pass", "digit", "points", "digits"}
    tree = ast.parse(path.read_text())
    examples = {
        id(k.value) for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "examples"
    }
    for node in ast.walk(tree):
        if id(node) in examples:
            continue  # OpenAPI examples may show a model's name
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            values = node.elts
        elif isinstance(node, ast.Compare):
            values = [node.left, *node.comparators]
        elif isinstance(node, ast.Subscript):
            values = [node.slice]
        else:
            continue
        used = {v.value for v in values if isinstance(v, ast.Constant)} & names
        assert not used, f"{path.name}:{node.lineno} names models {sorted(used)}"

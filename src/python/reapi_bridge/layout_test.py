"""The package's shape, read from its source: who may import whom.

- a module that is not a test imports nothing from a test module or from the test harnesses
  (`reapi_bridge_testing`), so neither ever reaches the pex;
- a gRPC service module (`<concern>/service.py`, `<concern>/*_service.py`) imports only its
  own concern's folder, `common/` and the generated `protos/`: the logic lives in plain objects;
- storage knows nothing of scheduling or execution, the scheduler nothing of how an executor
  runs a process;
- the import graph (every import, including those inside functions) has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

PACKAGE = "reapi_bridge"
ROOT = Path(__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_test(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last.endswith("_test") or last == "conftest"


def project_modules() -> Dict[str, Path]:
    return {
        module_name(p): p
        for p in ROOT.rglob("*.py")
        if "protos" not in p.relative_to(ROOT).parts and "__pycache__" not in p.parts
    }


def imports_of(path: Path, modules: Set[str]) -> Set[str]:
    """The project modules (and harness modules) that `path` imports, anywhere in it."""
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: List[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.startswith("reapi_bridge_testing"):
                found.add(name)
            elif name in modules:
                found.add(name)
    return found


def graph() -> Dict[str, Set[str]]:
    modules = project_modules()
    names = set(modules)
    return {m: imports_of(p, names) - {m} for m, p in modules.items()}


def concern(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else ""


def test_products_import_no_tests_or_harnesses():
    bad = {
        m: sorted(i for i in deps if i.startswith("reapi_bridge_testing") or is_test(i))
        for m, deps in graph().items()
        if not is_test(m)
    }
    assert {m: d for m, d in bad.items() if d} == {}


def test_services_import_only_their_concern_and_common():
    bad = {}
    for m, deps in graph().items():
        last = m.rsplit(".", 1)[-1]
        if is_test(m) or not (last == "service" or last.endswith("_service")):
            continue
        allowed = (f"{PACKAGE}.{concern(m)}", f"{PACKAGE}.common", f"{PACKAGE}.protos")
        wrong = sorted(d for d in deps if not d.startswith(allowed))
        if wrong:
            bad[m] = wrong
    assert bad == {}


def test_layers():
    rules = {
        # concern: concerns it must not import
        "common": {"cas", "actioncache", "execution", "scheduler", "bots", "status", "executor", "client"},
        "cas": {"actioncache", "execution", "scheduler", "bots", "status", "executor", "client"},
        "actioncache": {"execution", "scheduler", "bots", "status", "executor", "client"},
        "scheduler": {"cas", "actioncache", "execution", "bots", "status", "executor", "client"},
        "client": {"cas", "actioncache", "execution", "scheduler", "bots", "status", "executor"},
        "executor": {"cas", "actioncache", "execution", "scheduler", "bots", "status"},
    }
    bad = {}
    for m, deps in graph().items():
        if is_test(m) or concern(m) not in rules:
            continue
        wrong = sorted(d for d in deps if concern(d) in rules[concern(m)])
        if wrong:
            bad[m] = wrong
    assert bad == {}


def test_import_graph_has_no_cycle():
    g = graph()
    state: Dict[str, int] = {}  # 1 on the stack, 2 done
    cycles: List[List[str]] = []

    def visit(m: str, path: List[str]) -> None:
        state[m] = 1
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d] if d in path else [m, d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_the_checks_see_the_package():
    # Guards the checks above against passing vacuously on an empty or misread tree.
    g = graph()
    assert f"{PACKAGE}.execution.service" in g
    assert f"{PACKAGE}.common.digests" in g[f"{PACKAGE}.cas.store"]
    assert any(is_test(m) for m in g)

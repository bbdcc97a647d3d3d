"""The shape of the code: no import cycles, one owner per key layout, no reaching into `__main__`."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from testbed.procs import ROOT

PACKAGES = {
    "fleetdeck_common": ROOT / "common" / "fleetdeck_common",
    "fleetdeck_gateway": ROOT / "gateway" / "fleetdeck_gateway",
    "fleetdeck_agent": ROOT / "cpu-agent" / "fleetdeck_agent",
    "fleetdeck_worker": ROOT / "exec-worker" / "fleetdeck_worker",
    "fleetdeck": ROOT / "src" / "fleetdeck",
}
KEY_OWNERS = {
    "fleetdeck_common.jobs.keys",
    "fleetdeck_common.hoststore",
    "fleetdeck_common.history.store",
    "fleetdeck_common.chatstore",
    "fleetdeck_common.auditstore",
    "fleetdeck_gateway.auth.sessions",
    "fleetdeck_gateway.alerts.outbox",
    "fleetdeck_gateway.alerts.store",
    "fleetdeck_common.terms.store",
    "fleetdeck_common.filestore",
}


def _modules() -> Iterator[tuple[str, Path]]:
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def _imports(name: str, path: Path) -> set[str]:
    """Modules `name` imports (anywhere in the file), resolved to module names."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = dict(_modules())
    return {
        name: {m for m in _imports(name, path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, " -> ".join([*visiting[visiting.index(module) :], module])
        visiting.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert len(done) > 40  # the walk really saw the packages


def test_nothing_imports_another_packages_main() -> None:
    for name, imported in _graph().items():
        mains = {m for m in imported if m.endswith(".__main__")}
        assert not mains, f"{name} imports {mains}"


def test_only_the_stores_build_keys() -> None:
    """Key names are built in one place per layout; channel names live in `topics`."""
    offenders = []
    scanned = [
        *_modules(),
        *((p.stem, p) for p in (ROOT / "tests").rglob("*.py")),
        *((p.stem, p) for p in (ROOT / "bench").rglob("*.py")),
        *((p.stem, p) for p in (ROOT / "testbed").rglob("*.py")),
    ]
    for name, path in scanned:
        if name in KEY_OWNERS or path.name == "test_layout.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            calls_key = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "key"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "topics"
            )
            names_a_key = (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.match(r"fleetdeck:[\w{]", node.value) is not None
            )
            uses_the_prefix = isinstance(node, ast.Attribute) and node.attr == "PREFIX"
            if calls_key or names_a_key or uses_the_prefix:
                offenders.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")
    assert offenders == []


def test_the_key_owners_are_where_this_test_looks() -> None:
    modules = dict(_modules())
    assert set(modules) >= KEY_OWNERS
    for owner in KEY_OWNERS:
        assert "topics.key(" in modules[owner].read_text(), owner


def test_the_layers_import_only_downwards() -> None:
    """bench/ and testbed/ never import tests; the services and the CLI import neither of them."""
    never = {
        "bench": {"tests"},
        "testbed": {"tests", "bench"},
        **{str(folder.relative_to(ROOT)): {"tests", "testbed", "bench"} for folder in PACKAGES.values()},
    }
    offenders = []
    for folder, banned in never.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            tops = {module.split(".")[0] for module in _imports(folder.replace("/", "."), path)}
            offenders += [f"{path.relative_to(ROOT)} imports {top}" for top in sorted(tops & banned)]
    assert offenders == []

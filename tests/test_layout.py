"""The tree keeps its layers: no import circles, imports point down, clients stay clients.

Every import is counted, also those under ``TYPE_CHECKING`` and inside functions: a
circle hidden in a function is still a circle a reader has to untangle. The rules:

- ``ledger/`` imports nothing of ours above it (it is the pure core);
- ``wire/`` (status details, TLS, the errors servers and clients share) imports only ``ledger``;
- ``services/`` never imports ``clients/``;
- ``clients/`` imports no server internals: only the node entry points (``services.run``),
  the local network's set-up and launcher (``services.network``) and the node config
  file format (``services.common.config``), which testers and the CLI drive;
- ``clients/sdk`` uses only the generated protobuf code, ``wire`` and the error hierarchy
  (``ledger.errors``), so it raises the same errors as the servers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ledger", "services", "clients", "wire")

CLIENT_MAY_USE = ("services.run", "services.network", "services.common.config")
SDK_MAY_USE = ("clients.sdk", "wire", "ledger.errors")


def modules_of(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The project modules ``name`` imports, resolved to the modules that exist."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from package import module`` imports that module; anything else, the package
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def import_graph(root: Path) -> dict[str, set[str]]:
    known = modules_of(root)
    return {name: set(imports_of(name, path, known)) for name, path in known.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def broken_rules(graph: dict[str, set[str]]) -> list[str]:
    broken = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            layer, target_layer = source.split(".")[0], target.split(".")[0]
            if layer == "ledger" and target_layer != "ledger":
                broken.append(f"{source} -> {target}: ledger/ is the pure core")
            elif layer == "wire" and target_layer not in ("wire", "ledger"):
                broken.append(f"{source} -> {target}: wire/ sits below services and clients")
            elif layer == "services" and target_layer == "clients":
                broken.append(f"{source} -> {target}: services/ never imports clients/")
            elif within(source, ("clients.sdk",)) and not within(target, SDK_MAY_USE):
                broken.append(f"{source} -> {target}: the SDK uses only wire and ledger.errors")
            elif (layer == "clients" and target_layer == "services"
                  and not within(target, CLIENT_MAY_USE)):
                broken.append(f"{source} -> {target}: clients/ imports no server internals")
    return broken


def test_no_import_circles() -> None:
    assert circles(import_graph(ROOT)) == []


def test_imports_follow_the_layers() -> None:
    assert broken_rules(import_graph(ROOT)) == []


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize("a_imports_b", [
    "from services.b import thing",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from services import b",
    "def later():\n    from .b import thing",
])
def test_a_circle_is_found_however_it_is_written(tmp_path: Path, a_imports_b: str) -> None:
    write(tmp_path, {
        "services/__init__.py": "",
        "services/a.py": a_imports_b,
        "services/b.py": "import services.c\n",
        "services/c.py": "from services.a import other\n",
    })
    assert circles(import_graph(tmp_path)) == [["services.a", "services.b", "services.c"]]


def test_a_client_reaching_into_a_server_is_found(tmp_path: Path) -> None:
    write(tmp_path, {
        "services/__init__.py": "",
        "services/validator/__init__.py": "",
        "services/validator/mempool.py": "",
        "services/run.py": "",
        "clients/__init__.py": "",
        "clients/cli.py": "from services import run\nfrom services.validator.mempool import X\n",
        "clients/sdk/__init__.py": "from services import run\n",
    })
    assert broken_rules(import_graph(tmp_path)) == [
        "clients.cli -> services.validator.mempool: clients/ imports no server internals",
        "clients.sdk -> services.run: the SDK uses only wire and ledger.errors",
    ]

"""Functional core, imperative shell: the pure packages never import kopf or a Kubernetes client."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "neuronfleet"
PURE = ("api", "neuron", "render", "autoscale", "sim", "placement")
SHELL_ONLY = ("kopf", "kubernetes", "kubernetes_asyncio")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_do_not_import_kopf_or_kube_clients(package: str):
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(imported_modules(path) & set(SHELL_ONLY))
        for path in (PACKAGE / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_there_is_no_top_level_operator_package():
    # A top-level package named `operator` would shadow Python's standard library module.
    assert not (PACKAGE.parent / "__init__.py").exists()

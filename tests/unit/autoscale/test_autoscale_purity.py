"""The functional core of the autoscaler stays free of I/O and clocks, so the simulator can run it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import neuronfleet.autoscale

PURE = (
    "types",
    "decide",
    "history",
    "defaults",
    "promql",
    "service_level",
    "capacity_fit",
    "feedback",
    "slo_policy",
    "slo_targets",
    "slo_status",
)
FORBIDDEN = {"time", "datetime", "asyncio", "aiohttp", "socket", "urllib", "kopf", "kubernetes", "random", "os"}
PACKAGE = Path(neuronfleet.autoscale.__file__).parent


@pytest.mark.parametrize("module", PURE, ids=[f"{m} imports no clock or i/o" for m in PURE])
def test_pure_modules_import_no_clock_or_io(module: str) -> None:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN


@pytest.mark.parametrize("module", [*PURE, "prometheus", "observe"])
def test_every_module_declares_what_it_exports(module: str) -> None:
    loaded = importlib.import_module(f"neuronfleet.autoscale.{module}")
    assert loaded.__doc__
    for name in loaded.__all__:
        assert hasattr(loaded, name), f"{module}.__all__ names missing {name}"

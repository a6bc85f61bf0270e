"""Session fixtures: one real CRD API server for all contract tests, CRDs from crds/ installed.

If the server cannot be obtained (no Debian mirror, build failure), every contract test is
SKIPPED with the build script's reason; it never passes silently. A server that was obtained but
fails to start, or a CRD the server refuses, is an error, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from contract import realapi
from support import crds

# The CRDs under test: crds/ by default; NEURONFLEET_CONTRACT_CRDS points at another directory
# (the Helm chart's copy, or a candidate fix) without touching the repository.
CRD_DIR = Path(os.environ.get("NEURONFLEET_CONTRACT_CRDS") or realapi.REPO / "crds")


def load_crds() -> list[dict[str, Any]]:
    return crds.load_crds(CRD_DIR)


@pytest.fixture(scope="session")
def real_api_bindir() -> Path:
    """The built server (cached by scripts/real-apiserver.sh); skip loudly when unobtainable."""
    try:
        return realapi.obtain_binaries()
    except realapi.ServerUnavailable as exc:
        pytest.skip(f"real Kubernetes API server unavailable, contract test NOT run: {exc}")


@pytest.fixture(scope="session")
def real_api(real_api_bindir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[realapi.RealApiServer]:
    """etcd + apiextensions-apiserver on free loopback ports, fresh data dir, CRDs installed."""
    workdir = tmp_path_factory.mktemp("realapi")
    with realapi.running_server(real_api_bindir, workdir) as server:
        crds = load_crds()
        with server.api_client() as api:
            try:
                realapi.install_crds(api, crds)
            except client.ApiException as exc:
                # The point of these tests: say plainly that a real cluster refuses our CRD.
                message = json.loads(exc.body or "{}").get("message", exc.reason)
                pytest.fail(f"a real Kubernetes API server rejected a CRD from {CRD_DIR}: {message}", pytrace=False)
        yield server


@pytest.fixture
def api(real_api: realapi.RealApiServer) -> Iterator[client.ApiClient]:
    with real_api.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace per test (the standalone server has no namespace objects: any name works)."""
    name = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")
    return name[:50].rstrip("-") + f"-{zlib.crc32(request.node.nodeid.encode()) % 10**6}"

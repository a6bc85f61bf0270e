"""pytest fixtures around the emulator; tests/integration/conftest.py imports them.

- ``emulator``: a ThreadedEmulator on 127.0.0.1 for the test, stopped afterwards.
- ``kube_api``: an official ``kubernetes`` ApiClient bound to it.
- ``emulator_kubeconfig``: a kubeconfig file for it (for kubectl and ``neuronfleet run``).
- ``emulator_login``: sets the URL variable that the kopf login handler file reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from emulator_support import api_client, emulator_url_env, running_emulator

from neuronfleet.kube_emulator import ThreadedEmulator, write_kubeconfig

__all__ = ["emulator", "emulator_kubeconfig", "emulator_login", "kube_api"]


@pytest.fixture
def emulator() -> Iterator[ThreadedEmulator]:
    with running_emulator() as emu:
        yield emu


@pytest.fixture
def kube_api(emulator: ThreadedEmulator) -> Iterator[kubernetes.client.ApiClient]:
    client = api_client(emulator)
    yield client
    client.close()


@pytest.fixture
def emulator_kubeconfig(emulator: ThreadedEmulator, tmp_path: Path) -> Path:
    return write_kubeconfig(tmp_path / "kubeconfig", emulator.url)


@pytest.fixture
def emulator_login(emulator: ThreadedEmulator) -> Iterator[ThreadedEmulator]:
    with emulator_url_env(emulator):
        yield emulator

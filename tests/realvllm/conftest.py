"""Session fixtures for the real-vLLM tests: the vLLM venv, the tiny model, one `vllm serve`.

Why it exists: starting vLLM costs ~50 s on 2 cores, so one server is shared by every test
in this directory and stopped by its process group after the last one, also when a test fails. If the
install script reports a registry outage the tests are skipped with the reason (and a banner
in the summary); any other install, build or startup failure fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from realvllm import vllm_support

__all__ = [
    "served_tiny_model",
    "tiny_model_dir",
    "vllm_env",
    "vllm_python",
]

_skipped_reasons: list[str] = []


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """The python of the cached vLLM venv; installs it on first use (~2.5 min)."""
    outcome = vllm_support.install_vllm()
    if outcome.python is not None:
        return outcome.python
    if outcome.outage:
        reason = f"real vLLM could not be installed (registry outage?): {outcome.reason}"
        _skipped_reasons.append(reason)
        pytest.skip(reason)
    pytest.fail(f"real vLLM install is broken: {outcome.reason}", pytrace=False)


@pytest.fixture(scope="session")
def vllm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return vllm_support.offline_env(tmp_path_factory.mktemp("vllm-home"))


@pytest.fixture(scope="session")
def tiny_model_dir(vllm_python: Path, vllm_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1.3 M-parameter Llama and tokenizer, built here, offline (~10 s)."""
    return vllm_support.build_tiny_model(vllm_python, tmp_path_factory.mktemp("tiny-model"), env=vllm_env)


@pytest.fixture(scope="package")
def served_tiny_model(
    vllm_python: Path,
    tiny_model_dir: Path,
    vllm_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[vllm_support.VllmServer]:
    """One `vllm serve` for all of tests/realvllm, max_num_seqs 8, 8 MiB of KV cache.

    Package scope: it stops (freeing ~2 GB and a reserved core) before the rest of a `pytest tests/` run.
    """
    log_path = tmp_path_factory.mktemp("vllm-log") / "vllm-serve.log"
    server = vllm_support.start_server(vllm_python, tiny_model_dir, log_path=log_path, env=vllm_env)
    print(f"\nvllm serve (pid {server.process.pid}) healthy after {server.startup_seconds:.1f} s")
    try:
        yield server
    finally:
        vllm_support.stop_process_group(server.process)
        if os.environ.get("NEURONFLEET_SHOW_VLLM_LOG"):
            print(server.log_tail(200))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Make a skipped real-vLLM run impossible to miss in CI logs."""
    for reason in dict.fromkeys(_skipped_reasons):
        terminalreporter.write_sep("!", "REAL vLLM TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(reason)

"""scripts/real-vllm.sh under a registry outage: a clear exit code, nothing half-installed.

The real-vLLM tests are skipped (loudly) only when the script says the registry failed, so
that exit code must be right. The outage is real as far as pip can tell: its index is a
loopback port nobody listens on and its config files (with this machine's local wheel
directories) are switched off, so nothing can be found anywhere.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from realvllm import vllm_support

pytestmark = pytest.mark.slow


def run_script(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    closed_port = vllm_support.free_port()  # nothing listens on it once the probe socket closes
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        NEURONFLEET_CACHE=str(cache),
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL=f"http://127.0.0.1:{closed_port}/simple",
    )
    return subprocess.run(
        ["bash", str(vllm_support.INSTALL_SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_an_unreachable_registry_exits_3_and_leaves_no_venv_behind(tmp_path: Path) -> None:
    result = run_script(tmp_path)
    assert result.returncode == vllm_support.EXIT_REGISTRY_OUTAGE, result.stderr
    assert "registry outage" in result.stderr
    assert result.stdout == ""
    (key_dir,) = [p for p in (tmp_path / "real-vllm").iterdir() if p.is_dir()]
    assert not (key_dir / "venv").exists()
    assert not (key_dir / "installed").exists()
    assert (key_dir / "pip.log").read_text(), "the full pip log is kept for the reader"


def test_print_only_reports_a_missing_install_without_installing(tmp_path: Path) -> None:
    result = run_script(tmp_path, "--print")
    assert result.returncode == 2
    assert "not installed" in result.stderr
    assert not (tmp_path / "real-vllm").exists()

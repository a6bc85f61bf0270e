"""What a user sees with kubectl 1.36 (Debian's build) against the real CRD API server.

kubectl needs root discovery, which the standalone server lacks, so it talks through
`front.py` (discovery merged, ModelDeployments on the real server). The printer columns, the
scale subresource and admission errors are what `kubectl get/scale/apply` show users.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from contract import md
from contract.front import running_front
from contract.realapi import REPO, RealApiServer
from contract.test_subresources import complete_status
from neuronfleet.kube_emulator import ThreadedEmulator, write_kubeconfig

pytestmark = pytest.mark.realapi


@pytest.fixture
def kubectl(
    real_api: RealApiServer, tmp_path: Path, namespace: str
) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    binary = real_api.bindir / "kubectl"
    if not binary.is_file():
        pytest.skip(f"no kubectl in {real_api.bindir} (rebuild with scripts/real-apiserver.sh)")
    with ThreadedEmulator() as emu, running_front(real_api.url, real_api.ssl_context(), emu.url) as front:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", front.url, namespace=namespace)

        def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
            proc = subprocess.run(
                [str(binary), f"--kubeconfig={kubeconfig}", f"--namespace={namespace}", *args],
                capture_output=True,
                text=True,
                timeout=60,
                env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            )
            if check and proc.returncode != 0:
                raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
            return proc

        yield run


def test_kubectl_get_md_prints_the_promised_columns_with_values(
    api: client.ApiClient, namespace: str, kubectl: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    md.create(api, namespace, md.make_md("llama"))
    md.patch_status(api, namespace, "llama", complete_status(1))
    lines = kubectl("get", "md").stdout.splitlines()
    assert lines[0].split() == ["NAME", "MODEL", "INSTANCE", "TP", "DESIRED", "READY", "TOKENS/S", "VARIANTS", "AGE"]
    assert lines[1].split()[:7] == [
        "llama",
        md.MINIMAL_SPEC["model"]["source"],
        "inf2.48xlarge",
        "8",
        "4",
        "2",
        "4321.5",
    ]
    wide = kubectl("get", "md", "-o", "wide").stdout.splitlines()
    assert "STATUS" in wide[0].split()


def test_kubectl_scale_changes_spec_replicas(
    api: client.ApiClient, namespace: str, kubectl: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    md.create(api, namespace, md.make_md("llama"))
    out = kubectl("scale", "md/llama", "--replicas=3").stdout
    assert "scaled" in out
    assert md.get(api, namespace, "llama")["spec"]["replicas"] == 3


def test_kubectl_apply_of_an_invalid_example_shows_the_server_message(
    kubectl: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    path = REPO / "examples" / "invalid" / "tp-3.yaml"
    proc = kubectl("apply", "--validate=false", "-f", str(path), check=False)
    assert proc.returncode != 0
    assert 'The ModelDeployment "bad-tp" is invalid' in proc.stderr
    assert "spec.neuron.tensorParallelSize: Unsupported value: 3" in proc.stderr


def test_kubectl_get_by_category_lists_model_deployments(
    api: client.ApiClient, namespace: str, kubectl: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """The CRD's categories (`all`, `neuronfleet`) reach kubectl through discovery."""
    md.create(api, namespace, md.make_md("llama"))
    out = kubectl("get", "neuronfleet", "-o", "name").stdout.split()
    assert out == ["modeldeployment.neuronfleet.io/llama"]

"""`neuronfleet render`: real planner, real renderer, the CLI's own argument parsing and exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neuronfleet import cli

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "llama3-8b-inf2.yaml"
INVALID = ROOT / "examples" / "invalid"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["render", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_renders_an_example_as_multi_document_yaml(capsys):
    code, out, err = run(capsys, "-f", str(EXAMPLE))
    assert (code, err) == (0, "")
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["Service", "PodDisruptionBudget", "Deployment", "PodMonitor"]
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    assert dep["spec"]["replicas"] == 1, "autoscaling is on: the preview uses minReplicas"
    assert dep["spec"]["template"]["spec"]["containers"][0]["args"][:3] == [
        "vllm",
        "serve",
        "meta-llama/Llama-3.1-8B-Instruct",
    ]
    assert out.startswith("---\n")


def test_json_output_is_a_kubernetes_list(capsys):
    code, out, _ = run(capsys, "-f", str(EXAMPLE), "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "List")
    assert len(doc["items"]) == 4


def test_reads_stdin_and_renders_every_model_deployment_in_it(capsys, monkeypatch):
    second = yaml.safe_load(EXAMPLE.read_text())
    second["metadata"]["name"] = "llama3-8b-canary"
    second["spec"]["monitoring"]["podMonitor"] = False
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hf-token"}}
    text = EXAMPLE.read_text() + "\n---\n" + yaml.safe_dump(secret) + "---\n" + yaml.safe_dump(second)
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code, out, _ = run(capsys, "-f", "-")
    assert code == 0
    docs = list(yaml.safe_load_all(out))
    assert sorted({d["metadata"]["name"] for d in docs}) == ["llama3-8b", "llama3-8b-canary"]
    assert "Secret" not in {d["kind"] for d in docs}, "other kinds are not ModelDeployments and are skipped"
    assert len(docs) == 4 + 3


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("negative-replicas.yaml", "spec.replicas"),
        ("missing-model.yaml", "spec.model"),
        ("tp-not-legal-on-trn2.yaml", "legal degrees: 1, 2, 4, 8, 16, 32, 64"),
        ("model-does-not-fit.yaml", "243.1 GiB"),
    ],
    ids=["schema error", "missing model", "planner error on TP", "planner error on memory"],
)
def test_invalid_input_exits_2_with_a_precise_message(capsys, name: str, message: str):
    code, out, err = run(capsys, "-f", str(INVALID / name))
    assert code == 2
    assert out == ""
    assert err.startswith("error: ModelDeployment ")
    assert message in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: [unclosed", "not valid YAML"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "no ModelDeployment found"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
    ids=["broken yaml", "no model deployment", "not a mapping"],
)
def test_unusable_files_exit_2(capsys, tmp_path: Path, content: str, message: str):
    path = tmp_path / "in.yaml"
    path.write_text(content)
    code, _, err = run(capsys, "-f", str(path))
    assert code == 2
    assert message in err


def test_a_missing_file_exits_2(capsys, tmp_path: Path):
    code, _, err = run(capsys, "-f", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read" in err


def test_the_cli_renders_in_a_fresh_process(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "neuronfleet.cli", "render", "-f", str(ROOT / "examples" / "llama33-70b-trn2.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(proc.stdout)]
    assert kinds == ["Service", "PodDisruptionBudget", "Deployment", "PodMonitor"]


def test_the_operator_default_allocation_can_be_previewed(capsys):
    code, out, err = run(capsys, "-f", str(ROOT / "examples" / "llama33-70b-trn2.yaml"), "--neuron-allocation", "dra")
    assert (code, err) == (0, "")
    kinds = [d["kind"] for d in yaml.safe_load_all(out)]
    assert kinds[:4] == ["Service", "PodDisruptionBudget", "ResourceClaimTemplate", "Deployment"]
    code, out, _ = run(capsys, "-f", str(ROOT / "examples" / "llama33-70b-trn2.yaml"))
    assert code == 0 and "ResourceClaimTemplate" not in [d["kind"] for d in yaml.safe_load_all(out)]


def test_a_model_too_large_for_one_node_renders_a_leaderworkerset(capsys):
    code, out, err = run(capsys, "-f", str(ROOT / "examples" / "llama31-405b-trn1-lws.yaml"))
    assert (code, err) == (0, "")
    assert [d["kind"] for d in yaml.safe_load_all(out)] == ["Service", "PodDisruptionBudget", "LeaderWorkerSet"]

"""`neuronfleet render --variants` and `--nodepool --capacity-type`, through the CLI's own parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neuronfleet import cli

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "llama3-8b-trn2-fallback.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list, str]:
    code = cli.main(["render", *argv])
    out, err = capsys.readouterr()
    return code, [d for d in yaml.safe_load_all(out) if d], err


def test_variants_adds_each_fallback_deployment_at_zero_replicas(capsys):
    code, docs, err = run(capsys, "-f", str(EXAMPLE), "--variants")
    assert (code, err) == (0, "")
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"llama3-8b", "llama3-8b-trn1-32xlarge", "llama3-8b-inf2-48xlarge"}
    assert deployments["llama3-8b-trn1-32xlarge"]["spec"]["replicas"] == 0


def test_nodepool_prints_a_nodepool_and_an_ec2nodeclass_with_the_capacity_types(capsys):
    code, docs, err = run(
        capsys, "-f", str(EXAMPLE), "--nodepool", "--capacity-type", "reserved", "--capacity-type", "on-demand"
    )
    assert (code, err) == (0, "")
    assert [d["kind"] for d in docs] == ["NodePool", "EC2NodeClass"]
    requirements = {r["key"]: r["values"] for r in docs[0]["spec"]["template"]["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"] == ["reserved", "on-demand"]
    assert requirements["node.kubernetes.io/instance-type"] == ["trn2.48xlarge", "trn1.32xlarge", "inf2.48xlarge"]
    assert "capacityReservationSelectorTerms" in docs[1]["spec"]


def test_the_default_capacity_type_is_on_demand(capsys):
    code, docs, _ = run(capsys, "-f", str(EXAMPLE), "--nodepool")
    assert code == 0
    requirements = {r["key"]: r["values"] for r in docs[0]["spec"]["template"]["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"] == ["on-demand"]


def test_an_unknown_capacity_type_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["render", "-f", str(EXAMPLE), "--nodepool", "--capacity-type", "preemptible"])
    assert exc.value.code == 2
    assert "invalid choice: 'preemptible'" in capsys.readouterr().err


def test_a_fallback_that_cannot_serve_exits_2_naming_the_fleet_and_the_variant(capsys, tmp_path: Path):
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["neuron"]["fallback"] = [{"instanceType": "trn1.2xlarge"}]
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, _, err = run(capsys, "-f", str(path), "--nodepool")
    assert code == 2
    assert err.startswith("error: ModelDeployment llama3-8b: spec.neuron.fallback[0] (trn1.2xlarge): ")

"""Golden files per child kind, and offline schema validation of every rendered built-in object.

The golden YAML under golden/<scenario>/<kind>.yaml is the reviewed output; a change in rendering
fails here until the files are rewritten on purpose with `UPDATE_GOLDEN=1 pytest tests/unit/render`
and the diff is reviewed. Built-in kinds are checked by kubernetes-validate against the Kubernetes
1.31 OpenAPI schemas in strict mode (unknown fields are errors); the PodMonitor, a custom resource
kubernetes-validate has no schema for, is checked in test_monitor.py; the LeaderWorkerSet against the LWS
API facts in test_leaderworkerset.py. ResourceClaimTemplates (resource.k8s.io/v1) are checked against
the Kubernetes 1.34 schemas, the first release that serves that version.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from neuronfleet.render import children
from neuronfleet.render.options import RenderOptions

from .scenarios import SCENARIOS

GOLDEN = Path(__file__).parent / "golden"
KUBERNETES_VERSION = "1.31.0"
DRA_KUBERNETES_VERSION = "1.34.0"  # resource.k8s.io/v1 is served from Kubernetes 1.34
BUILT_IN = {"Deployment", "Service", "PodDisruptionBudget", "ResourceClaimTemplate"}


def rendered(scenario: str) -> list[dict[str, Any]]:
    s = SCENARIOS[scenario]
    return children.desired(s.md, s.plan, replicas=s.replicas, options=RenderOptions())


CASES = [(name, obj["kind"]) for name in SCENARIOS for obj in rendered(name)]


def by_kind(scenario: str, kind: str) -> dict[str, Any]:
    (obj,) = [o for o in rendered(scenario) if o["kind"] == kind]
    return obj


@pytest.mark.parametrize(("scenario", "kind"), CASES, ids=[f"{s} {k} matches its golden file" for s, k in CASES])
def test_golden(scenario: str, kind: str):
    path = GOLDEN / scenario / f"{kind.lower()}.yaml"
    text = yaml.safe_dump(by_kind(scenario, kind), sort_keys=False)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path.name} missing: run UPDATE_GOLDEN=1 pytest tests/unit/render"
    assert text == path.read_text(), f"rendering drifted from {path}; review and rerun with UPDATE_GOLDEN=1"


def test_every_golden_file_is_still_rendered():
    expected = {GOLDEN / s / f"{k.lower()}.yaml" for s, k in CASES}
    assert set(GOLDEN.glob("*/*.yaml")) == expected


VALIDATE = [(s, k) for s, k in CASES if k in BUILT_IN]


@pytest.mark.parametrize(
    ("scenario", "kind"), VALIDATE, ids=[f"{s} {k} passes strict schema validation" for s, k in VALIDATE]
)
def test_built_in_objects_pass_strict_schema_validation(scenario: str, kind: str):
    version = DRA_KUBERNETES_VERSION if kind == "ResourceClaimTemplate" else KUBERNETES_VERSION
    kubernetes_validate.validate(by_kind(scenario, kind), version, strict=True)


def test_strict_validation_catches_an_unknown_field():
    """Guards the check above: a validator that accepted anything would make it worthless."""
    obj = by_kind("llama3-8b-inf2", "Deployment")
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)

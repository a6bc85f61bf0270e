"""Every example a user would copy is admitted by the CRD and renders; every invalid one is refused.

Admission is checked offline the way the API server does it: the generated CRD's
openAPIV3Schema with jsonschema's Draft 4 validator (OpenAPI v3.0 structural schemas are close
to draft 4), then, after applying the schema's defaults, the CRD's CEL rules
(`x-kubernetes-validations`) evaluated with cel-python. Valid examples then go through the real
planner and renderer, and the built-in objects through kubernetes-validate. Each file in
examples/invalid/ says in its header who rejects it (`# rejected-by: schema | cel | planner`)
and with which message; this test holds the files to their word.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import kubernetes_validate
import pytest
import yaml

from neuronfleet.api import convert, resource
from neuronfleet.errors import PlanError
from neuronfleet.neuron import planner
from neuronfleet.render import children
from neuronfleet.render.options import RenderOptions

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
INVALID = sorted((ROOT / "examples" / "invalid").glob("*.yaml"))
CRD = yaml.safe_load((ROOT / "crds" / "neuronfleet.io_modeldeployments.yaml").read_text())
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
BUILT_IN = {"Deployment", "Service", "PodDisruptionBudget", "ResourceClaimTemplate"}
# resource.k8s.io/v1 (DRA) is served from Kubernetes 1.34; the rest is checked against 1.31.
KUBERNETES_VERSION = {"ResourceClaimTemplate": "1.34.0"}
WORKLOADS = {"Deployment", "LeaderWorkerSet"}


def load_one(path: Path) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return doc


def schema_errors(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) of every structural-schema violation, as Draft 4 reports them."""
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    validator = jsonschema.Draft4Validator(SCHEMA)
    return [(".".join(map(str, e.absolute_path)), e.message) for e in validator.iter_errors(body)]


def apply_defaults(node: dict[str, Any], value: Any) -> Any:
    """Fill schema defaults into missing properties, recursively, as the API server does before CEL."""
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [apply_defaults(node["items"], v) for v in value]
    if not isinstance(value, dict) or node.get("type") != "object":
        return value
    out = dict(value)
    for name, child in node.get("properties", {}).items():
        if name not in out and "default" in child:
            out[name] = copy.deepcopy(child["default"])
        if name in out:
            out[name] = apply_defaults(child, out[name])
    return out


def cel_failures(node: dict[str, Any], value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, message) of every x-kubernetes-validations rule that does not hold on `value`."""
    failures: list[tuple[str, str]] = []
    env = celpy.Environment()
    for rule in node.get("x-kubernetes-validations", []):
        result = env.program(env.compile(rule["rule"])).evaluate({"self": celpy.json_to_cel(value)})
        if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            failures.append((path, rule["message"]))
    if isinstance(value, dict):
        for name, child in node.get("properties", {}).items():
            if name in value:
                failures += cel_failures(child, value[name], f"{path}.{name}" if path else name)
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            failures += cel_failures(node["items"], item, f"{path}[{i}]")
    return failures


def admission_cel_failures(obj: dict[str, Any]) -> list[tuple[str, str]]:
    spec_schema = SCHEMA["properties"]["spec"]
    return cel_failures(spec_schema, apply_defaults(spec_schema, obj["spec"]), "spec")


def header(path: Path) -> dict[str, str]:
    """`# key: value` lines of the leading comment block."""
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        match = re.match(r"#\s*(rejected-by|field|message):\s*(.+)$", line)
        if match:
            fields[match.group(1)] = match.group(2).strip()
    return fields


def test_the_documented_examples_exist():
    assert {p.name for p in EXAMPLES} >= {
        "llama3-8b-inf2.yaml",
        "llama33-70b-trn2.yaml",
        "gpt-oss-120b-trn2.yaml",
        "llama31-405b-trn1-lws.yaml",
        "llama33-70b-trn2-dra.yaml",
        "llama31-405b-trn2u-ultraserver.yaml",
    }


def _pod_specs(workload: dict[str, Any]) -> list[dict[str, Any]]:
    if workload["kind"] == "Deployment":
        return [workload["spec"]["template"]["spec"]]
    template = workload["spec"]["leaderWorkerTemplate"]
    return [template["leaderTemplate"]["spec"], template["workerTemplate"]["spec"]]


@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.name} passes the CRD schema and CEL rules" for p in EXAMPLES])
def test_examples_are_admitted_by_the_crd(path: Path):
    obj = load_one(path)
    assert schema_errors(obj) == []
    assert admission_cel_failures(obj) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[f"{p.name} plans and renders valid objects" for p in EXAMPLES])
def test_examples_plan_and_render(path: Path):
    md = resource.load(load_one(path))
    plan = planner.plan(convert.plan_request(md))
    objects = children.desired(md, plan, replicas=children.preview_replicas(md), options=RenderOptions())
    for obj in objects:
        if obj["kind"] in BUILT_IN:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION.get(obj["kind"], "1.31.0"), strict=True)
    (workload,) = [o for o in objects if o["kind"] in WORKLOADS]
    assert workload["kind"] == ("LeaderWorkerSet" if plan.multi_node else "Deployment")
    assert ("ResourceClaimTemplate" in {o["kind"] for o in objects}) == (plan.allocation == "dra")
    pods = _pod_specs(workload)
    for pod in pods:
        assert pod["nodeSelector"]["node.kubernetes.io/instance-type"] == md.spec.neuron.instance_type
    if md.spec.neuron.tensor_parallel_size:
        assert plan.tensor_parallel_size == md.spec.neuron.tensor_parallel_size
    assert ("PodMonitor" in {o["kind"] for o in objects}) == md.spec.monitoring.pod_monitor
    args = list(plan.args)
    if "--port" in args:  # the planner's port must be the one the probes, Service and PodMonitor use
        (container,) = pods[0]["containers"]
        assert int(args[args.index("--port") + 1]) == container["ports"][0]["containerPort"]


EXAMPLE_PLANS = {
    # file: (nodes per replica, TP, Neuron devices per pod, EFA devices per pod, allocation)
    "llama31-405b-trn1-lws.yaml": (4, 128, 16, 8, "devicePlugin"),
    "llama33-70b-trn2-dra.yaml": (1, 32, 8, 0, "dra"),
    "llama31-405b-trn2u-ultraserver.yaml": (4, 256, 16, 0, "dra"),
}


@pytest.mark.parametrize(
    "name", sorted(EXAMPLE_PLANS), ids=[f"{n} plans as its header says" for n in sorted(EXAMPLE_PLANS)]
)
def test_the_large_model_examples_plan_as_their_headers_say(name: str):
    md = resource.load(load_one(ROOT / "examples" / name))
    plan = planner.plan(convert.plan_request(md))
    nodes, tp, devices, efa, allocation = EXAMPLE_PLANS[name]
    assert (plan.nodes_per_replica, plan.tensor_parallel_size, plan.resource_count) == (nodes, tp, devices)
    assert (plan.efa_devices_per_pod, plan.allocation) == (efa, allocation)
    assert plan.memory_needed_bytes <= plan.memory_available_bytes


def test_the_slo_example_renders_the_slo_sized_prefill_chunk_into_the_pod():
    md = resource.load(load_one(ROOT / "examples" / "llama3-8b-trn2-slo.yaml"))
    plan = planner.plan(convert.plan_request(md))
    objects = children.desired(md, plan, replicas=children.preview_replicas(md), options=RenderOptions())
    (dep,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    command = [*container.get("command", []), *container.get("args", [])]
    assert command[command.index("--max-num-batched-tokens") + 1] == "608"


def test_the_invalid_set_covers_the_cases_the_issue_lists():
    assert {p.name for p in INVALID} >= {
        "unknown-instance-type.yaml",
        "tp-3.yaml",
        "min-above-max-replicas.yaml",
        "negative-replicas.yaml",
        "missing-model.yaml",
    }


@pytest.mark.parametrize("path", INVALID, ids=[f"{p.name} is rejected as its header says" for p in INVALID])
def test_invalid_examples_are_rejected_where_they_say(path: Path):
    meta = header(path)
    assert meta.get("rejected-by") in {"schema", "cel", "planner"}, f"{path.name} lacks a `# rejected-by:` line"
    obj = load_one(path)
    errors = schema_errors(obj)
    if meta["rejected-by"] == "schema":
        assert any(p == meta["field"] and meta["message"] in m for p, m in errors), errors
        with pytest.raises(ValueError):
            resource.load(obj)  # offline tools (`neuronfleet render`) refuse it too
        return
    assert errors == [], "should pass the structural schema"
    failures = admission_cel_failures(obj)
    if meta["rejected-by"] == "cel":
        assert (meta["field"], meta["message"]) in failures, failures
        with pytest.raises(ValueError, match=re.escape(meta["message"])):
            resource.load(obj)
        return
    assert failures == [], "should pass the CEL rules"
    md = resource.load(obj)
    with pytest.raises(PlanError) as exc:
        planner.plan(convert.plan_request(md))
    assert meta["message"] in str(exc.value)


def test_the_cel_check_is_not_vacuous():
    """A rule that must hold on a valid example fails once the example is broken."""
    obj = load_one(ROOT / "examples" / "llama3-8b-inf2.yaml")
    obj["spec"]["autoscaling"]["minReplicas"] = 99
    assert ("spec.autoscaling", "autoscaling.minReplicas must be <= autoscaling.maxReplicas") in (
        admission_cel_failures(obj)
    )

"""The LeaderWorkerSet of a fleet whose replicas span nodes, checked against the LWS API facts.

The upstream CRD cannot be copied in: tests/lws_facts.py writes down the LWS API as documented
(field names, enums, defaults), and every rendered LeaderWorkerSet must satisfy it, with its pod
templates validated as core/v1 PodTemplateSpecs by kubernetes-validate.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lws_facts
from neuronfleet.api import convert
from neuronfleet.neuron import planner
from neuronfleet.render import children, deployment, labels, leaderworkerset, names
from neuronfleet.render.options import RenderOptions

from .builders import make_md
from .scenarios import SCENARIOS

OPTIONS = RenderOptions()
KUBERNETES_VERSION = "1.34.0"


def lws_violations(obj: dict[str, Any]) -> list[str]:
    """Everything in `obj` that the LWS API facts refuse, plus invalid pod templates."""
    errors = (
        [f"{obj.get('apiVersion')} {obj.get('kind')}"]
        if (obj.get("apiVersion"), obj.get("kind"))
        != (
            lws_facts.API_VERSION,
            lws_facts.KIND,
        )
        else []
    )
    validator = jsonschema.Draft7Validator(lws_facts.SPEC_SCHEMA)
    errors += [f"spec.{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj["spec"])]
    rolling = obj["spec"].get("rolloutStrategy", {}).get("rollingUpdateConfiguration", {})
    if str(rolling.get("maxUnavailable", 1)).rstrip("%") == "0" and str(rolling.get("maxSurge", 0)).rstrip("%") == "0":
        errors.append("maxUnavailable can not be 0 if maxSurge is 0")
    template = obj["spec"]["leaderWorkerTemplate"]
    for role in ("leaderTemplate", "workerTemplate"):
        if role in template:
            pod_template = {
                "apiVersion": "v1",
                "kind": "PodTemplate",
                "metadata": {"name": "t"},
                "template": template[role],
            }
            try:
                kubernetes_validate.validate(pod_template, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{role}: {exc}")
    return errors


def rendered(name: str) -> list[dict[str, Any]]:
    s = SCENARIOS[name]
    return children.desired(s.md, s.plan, replicas=s.replicas, options=OPTIONS)


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


GROUP_SCENARIOS = [name for name, s in SCENARIOS.items() if s.plan.multi_node]


def test_there_are_group_scenarios_to_check():
    assert set(GROUP_SCENARIOS) >= {"llama31-405b-trn1-lws", "llama31-405b-trn2u-ultraserver"}


@pytest.mark.parametrize("name", GROUP_SCENARIOS, ids=[f"{n} satisfies the LWS API facts" for n in GROUP_SCENARIOS])
def test_rendered_leaderworkersets_satisfy_the_lws_api_facts(name: str):
    assert lws_violations(one(rendered(name), "LeaderWorkerSet")) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("leaderWorkerTemplate", "restartPolicy"), "Always"),
        (("startupPolicy",), "LeaderStarted"),
        (("leaderWorkerTemplate", "size"), 0),
        (("leaderWorkerTemplate", "groupSize"), 4),
        (("rolloutStrategy", "rollingUpdateConfiguration", "maxSurge"), "two"),
        (("leaderWorkerTemplate", "workerTemplate", "spec", "containers", 0, "imagee"), "typo"),
    ],
    ids=[
        "an unknown restart policy is refused",
        "an unknown startup policy is refused",
        "a group without its leader is refused",
        "an invented field is refused",
        "a surge that is neither a count nor a percent is refused",
        "a typo inside a pod template is refused",
    ],
)
def test_the_facts_check_is_not_vacuous(path: tuple[Any, ...], value: Any):
    obj = copy.deepcopy(one(rendered("llama31-405b-trn1-lws"), "LeaderWorkerSet"))
    node = obj["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert lws_violations(obj) != []


def test_a_group_is_replicas_groups_of_node_count_pods_that_restart_and_start_together():
    s = SCENARIOS["llama31-405b-trn1-lws"]
    lws = one(rendered("llama31-405b-trn1-lws"), "LeaderWorkerSet")
    assert lws["spec"]["replicas"] == s.replicas == 2
    template = lws["spec"]["leaderWorkerTemplate"]
    assert template["size"] == s.plan.nodes_per_replica == 4
    assert template["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert lws["spec"]["startupPolicy"] == "LeaderCreated"
    assert lws["spec"]["rolloutStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdateConfiguration": {"maxSurge": 0, "maxUnavailable": 1},
    }


def test_only_the_leader_serves_http_and_every_pod_holds_a_whole_node_with_its_efa_devices():
    lws = one(rendered("llama31-405b-trn1-lws"), "LeaderWorkerSet")
    leader = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    worker = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
    assert {"ports", "startupProbe", "readinessProbe", "livenessProbe"} <= leader.keys()
    assert not {"ports", "startupProbe", "readinessProbe", "livenessProbe"} & worker.keys()
    for container in (leader, worker):
        requests = container["resources"]["requests"]
        assert requests["aws.amazon.com/neuron"] == "16" and requests["vpc.amazonaws.com/efa"] == "8"
        assert container["resources"]["limits"]["vpc.amazonaws.com/efa"] == "8"
    assert leader["args"] == worker["args"] and leader["env"] == worker["env"]


def test_the_pods_reach_the_collective_root_and_their_rank_through_the_lws_variables():
    lws = one(rendered("llama31-405b-trn1-lws"), "LeaderWorkerSet")
    container = lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["NEURON_RT_ROOT_COMM_ID"] == "$(LWS_LEADER_ADDRESS):8990"
    assert env["NEURON_RANK_ID"] == "$(LWS_WORKER_INDEX)" and env["WORLD_SIZE"] == "$(LWS_GROUP_SIZE)"
    assert env["FI_PROVIDER"] == "efa" and "NEURON_SKIP_EFA_AFFINITY" not in env
    assert env["NEURON_COMPILED_ARTIFACTS"].endswith("/rank-$(LWS_WORKER_INDEX)")
    assert container["args"][:2] == ["/bin/sh", "-c"] and "$$((LWS_WORKER_INDEX * 32))" in container["args"][2]


def test_the_service_selects_leaders_and_the_pdb_every_pod_of_the_fleet():
    objects = rendered("llama31-405b-trn1-lws")
    md = SCENARIOS["llama31-405b-trn1-lws"].md
    assert one(objects, "Service")["spec"]["selector"] == {**labels.selector(md), lws_facts.LABELS["worker_index"]: "0"}
    assert one(objects, "PodDisruptionBudget")["spec"]["selector"] == {"matchLabels": labels.selector(md)}
    leader_labels = one(objects, "LeaderWorkerSet")["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]
    assert labels.selector(md).items() <= leader_labels["labels"].items()
    assert labels.leader_selector_string(md).endswith(f"{lws_facts.LABELS['worker_index']}=0")


def test_the_lws_is_never_named_like_the_service_its_own_headless_service_would_take():
    md = SCENARIOS["llama31-405b-trn1-lws"].md
    assert names.leader_worker_set_name(md) != names.service_name(md)
    long = make_md("a" * 200)
    assert len(names.leader_worker_set_name(long)) <= 40


def test_an_ultraserver_group_is_kept_inside_one_ultraserver_and_others_are_not_pinned():
    ultra = one(rendered("llama31-405b-trn2u-ultraserver"), "LeaderWorkerSet")
    plain = one(rendered("llama31-405b-trn1-lws"), "LeaderWorkerSet")
    key = "neuron.amazonaws.com/ultraserver-server-id-4"
    assert ultra["metadata"]["annotations"][lws_facts.EXCLUSIVE] == key
    assert lws_facts.EXCLUSIVE not in plain["metadata"]["annotations"]


def test_the_template_hash_follows_both_templates():
    s = SCENARIOS["llama31-405b-trn1-lws"]
    base = leaderworkerset.expected(s.md, s.plan, replicas=1, options=OPTIONS)
    other = leaderworkerset.expected(s.md, s.plan, replicas=1, options=RenderOptions(shm_size="32Gi"))
    scaled = leaderworkerset.expected(s.md, s.plan, replicas=5, options=OPTIONS)
    hash_of = deployment.TEMPLATE_HASH_ANNOTATION
    assert base["metadata"]["annotations"][hash_of] != other["metadata"]["annotations"][hash_of]
    assert base["metadata"]["annotations"][hash_of] == scaled["metadata"]["annotations"][hash_of]


def test_moving_between_one_node_and_groups_deletes_the_other_workload():
    s = SCENARIOS["llama31-405b-trn1-lws"]
    assert children.ChildRef("apps/v1", "Deployment", names.deployment_name(s.md)) in children.undesired(s.md, s.plan)
    single = SCENARIOS["llama3-8b-inf2"]
    gone = children.ChildRef(leaderworkerset.API_VERSION, "LeaderWorkerSet", names.leader_worker_set_name(single.md))
    assert gone in children.undesired(single.md, single.plan)
    assert all(r.kind not in ("Deployment", "LeaderWorkerSet") for r in children.undesired(single.md))


def test_a_single_node_plan_is_refused_by_the_lws_builder():
    single = SCENARIOS["llama3-8b-inf2"]
    with pytest.raises(ValueError, match="span nodes"):
        leaderworkerset.expected(single.md, single.plan, replicas=1, options=OPTIONS)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    instance=st.sampled_from(["trn1.32xlarge", "trn2.48xlarge", "trn2u.48xlarge"]),
    nodes=st.sampled_from([2, 4]),
    allocation=st.sampled_from(["devicePlugin", "dra"]),
    efa=st.booleans(),
    replicas=st.integers(0, 8),
    surge=st.sampled_from([0, 1, "25%"]),
)
def test_any_group_plan_renders_an_lws_the_facts_accept(instance, nodes, allocation, efa, replicas, surge):
    md = make_md(
        "big",
        model={"source": "hf://meta-llama/Llama-3.1-405B-Instruct"},
        neuron={"instanceType": instance, "nodesPerReplica": nodes, "allocation": allocation, "efa": efa},
        serving={"maxModelLen": 2048, "maxNumSeqs": 1},
        rollout={"maxSurge": surge, "maxUnavailable": 1},
    )
    plan = planner.plan(convert.plan_request(md))
    lws = children.workload(md, plan, replicas=replicas, options=OPTIONS)
    assert lws["kind"] == "LeaderWorkerSet" and lws_violations(lws) == []
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == nodes


def test_the_status_view_counts_groups_in_the_shape_the_status_code_reads():
    live = {
        "metadata": {"name": "big-lws", "generation": 4, "annotations": {"a": "b"}},
        "spec": {"replicas": 3},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "hpaPodSelector": "x"},
    }
    view = leaderworkerset.status_view(live)
    assert view["spec"] == {"replicas": 3}
    assert view["status"] == {
        "observedGeneration": 4,  # the LWS controller writes none: any status counts as observed
        "replicas": 3,
        "readyReplicas": 2,
        "updatedReplicas": 3,
        "availableReplicas": 2,
    }
    fresh = leaderworkerset.status_view({"metadata": {"name": "big-lws", "generation": 1}, "spec": {"replicas": 2}})
    assert fresh["status"] == {}, "no status yet: not observed, the rollout waits"
    assert leaderworkerset.status_view(None) is None


def test_groups_are_scaled_on_the_lws_and_single_pods_on_the_deployment():
    group = SCENARIOS["llama31-405b-trn1-lws"]
    single = SCENARIOS["llama3-8b-inf2"]
    assert children.scale_target(group.md, group.plan) == (
        "leaderworkerset.x-k8s.io",
        "v1",
        "leaderworkersets",
        names.leader_worker_set_name(group.md),
    )
    assert children.scale_target(single.md, single.plan) == (
        "apps",
        "v1",
        "deployments",
        names.deployment_name(single.md),
    )


def test_only_groups_need_the_lws_api_and_only_dra_needs_the_resource_api():
    from neuronfleet.api.conditions import Reason

    assert children.required_apis(SCENARIOS["llama3-8b-inf2"].plan) == []
    (lws_need,) = children.required_apis(SCENARIOS["llama31-405b-trn1-lws"].plan)
    assert (lws_need.plural, lws_need.reason) == ("leaderworkersets", Reason.LEADER_WORKER_SET_MISSING)
    assert "leaderworkersets.leaderworkerset.x-k8s.io" in lws_need.message and "4 nodes" in lws_need.message
    both = children.required_apis(SCENARIOS["llama31-405b-trn2u-ultraserver"].plan)
    assert [n.reason for n in both] == [Reason.LEADER_WORKER_SET_MISSING, Reason.RESOURCE_CLAIM_TEMPLATE_MISSING]

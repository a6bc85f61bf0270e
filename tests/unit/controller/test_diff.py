"""The diff engine: subset comparison, the step for each child, and drift told from the operator's own updates."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from neuronfleet.api.resource import load
from neuronfleet.controller import diff, kinds
from neuronfleet.controller.diff import StepKind
from neuronfleet.kube_emulator.patches import merge_patch  # RFC 7386, as the API server applies it

OWNER_UID = "owner-uid"


def make_md(**spec: Any):
    body = {
        "apiVersion": "neuronfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "llama", "namespace": "ml", "uid": OWNER_UID},
        "spec": {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, **spec},
    }
    return load(body)


def deployment(replicas: int = 2, image: str = "vllm:1", owner: str | None = OWNER_UID) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "llama", "labels": {"app.kubernetes.io/managed-by": "neuronfleet"}}
    if owner is not None:
        meta["ownerReferences"] = [{"kind": "ModelDeployment", "name": "llama", "uid": owner, "controller": True}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "vllm", "image": image, "resources": {"limits": {"memory": "32Gi", "cpu": "4"}}}
                    ]
                }
            },
        },
    }


def applied(desired: dict[str, Any]) -> dict[str, Any]:
    """The child as the operator creates it (with its last-applied record), as the API server returns it."""
    return copy.deepcopy(dict(diff.child_step(desired, None, owner_uid=OWNER_UID).body))


def test_server_defaulted_fields_do_not_count_as_a_difference() -> None:
    desired = deployment()
    live = applied(desired)
    live["metadata"].update(uid="x", resourceVersion="9", generation=3, creationTimestamp="t")
    live["spec"]["template"]["spec"].update(dnsPolicy="ClusterFirst", restartPolicy="Always")
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    live["status"] = {"replicas": 2}
    assert diff.child_step(desired, live, owner_uid=OWNER_UID).kind is StepKind.NONE


def test_canonicalised_quantities_equal_what_was_rendered() -> None:
    desired = deployment()
    desired["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = {"memory": "34359738368", "cpu": 4}
    live = applied(desired)
    live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = {"memory": "32Gi", "cpu": "4"}
    assert diff.child_step(desired, live, owner_uid=OWNER_UID).kind is StepKind.NONE


@pytest.mark.parametrize(
    ("live", "kind", "where"),
    [
        pytest.param(None, StepKind.CREATE, "", id="a missing child is created"),
        pytest.param(deployment(image="evil:1"), StepKind.PATCH, "containers[0].image", id="edited image is patched"),
        pytest.param(deployment(replicas=9), StepKind.PATCH, ".spec.replicas", id="edited replicas are patched"),
        pytest.param(deployment(owner="other"), StepKind.REFUSE, "controlled by", id="foreign child is refused"),
    ],
)
def test_each_child_gets_the_step_its_live_state_needs(live: dict | None, kind: StepKind, where: str) -> None:
    step = diff.child_step(deployment(), live, owner_uid=OWNER_UID)
    assert step.kind is kind
    assert where in step.reason


def test_an_unlabelled_object_squatting_on_the_name_is_refused() -> None:
    squatter = deployment(owner=None)
    squatter["metadata"]["labels"] = {}
    assert diff.child_step(deployment(), squatter, owner_uid=OWNER_UID).kind is StepKind.REFUSE


def test_an_orphan_the_operator_labelled_is_adopted_by_a_patch() -> None:
    step = diff.child_step(deployment(), deployment(owner=None), owner_uid=OWNER_UID)
    assert step.kind is StepKind.PATCH
    assert step.body["metadata"]["ownerReferences"][0]["uid"] == OWNER_UID


def test_the_patch_carries_owned_fields_only() -> None:
    desired = deployment()
    desired["metadata"].update(name="llama", namespace="ml", resourceVersion="1")
    desired["status"] = {"replicas": 1}
    body = diff.patch_body(desired)
    assert set(body) == {"metadata", "spec"}
    assert set(body["metadata"]) == {"labels", "ownerReferences"}


def test_a_map_key_no_longer_rendered_is_removed_and_keys_others_added_stay() -> None:
    before = deployment()
    before["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "trn2", "zone": "a"}
    before["metadata"]["annotations"] = {"team": "ml"}
    live = applied(before)
    live["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = "app:apps/Deployment:ml/llama"
    live["spec"]["template"]["spec"]["nodeSelector"]["added-by-a-webhook"] = "yes"

    after = deployment()
    after["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "trn2"}  # zone dropped from the spec
    step = diff.child_step(after, live, owner_uid=OWNER_UID)

    assert step.kind is StepKind.PATCH
    assert "no longer rendered" in step.reason and ".spec.template.spec.nodeSelector.zone" in step.reason
    assert step.body["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "trn2", "zone": None}
    annotations = step.body["metadata"]["annotations"]
    assert annotations["team"] is None  # the operator's own annotation, no longer rendered
    assert "argocd.argoproj.io/tracking-id" not in annotations  # someone else's: untouched
    recorded = json.loads(annotations[diff.LAST_APPLIED_ANNOTATION])
    assert recorded["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "trn2"}


def test_after_the_removal_the_child_is_up_to_date() -> None:
    before = deployment()
    before["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "trn2", "zone": "a"}
    after = deployment()
    after["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "trn2"}
    live = applied(before)
    patch = diff.child_step(after, live, owner_uid=OWNER_UID).body
    patched = merge_patch(live, patch)
    assert patched["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "trn2"}
    assert diff.child_step(after, patched, owner_uid=OWNER_UID).kind is StepKind.NONE


def test_a_child_without_a_record_is_patched_once_to_get_one_and_nothing_is_removed() -> None:
    live = deployment()  # made by an operator version without the record
    live["spec"]["template"]["spec"]["nodeSelector"] = {"zone": "a"}
    step = diff.child_step(deployment(), live, owner_uid=OWNER_UID)
    assert step.kind is StepKind.PATCH
    assert "nodeSelector" not in step.body["spec"]["template"]["spec"]
    assert diff.last_applied(merge_patch(live, step.body)) == diff.patch_body(deployment())


def test_an_unreadable_record_removes_nothing() -> None:
    live = applied(deployment())
    live["metadata"]["annotations"][diff.LAST_APPLIED_ANNOTATION] = "{not json"
    assert diff.last_applied(live) is None
    step = diff.child_step(deployment(), live, owner_uid=OWNER_UID)
    assert step.kind is StepKind.PATCH and "keeps fields" not in step.reason


def test_every_child_kind_the_renderer_emits_is_known() -> None:
    from neuronfleet.api import convert
    from neuronfleet.neuron import planner
    from neuronfleet.render import children
    from neuronfleet.render.options import RenderOptions

    md = make_md(neuron={"instanceType": "inf2.48xlarge"}, monitoring={"podMonitor": True})
    plan = planner.plan(convert.plan_request(md))
    for child in children.desired(md, plan, replicas=1, options=RenderOptions()):
        assert kinds.of(child).ref.plural


def test_a_replica_count_the_operator_changes_is_an_update_not_a_repair() -> None:
    live = applied(deployment(replicas=2))
    step = diff.child_step(deployment(replicas=5), live, owner_uid=OWNER_UID)
    assert step.kind is StepKind.PATCH and step.drift is None
    assert step.body["spec"]["replicas"] == 5


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        pytest.param(lambda d: d["spec"].update(replicas=7), ".spec.replicas", id="hand-scaled replicas are drift"),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="evil:1"),
            ".spec.template.spec.containers[0].image",
            id="a hand-edited image is drift",
        ),
    ],
)
def test_a_field_someone_else_changed_is_drift(edit: Any, path: str) -> None:
    live = applied(deployment())
    edit(live)
    step = diff.child_step(deployment(), live, owner_uid=OWNER_UID)
    assert step.kind is StepKind.PATCH
    assert step.drift == path


def test_a_hand_edit_the_operator_also_changes_counts_as_drift() -> None:
    """Live differs from both the new render and the record: somebody else wrote it."""
    live = applied(deployment(image="vllm:1"))
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    step = diff.child_step(deployment(image="vllm:2"), live, owner_uid=OWNER_UID)
    assert step.drift == ".spec.template.spec.containers[0].image"


def test_without_a_record_nothing_is_drift() -> None:
    live = deployment(replicas=7)  # written by an operator version that kept no record
    assert diff.child_step(deployment(), live, owner_uid=OWNER_UID).drift is None


def test_a_field_rendered_for_the_first_time_is_an_update() -> None:
    live = applied(deployment())
    wanted = deployment()
    wanted["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "trn2"}
    step = diff.child_step(wanted, live, owner_uid=OWNER_UID)
    assert step.kind is StepKind.PATCH and step.drift is None


def test_a_job_is_never_patched() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "compile",
            "labels": {"app.kubernetes.io/managed-by": "neuronfleet"},
            "ownerReferences": [{"kind": "ModelDeployment", "name": "llama", "uid": OWNER_UID, "controller": True}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "a"}]}}},
    }
    live = copy.deepcopy(job)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "b"
    assert diff.child_step(job, live, owner_uid=OWNER_UID).kind is StepKind.NONE
    assert diff.child_step(job, None, owner_uid=OWNER_UID).kind is StepKind.CREATE

"""The RBAC table is data the chart is checked against: it must cover every child kind."""

from __future__ import annotations

import pytest

from neuronfleet.controller import rbac
from neuronfleet.controller.kinds import CHILD_KINDS


@pytest.mark.parametrize("kind", CHILD_KINDS, ids=lambda k: f"{k.ref.plural} can be fully managed")
def test_every_child_kind_can_be_read_watched_created_patched_and_deleted(kind) -> None:
    for verb in ("get", "list", "watch", "create", "patch", "delete"):
        assert rbac.covers(kind.ref.group, kind.ref.plural, verb)


def test_configmaps_are_not_granted_since_no_child_is_one() -> None:
    assert not rbac.covers("", "configmaps", "create")


def test_the_operator_never_patches_model_deployments_themselves() -> None:
    assert not rbac.covers("neuronfleet.io", "modeldeployments", "patch")
    assert rbac.covers("neuronfleet.io", "modeldeployments/status", "patch")


def test_the_operator_may_not_write_model_deployment_specs_by_replacing_them() -> None:
    assert not rbac.covers("neuronfleet.io", "modeldeployments", "update")
    assert not rbac.covers("neuronfleet.io", "modeldeployments", "delete")


def test_cluster_role_rules_render_every_rule() -> None:
    rules = rbac.cluster_role_rules()
    assert len(rules) == len(rbac.RULES)
    assert all(set(r) == {"apiGroups", "resources", "verbs"} for r in rules)

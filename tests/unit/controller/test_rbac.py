"""The RBAC table is data the chart is checked against: it must cover every child kind."""

from __future__ import annotations

import pytest

from neuronfleet.controller import rbac
from neuronfleet.controller.reconcile import CHILD_KINDS


@pytest.mark.parametrize("ref", list(CHILD_KINDS.values()), ids=lambda r: f"{r.plural} can be fully managed")
def test_every_child_kind_can_be_read_watched_created_patched_and_deleted(ref) -> None:
    for verb in ("get", "list", "watch", "create", "patch", "delete"):
        assert rbac.covers(ref.group, ref.plural, verb)


def test_the_operator_may_not_write_model_deployment_specs_by_replacing_them() -> None:
    assert not rbac.covers("neuronfleet.io", "modeldeployments", "update")
    assert not rbac.covers("neuronfleet.io", "modeldeployments", "delete")


def test_cluster_role_rules_render_every_rule() -> None:
    rules = rbac.cluster_role_rules()
    assert len(rules) == len(rbac.RULES)
    assert all(set(r) == {"apiGroups", "resources", "verbs"} for r in rules)

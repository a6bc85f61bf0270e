"""The chart grants what `neuronfleet.controller.rbac.RULES` declares: no less, and nothing else.

The table in rbac.py is the single source (an integration test there records every request the
operator makes and checks the table covers it). The chart reads a generated copy
(files/rbac-rules.yaml, freshness checked in test_generated_files.py); these tests render the
chart and compare the rules a real API server would see with the table, per install mode.
"""

from __future__ import annotations

from typing import Any

import pytest

from chart.chart_files import MODE_ONLY, PEERING_GROUPS
from chart.conftest import Render, by_kind, one
from neuronfleet.controller import rbac

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)


def _grants(rules: list[dict[str, Any]]) -> set[Grant]:
    out: set[Grant] = set()
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], f"wildcard grant: {rule}"
        out |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return out


def _table(*, mode: str, peering: bool) -> set[Grant]:
    """rbac.RULES as grants, keeping what applies to the install mode."""
    out: set[Grant] = set()
    for rule in rbac.RULES:
        if rule.api_group in PEERING_GROUPS and not peering:
            continue
        for resource in rule.resources:
            only = MODE_ONLY.get((rule.api_group, resource.split("/")[0]), "any")
            if only in ("any", mode):
                out |= {(rule.api_group, resource, verb) for verb in rule.verbs}
    return out


def _bound_to_operator(objects: list[dict[str, Any]], binding: dict[str, Any]) -> bool:
    account = one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    return any(s["kind"] == "ServiceAccount" and s["name"] == account for s in binding["subjects"])


@pytest.mark.parametrize("peering", [True, False], ids=["with peering", "standalone"])
def test_cluster_wide_install_grants_exactly_the_operators_table(render: Render, peering: bool):
    objects = render({"peering": {"enabled": peering}, "replicaCount": 2 if peering else 1})
    role = one(objects, "ClusterRole")
    assert _grants(role["rules"]) == _table(mode="clusterWide", peering=peering)
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert _bound_to_operator(objects, binding)
    assert not by_kind(objects, "Role") and not by_kind(objects, "RoleBinding")


def test_cluster_wide_install_covers_every_rule_the_operator_uses_in_that_mode(render: Render):
    """The other direction spelled out: every (group, resource, verb) of rbac.py that kopf uses
    cluster-wide is granted; the ones left out are exactly the namespaced-mode-only ones."""
    granted = _grants(one(render(), "ClusterRole")["rules"])
    everything = _table(mode="any", peering=True) | _table(mode="clusterWide", peering=True)
    everything |= _table(mode="namespaced", peering=True)
    left_out = {(g, r) for g, r, _ in everything - granted}
    assert left_out == {key for key, only in MODE_ONLY.items() if only == "namespaced"}


def test_namespace_scoped_install_grants_namespaced_rules_only_in_watched_namespaces(render: Render):
    watched = ["ml-team-a", "ml-team-b"]
    objects = render({"watchNamespaces": watched})
    expected = _table(mode="namespaced", peering=True)
    cluster_rules = _grants(one(objects, "ClusterRole")["rules"])
    roles = {r["metadata"]["namespace"]: r for r in by_kind(objects, "Role")}
    assert sorted(roles) == watched
    for namespace, role in roles.items():
        namespaced = _grants(role["rules"])
        # Together the ClusterRole and each Role give exactly the table's rules for this mode ...
        assert cluster_rules | namespaced == expected, namespace
        # ... and everything namespaced (ModelDeployments, children, events) is only in the Role.
        assert all(
            (g, r) in {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
            for g, r, _ in cluster_rules
        )
    bindings = {b["metadata"]["namespace"]: b for b in by_kind(objects, "RoleBinding")}
    assert sorted(bindings) == watched
    for namespace, binding in bindings.items():
        assert (
            binding["roleRef"]["kind"] == "Role" and binding["roleRef"]["name"] == roles[namespace]["metadata"]["name"]
        )
        assert _bound_to_operator(objects, binding)


def test_namespace_scoped_install_can_drop_the_cluster_scoped_reads(render: Render):
    objects = render({"watchNamespaces": ["ml"], "rbac": {"clusterScopedReads": False}})
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    assert len(by_kind(objects, "Role")) == 1


def test_rbac_create_false_renders_no_rbac_objects(render: Render):
    objects = render({"rbac": {"create": False}})
    assert not {o["kind"] for o in objects} & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


@pytest.mark.parametrize(
    ("api_group", "resource", "verb"),
    [
        ("neuronfleet.io", "modeldeployments", "update"),
        ("neuronfleet.io", "modeldeployments", "delete"),
        ("", "secrets", "get"),
        ("apps", "deployments", "update"),
    ],
    ids=[
        "never updates ModelDeployments (the operator never writes spec)",
        "never deletes ModelDeployments",
        "never reads Secrets (the token is only a secretKeyRef)",
        "never PUTs Deployments (merge patches only)",
    ],
)
def test_chart_does_not_grant_what_the_operator_never_does(render: Render, api_group, resource, verb):
    assert (api_group, resource, verb) not in _grants(one(render(), "ClusterRole")["rules"])

"""What the operator does when the cluster lacks a kind, and when its own code fails.

A kind the emulator does not serve is taken away with `Store.unserve` before the operator starts
(as a cluster without the PodDisruptionBudget API, or without the Prometheus Operator's CRDs, would
be). The emulator then answers that kind's paths as a real API server answers an unknown resource:
404 "the server could not find the requested resource".
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import kubernetes
import pytest
from emulator_support import enable_controllers
from operator_support import Cluster, OperatorThread, make_md, writes

from neuronfleet.kube_emulator import ResourceInfo
from neuronfleet.render import children
from support.crds import schemaless_crd
from support.waits import wait_for, wait_quiet

RECHECK = 0.5  # OperatorConfig.unserved_recheck: seconds before an unserved kind is tried again


def _pdb_info(cluster: Cluster) -> ResourceInfo:
    return cluster.emu.call(cluster.emu.store.resource, "policy", "v1", "poddisruptionbudgets")


def _pdb(cluster: Cluster, name: str) -> dict | None:
    try:
        return cluster.policy.read_namespaced_pod_disruption_budget(name, "ml")
    except kubernetes.client.ApiException:
        return None


def test_a_required_kind_the_cluster_does_not_serve_degrades_the_fleet_and_holds_nothing_else_back(
    start_operator: Callable[..., OperatorThread], cluster: Cluster
) -> None:
    """Uses the emulator's Deployment status stand-in."""
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.2)
    info = _pdb_info(cluster)
    cluster.emu.call(cluster.emu.store.unserve, "policy", "poddisruptionbudgets")
    start_operator(unserved_recheck=RECHECK)
    cluster.create_md(make_md("llama"))

    degraded = wait_for(lambda: (c := cluster.condition("llama", "Degraded")).get("status") == "True" and c)
    assert degraded["reason"] == "KindNotServed"
    assert "does not serve policy/v1 PodDisruptionBudget (poddisruptionbudgets)" in degraded["message"]
    # The other children applied, and the status follows them: the fleet serves.
    assert cluster.service("llama") is not None
    wait_for(lambda: cluster.condition("llama", "Ready").get("status") == "True")
    warning = wait_for(lambda: [e for e in cluster.events("llama") if e["reason"] == "KindNotServed"])
    assert warning[0]["type"] == "Warning"

    # The API comes back: the next recheck creates the PDB and clears Degraded.
    cluster.emu.call(cluster.emu.store.serve, info)
    wait_for(lambda: _pdb(cluster, "llama") is not None, timeout=10)
    wait_for(lambda: cluster.condition("llama", "Degraded").get("status") == "False")


def test_an_optional_kind_the_cluster_lacks_is_skipped_with_a_warning_and_picked_up_once_installed(
    start_operator: Callable[..., OperatorThread], cluster: Cluster
) -> None:
    """No Prometheus Operator CRDs: the PodMonitor is skipped, the fleet is neither Degraded nor held back.

    The PodMonitor CRD installed later is a minimal schema-less CRD; uses the Deployment status stand-in.
    """
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.2)
    cluster.emu.call(cluster.emu.store.unserve, "monitoring.coreos.com", "podmonitors")
    start_operator(unserved_recheck=RECHECK)
    cluster.create_md(make_md("llama", monitoring={"podMonitor": True}))

    skipped = wait_for(
        lambda: (c := cluster.condition("llama", "OptionalChildrenApplied")).get("status") == "False" and c
    )
    assert skipped["reason"] == "KindNotServed"
    assert "monitoring.coreos.com/v1 PodMonitor" in skipped["message"]
    assert "Prometheus Operator" in skipped["message"]
    wait_for(lambda: cluster.condition("llama", "Ready").get("status") == "True")
    assert cluster.condition("llama", "Degraded")["status"] == "False"
    wait_for(lambda: "KindNotServed" in [e["reason"] for e in cluster.events("llama") if e["type"] == "Warning"])

    kubernetes.client.ApiextensionsV1Api(cluster.api).create_custom_resource_definition(
        schemaless_crd("monitoring.coreos.com", "podmonitors", "PodMonitor"), _preload_content=False
    )
    wait_for(lambda: cluster.condition("llama", "OptionalChildrenApplied").get("status") == "True", timeout=10)
    monitor = cluster.custom.get_namespaced_custom_object("monitoring.coreos.com", "v1", "ml", "podmonitors", "llama")
    assert monitor["metadata"]["ownerReferences"][0]["name"] == "llama"


def test_a_bug_is_retried_and_logged_never_shown_to_the_user_as_a_spec_problem(
    operator: OperatorThread, cluster: Cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a PlanError is the user's to fix. A programming error (here a KeyError from the renderer,
    injected for one fleet) is logged with its traceback and retried; the fleet is not Degraded."""
    real = children.desired
    calls = {"broken": 0}

    def broken(md, *args, **kwargs):  # type: ignore[no-untyped-def]
        if md.name == "broken" and calls["broken"] < 3:
            calls["broken"] += 1
            raise KeyError("a renderer bug")
        return real(md, *args, **kwargs)

    monkeypatch.setattr(children, "desired", broken)
    with caplog.at_level(logging.ERROR, logger="neuronfleet.controller.workqueue"):
        cluster.create_md(make_md("broken"))
        wait_for(lambda: cluster.deployment("broken"), timeout=20)
    assert calls["broken"] == 3
    failures = [r for r in caplog.records if "broken" in r.getMessage()]
    assert failures and all(r.exc_info is not None for r in failures)
    assert "a renderer bug" in str(failures[0].exc_info[1])
    wait_for(lambda: cluster.status("broken").get("observedGeneration") == 1)
    assert cluster.condition("broken", "Degraded")["status"] == "False"
    assert not [e for e in cluster.events("broken") if "renderer bug" in e["message"]]


def test_a_pass_with_nothing_to_do_makes_no_request(operator: OperatorThread, cluster: Cluster) -> None:
    """Reads come from the watch-fed cache: a pass triggered by an unrelated change costs no request at all."""
    cluster.create_md(make_md("llama"))
    wait_for(lambda: cluster.status("llama").get("observedGeneration") == 1)

    def requests() -> int:  # watches are logged when they end (timeouts): not the operator acting
        return sum(1 for r in list(cluster.emu.requests) if r.verb != "watch")

    wait_quiet(requests)
    before = requests()
    reconciles = operator.memo.runtime.metrics.reconciles.labels(handler="reconcile")
    passes = reconciles._value.get()
    # An annotation on the ModelDeployment: an event, hence a pass, with nothing to change.
    cluster.emu.call(
        cluster.emu.store.patch,
        cluster.emu.call(cluster.emu.store.resource, "neuronfleet.io", "v1alpha1", "modeldeployments"),
        "ml",
        "llama",
        "application/merge-patch+json",
        {"metadata": {"annotations": {"team": "search"}}},
    )
    wait_for(lambda: reconciles._value.get() > passes)
    wait_quiet(lambda: writes(cluster.emu))
    assert requests() == before, [(r.verb, r.resource, r.subresource) for r in list(cluster.emu.requests)[before:]]

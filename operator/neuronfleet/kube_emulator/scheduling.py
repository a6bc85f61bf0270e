"""The kube-scheduler's filter rules and its failure message, as pure functions over plain dicts.

The emulator's scheduler (``scheduler.py``) and its Karpenter stand-in (``provisioner.py``) ask the
same question of a pod and a node: does it fit, and if not, why, in the words a user reads in
``kubectl describe pod``. Only the filters that decide where a Neuron replica can go are modelled,
in the default profile's order, and a node stops at its first failing plugin as in the framework's
``RunFilterPlugins`` (kubernetes/kubernetes pkg/scheduler/framework/runtime/framework.go; default
plugin order NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
NodeResourcesFit in pkg/scheduler/apis/config/v1/default_plugins.go):

==================  ==========================================================================
plugin              reason (per node)
==================  ==========================================================================
NodeUnschedulable   ``node(s) were unschedulable`` (a cordoned node: spec.unschedulable)
TaintToleration     ``node(s) had untolerated taint(s)`` for a NoSchedule/NoExecute taint the pod
                    does not tolerate (plugins/tainttoleration/taint_toleration.go; releases
                    before the wording change said ``node(s) had untolerated taint {key: value}``,
                    available as ``legacy_taint_reason``)
NodeAffinity        ``node(s) didn't match Pod's node affinity/selector`` for spec.nodeSelector and
                    requiredDuringSchedulingIgnoredDuringExecution terms (plugins/nodeaffinity,
                    ``ErrReasonPod``)
NodeResourcesFit    ``Too many pods``, then ``Insufficient <resource>`` for EVERY resource whose
                    request exceeds allocatable minus what bound pods request: cpu, memory,
                    ephemeral-storage and extended resources such as ``aws.amazon.com/neuron``
                    (plugins/noderesources/fit.go)
==================  ==========================================================================

The message is ``FitError.Error()`` (pkg/scheduler/framework/types.go): ``0/<all nodes> nodes are
available: `` then ``<count> <reason>`` per distinct reason, counted over nodes, the strings sorted
(so the count is part of the sort key) and joined with ``, ``, then ``.``; a PostFilter message
(``preemption: ...``, from DefaultPreemption) is appended after a space when there is one. A real
kube-scheduler answered a 17-device pod on 8 trn1 nodes with
``0/8 nodes are available: 8 Insufficient aws.amazon.com/neuron.`` (the issue's observation).

Not modelled: pod (anti-)affinity, topology spread, volumes, host ports, preferred terms and
scoring (placement picks the first fitting node in name order), DRA, and the Neuron scheduler
extension's contiguous-device check beyond counting devices.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from neuronfleet.api import quantities

__all__ = [
    "AFFINITY_REASON",
    "NO_NODES",
    "TAINT_REASON",
    "TOO_MANY_PODS",
    "UNSCHEDULABLE_REASON",
    "fit_error_message",
    "insufficient",
    "legacy_taint_reason",
    "matches_node_affinity",
    "pod_requests",
    "tolerates",
    "unfit_reasons",
]

UNSCHEDULABLE_REASON = "node(s) were unschedulable"
TAINT_REASON = "node(s) had untolerated taint(s)"
AFFINITY_REASON = "node(s) didn't match Pod's node affinity/selector"
TOO_MANY_PODS = "Too many pods"
NO_NODES = "no nodes available to schedule pods"
"""With no node registered at all the scheduler answers ErrNoNodesAvailable instead of a FitError, and
still marks the pod Unschedulable (pkg/scheduler/schedule_one.go, schedulingAlgorithm)."""
_SCHEDULING_EFFECTS = ("NoSchedule", "NoExecute")


def legacy_taint_reason(taint: Mapping[str, Any]) -> str:
    """The taint reason of kube-scheduler releases that named the taint."""
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


def insufficient(resource: str) -> str:
    return f"Insufficient {resource}"


# -- tolerations (core/v1 Toleration.ToleratesTaint) -------------------------------------------


def _tolerates_one(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"  # an empty key with Exists tolerates everything
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether any toleration tolerates the taint (key, operator Exists/Equal, value, effect)."""
    return any(_tolerates_one(t, taint) for t in tolerations)


# -- node affinity ---------------------------------------------------------------------------


def _expression_matches(expr: Mapping[str, Any], values_of: Mapping[str, str]) -> bool:
    key = expr.get("key", "")
    operator = expr.get("operator", "")
    wanted = [str(v) for v in expr.get("values") or ()]
    present = key in values_of
    value = values_of.get(key)
    if operator == "In":
        return present and value in wanted
    if operator == "NotIn":
        return not present or value not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(str(value)), int(wanted[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    fields = {"metadata.name": (node.get("metadata") or {}).get("name", "")}
    exprs = term.get("matchExpressions") or ()
    field_exprs = term.get("matchFields") or ()
    if not exprs and not field_exprs:
        return False  # an empty term matches no node (core/v1 NodeSelectorTerm)
    return all(_expression_matches(e, labels) for e in exprs) and all(
        _expression_matches(e, fields) for e in field_exprs
    )


def matches_node_affinity(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """spec.nodeSelector (every label equal) AND the required node affinity (terms ORed)."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        or {}
    ).get("nodeSelectorTerms")
    if required is None:
        return True
    return any(_term_matches(term, node) for term in required)


# -- resources -------------------------------------------------------------------------------


def _add(total: dict[str, Decimal], resources: Mapping[str, Any]) -> None:
    for name, value in resources.items():
        amount = quantities.parse(value)
        if amount is not None:
            total[name] = total.get(name, Decimal(0)) + amount


def pod_requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """What a pod asks of a node: the sum over containers, or the largest init container if larger.

    Requests default to limits where only limits are set (the API server's defaulting); extended
    resources must be set equal in both, so a limit alone counts too.
    """
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or ():
        resources = container.get("resources") or {}
        _add(total, {**(resources.get("limits") or {}), **(resources.get("requests") or {})})
    for init in spec.get("initContainers") or ():
        resources = init.get("resources") or {}
        one: dict[str, Decimal] = {}
        _add(one, {**(resources.get("limits") or {}), **(resources.get("requests") or {})})
        for name, amount in one.items():
            total[name] = max(total.get(name, Decimal(0)), amount)
    return total


def _resource_reasons(
    requests: Mapping[str, Decimal], allocatable: Mapping[str, Decimal], used: Mapping[str, Decimal], pods_on_node: int
) -> list[str]:
    reasons: list[str] = []
    max_pods = allocatable.get("pods")
    if max_pods is not None and pods_on_node + 1 > max_pods:
        reasons.append(TOO_MANY_PODS)
    for name, amount in requests.items():
        if amount <= 0 or name == "pods":
            continue
        if used.get(name, Decimal(0)) + amount > allocatable.get(name, Decimal(0)):
            reasons.append(insufficient(name))
    return reasons


def unfit_reasons(
    pod: Mapping[str, Any],
    node: Mapping[str, Any],
    bound: Iterable[Mapping[str, Any]] = (),
    *,
    legacy_taints: bool = False,
) -> list[str]:
    """Why `pod` cannot go on `node` with the `bound` pods already there; empty when it fits.

    Stops at the first failing plugin, in the default profile's order (see the module docstring).
    """
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return [UNSCHEDULABLE_REASON]
    tolerations = (pod.get("spec") or {}).get("tolerations") or ()
    for taint in spec.get("taints") or ():
        if taint.get("effect") in _SCHEDULING_EFFECTS and not tolerates(tolerations, taint):
            return [legacy_taint_reason(taint) if legacy_taints else TAINT_REASON]
    if not matches_node_affinity(pod, node):
        return [AFFINITY_REASON]
    allocatable: dict[str, Decimal] = {}
    _add(allocatable, (node.get("status") or {}).get("allocatable") or {})
    used: dict[str, Decimal] = {}
    count = 0
    for other in bound:
        count += 1
        for name, amount in pod_requests(other).items():
            used[name] = used.get(name, Decimal(0)) + amount
    return _resource_reasons(pod_requests(pod), allocatable, used, count)


def fit_error_message(node_count: int, reasons_by_node: Mapping[str, Sequence[str]], post_filter: str = "") -> str:
    """``FitError.Error()``: ``0/N nodes are available: <count> <reason>, ....`` (see module docstring).

    With no node at all the scheduler never builds a FitError: the message is ``NO_NODES``.
    """
    if node_count == 0:
        return NO_NODES
    histogram: Counter[str] = Counter()
    for reasons in reasons_by_node.values():
        histogram.update(reasons)
    message = f"0/{node_count} nodes are available:"
    entries = sorted(f"{count} {reason}" for reason, count in histogram.items())
    if entries:
        message += f" {', '.join(entries)}."
    if post_filter:
        message += f" {post_filter}"
    return message

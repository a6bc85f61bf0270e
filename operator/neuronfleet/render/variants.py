"""The Deployment and precompile Job of each fallback variant, beside the primary's.

A fallback variant runs the same model from another instance type (neuron/variants.py), in its own
Deployment ``<name>-<variant>`` so it scales, drains and is deleted on its own. Its pods carry the
fleet's selector labels plus ``neuronfleet.io/variant: <variant>``:

- the one Service (and the PodDisruptionBudget and PodMonitor) select the fleet's labels only, so
  they span every variant and clients keep one address; the router balances by load;
- the variant Deployment's own selector adds the variant label, so it never claims another
  variant's pods. The primary Deployment's selector predates variants (selectors are immutable)
  and also matches variant pods; Deployments and ReplicaSets only adopt pods and ReplicaSets that
  have no controller ownerReference, and every pod here has one, so the overlap is safe
  (Kubernetes docs, "Deployments": selectors should not overlap; controller-runtime/apimachinery
  ControllerRef adoption rules). The primary's pods have no variant label and its template is not
  changed, so turning fallback on never rolls the primary.

`spec.serving.image` is the image of the primary's runtime profile; a variant on another runtime
(nxdi on trn1/inf2 beside vllm-neuron on trn2) uses the operator's image for its own runtime, since
one image cannot serve both.

Precompile: with ``compiledArtifacts.policy: precompile`` every variant's artifact key gets its
compile Job ahead of time (render/compile_job.py), so a fallback never compiles at the worst moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron import artifacts
from neuronfleet.neuron.types import Plan
from neuronfleet.neuron.variants import PlannedVariant
from neuronfleet.placement.replicas import VARIANT_LABEL
from neuronfleet.render import compile_job, deployment, labels, names
from neuronfleet.render.options import RenderOptions

__all__ = [
    "VARIANT_LABEL",
    "compile_jobs",
    "deployment_name",
    "expected",
    "keyed_plan",
    "variant_md",
]


def deployment_name(md: ModelDeployment, variant: PlannedVariant) -> str:
    """The primary keeps the fleet's Deployment name; a fallback's is `<name>-<variant>`."""
    base = names.deployment_name(md)
    if variant.is_primary:
        return base
    # Pod names append "-<10 char hash>-<5 char suffix>" (17 chars) and must stay within 253.
    return f"{base[: 253 - 17 - len(variant.name) - 1]}-{variant.name}"


def variant_md(md: ModelDeployment, primary: Plan, variant: PlannedVariant) -> ModelDeployment:
    """`md` as the variant renders it: without spec.serving.image when its runtime differs."""
    if variant.is_primary or variant.plan.runtime == primary.runtime or md.spec.serving.image is None:
        return md
    serving = md.spec.serving.model_copy(update={"image": None})
    return md.model_copy(update={"spec": md.spec.model_copy(update={"serving": serving})})


def keyed_plan(md: ModelDeployment, variant_plan: Plan, options: RenderOptions) -> Plan:
    """The variant's plan with its own artifact key (instance family, TP and runtime differ)."""
    image = md.spec.serving.image or options.image_for(variant_plan.runtime)
    return artifacts.keyed(
        variant_plan, image=image, revision=md.spec.model.revision, quantization=md.spec.serving.quantization
    )


def expected(
    md: ModelDeployment,
    variants: Sequence[PlannedVariant],
    variant: PlannedVariant,
    *,
    replicas: int,
    options: RenderOptions,
) -> dict[str, Any]:
    """The Deployment of one variant (the primary's is render/deployment.py's, unchanged).

    Pass plans keyed as the controller keys them (`keyed_plan`) to get the artifact-key annotation.
    """
    primary = variants[0].plan
    source = variant_md(md, primary, variant)
    obj = deployment.expected(source, variant.plan, replicas=replicas, options=options)
    if variant.is_primary:
        return obj
    meta = obj["metadata"]
    meta["name"] = deployment_name(md, variant)
    meta["labels"] = {**meta["labels"], VARIANT_LABEL: variant.name}
    spec = obj["spec"]
    spec["selector"] = {"matchLabels": {**labels.selector(md), VARIANT_LABEL: variant.name}}
    template = spec["template"]
    template["metadata"]["labels"] = {**template["metadata"]["labels"], VARIANT_LABEL: variant.name}
    meta["annotations"][deployment.TEMPLATE_HASH_ANNOTATION] = deployment.template_hash(template)
    return obj


def compile_jobs(
    md: ModelDeployment,
    variants: Sequence[PlannedVariant],
    *,
    render: RenderOptions,
    options: compile_job.CompileJobOptions | None = None,
) -> list[dict[str, Any]]:
    """One compile Job per variant key, fallbacks included, when the policy is precompile.

    Keys are shared: two variants whose graphs are the same (never the case across families) would
    name the same Job, and it is listed once.
    """
    if md.spec.neuron.compiled_artifacts.policy != "precompile":
        return []
    primary = variants[0].plan
    jobs: dict[str, dict[str, Any]] = {}
    for variant in variants:
        source = variant_md(md, primary, variant)
        job = compile_job.compile_job(source, keyed_plan(source, variant.plan, render), render=render, options=options)
        jobs.setdefault(job["metadata"]["name"], job)
    return list(jobs.values())

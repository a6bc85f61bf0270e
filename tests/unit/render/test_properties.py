"""Property tests: for any plan the planner could emit and any legal ModelDeployment name, the
rendered children validate strictly and agree with each other on the pods they mean."""

from __future__ import annotations

import math

import kubernetes_validate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuronfleet.neuron.catalog import CATALOG
from neuronfleet.render import children, deployment, labels
from neuronfleet.render.options import RenderOptions

from .builders import GIB, make_md, make_plan

OPTIONS = RenderOptions()

dns_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?", fullmatch=True)
md_names = st.one_of(
    dns_label,
    st.lists(dns_label, min_size=2, max_size=4).map(".".join),  # DNS-1123 subdomains with dots
    st.from_regex(r"[a-z][a-z0-9]{70,120}", fullmatch=True),  # longer than a label value
)

plans = st.builds(
    lambda instance, runtime, neuroncore, count, startup, cpus, mem_gib, contiguous: make_plan(
        instance_type=instance.name,
        instance_family=instance.family,
        runtime=runtime,
        resource_name="aws.amazon.com/neuroncore" if neuroncore else "aws.amazon.com/neuron",
        resource_count=count,
        expected_startup_seconds=startup,
        host_cpus=cpus,
        host_memory_bytes=mem_gib * GIB,
        needs_contiguous_cores=contiguous,
    ),
    st.sampled_from(CATALOG),
    st.sampled_from(["vllm-neuron", "nxdi"]),
    st.booleans(),
    st.integers(1, 128),
    st.integers(0, 4 * 3600),
    st.integers(1, 192),
    st.integers(1, 2048),
    st.booleans(),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=md_names, plan=plans, replicas=st.integers(0, 64), pod_monitor=st.booleans())
def test_any_plan_renders_strictly_valid_children_that_agree_on_their_pods(name, plan, replicas, pod_monitor):
    md = make_md(name, monitoring={"podMonitor": pod_monitor})
    objects = children.desired(md, plan, replicas=replicas, options=OPTIONS)
    by_kind = {o["kind"]: o for o in objects}
    for kind in ("Service", "PodDisruptionBudget", "Deployment"):
        kubernetes_validate.validate(by_kind[kind], "1.31.0", strict=True)
    dep = by_kind["Deployment"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert by_kind["Service"]["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert by_kind["PodDisruptionBudget"]["spec"]["selector"] == dep["spec"]["selector"]
    assert ("PodMonitor" in by_kind) is pod_monitor
    probe = dep["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    budget = probe["failureThreshold"] * probe["periodSeconds"]
    assert budget >= max(plan.expected_startup_seconds, OPTIONS.min_startup_seconds) * OPTIONS.startup_safety_factor
    assert probe["failureThreshold"] == deployment.startup_failure_threshold(plan, OPTIONS)
    assert pod_labels[labels.INSTANCE] == labels.instance_value(md)


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, 6 * 3600), b=st.integers(0, 6 * 3600))
def test_the_startup_threshold_never_shrinks_as_the_estimate_grows(a, b):
    low, high = sorted((a, b))
    t_low = deployment.startup_failure_threshold(make_plan(expected_startup_seconds=low), OPTIONS)
    t_high = deployment.startup_failure_threshold(make_plan(expected_startup_seconds=high), OPTIONS)
    assert t_low <= t_high
    expected = math.ceil(
        math.ceil(max(high, OPTIONS.min_startup_seconds) * OPTIONS.startup_safety_factor)
        / OPTIONS.startup_probe_period_seconds
    )
    assert t_high == expected

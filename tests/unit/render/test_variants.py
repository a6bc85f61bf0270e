"""Each fallback variant's Deployment and precompile Job, beside the primary's."""

from __future__ import annotations

from neuronfleet.api import convert
from neuronfleet.neuron import variants
from neuronfleet.render import children, deployment, labels, service
from neuronfleet.render import variants as render_variants
from neuronfleet.render.options import RenderOptions
from render.builders import make_md

OPTIONS = RenderOptions()
NEURON = {
    "instanceType": "trn2.48xlarge",
    "tensorParallelSize": 4,
    "fallback": [{"instanceType": "trn1.32xlarge"}],
}


def planned(md):
    fallback = [
        variants.VariantRequest(v.instance_type, v.tensor_parallel_size, v.runtime) for v in md.spec.neuron.fallback
    ]
    return variants.plan_variants(convert.plan_request(md), fallback)


def test_the_primary_deployment_is_exactly_the_one_without_fallback():
    md = make_md(neuron=NEURON)
    plans = planned(md)
    assert render_variants.expected(md, plans, plans[0], replicas=2, options=OPTIONS) == deployment.expected(
        md, plans[0].plan, replicas=2, options=OPTIONS
    )


def test_a_fallback_runs_in_its_own_deployment_and_selects_only_its_pods():
    md = make_md(neuron=NEURON)
    plans = planned(md)
    obj = render_variants.expected(md, plans, plans[1], replicas=3, options=OPTIONS)
    assert obj["metadata"]["name"] == "llama3-8b-trn1-32xlarge"
    assert obj["spec"]["replicas"] == 3
    selector = obj["spec"]["selector"]["matchLabels"]
    assert selector == {**labels.selector(md), "neuronfleet.io/variant": "trn1-32xlarge"}
    template = obj["spec"]["template"]
    assert all(template["metadata"]["labels"][k] == v for k, v in selector.items())
    assert template["spec"]["nodeSelector"]["node.kubernetes.io/instance-type"] == "trn1.32xlarge"
    resources = template["spec"]["containers"][0]["resources"]["requests"]
    assert resources["aws.amazon.com/neuron"] == str(plans[1].plan.resource_count)
    annotations = obj["metadata"]["annotations"]
    assert annotations[deployment.TEMPLATE_HASH_ANNOTATION] == deployment.template_hash(template)


def test_the_one_service_selects_every_variants_pods():
    md = make_md(neuron=NEURON)
    plans = planned(md)
    svc = service.expected(md)["spec"]["selector"]
    for variant in plans:
        pod_labels = render_variants.expected(md, plans, variant, replicas=1, options=OPTIONS)["spec"]["template"][
            "metadata"
        ]["labels"]
        assert all(pod_labels.get(k) == v for k, v in svc.items()), variant.name


def test_a_user_image_stays_with_the_primarys_runtime():
    md = make_md(neuron=NEURON, serving={"image": "registry.example/vllm-neuron:custom"})
    plans = planned(md)
    primary = render_variants.expected(md, plans, plans[0], replicas=1, options=OPTIONS)
    trn1 = render_variants.expected(md, plans, plans[1], replicas=1, options=OPTIONS)
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/vllm-neuron:custom"
    assert trn1["spec"]["template"]["spec"]["containers"][0]["image"] == OPTIONS.image_for("nxdi")


def test_precompile_builds_every_variants_key_ahead_of_time():
    md = make_md(neuron={**NEURON, "compiledArtifacts": {"policy": "precompile", "pvc": "neuron-cache"}})
    plans = planned(md)
    jobs = render_variants.compile_jobs(md, plans, render=OPTIONS)
    keys = [j["metadata"]["labels"]["neuronfleet.io/artifact-key"] for j in jobs]
    assert len(jobs) == 2 and len(set(keys)) == 2, "one compile Job per variant key"
    expected_key = render_variants.keyed_plan(md, plans[1].plan, OPTIONS).artifact_key
    assert expected_key in keys


def test_no_compile_jobs_without_the_precompile_policy():
    md = make_md(neuron=NEURON)
    assert render_variants.compile_jobs(md, planned(md), render=OPTIONS) == []


def test_turning_fallback_on_does_not_change_the_primarys_children():
    without = make_md(neuron={"instanceType": "trn2.48xlarge", "tensorParallelSize": 4})
    with_fallback = make_md(neuron=NEURON)
    plan = planned(with_fallback)[0].plan
    assert children.desired(without, plan, replicas=1, options=OPTIONS) == children.desired(
        with_fallback, plan, replicas=1, options=OPTIONS
    )

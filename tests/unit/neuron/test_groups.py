"""Replicas spanning nodes: the group rules, hand-checked plans, planner properties, the rank line.

Neuron hardware and a LeaderWorkerSet controller cannot run here: the planner is arithmetic over
the catalog, and the per-rank launch line is a POSIX shell line, which these tests run under
/bin/sh with a stand-in `vllm` that prints its argv.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuronfleet.errors import PlanError
from neuronfleet.neuron import groups, planner
from neuronfleet.neuron.catalog import CATALOG, GIB, lookup
from neuronfleet.neuron.models import BUILTIN_MODELS
from neuronfleet.neuron.types import ModelArch, PlanRequest

LLAMA_405B = "meta-llama/Llama-3.1-405B-Instruct"


def make_request(model: str = LLAMA_405B, **overrides) -> PlanRequest:
    return PlanRequest(model=model, source=model, served_name="served", **overrides)


# --- hand-checked plans -----------------------------------------------------------------------


def test_llama_405b_on_trn1_is_a_group_of_four_nodes_at_tp_128():
    plan = planner.plan(make_request(instance_type="trn1.32xlarge", max_model_len=8192, max_num_seqs=8))
    weights = 405.85e9 * 2
    kv_per_token = 2 * 126 * 128 * 128 * 2  # 8 KV heads held as one per rank at TP 128
    kv = kv_per_token * 8 * 8192
    assert plan.weights_bytes == pytest.approx(weights, rel=1e-9)
    assert plan.kv_cache_bytes == kv
    assert plan.memory_needed_bytes == pytest.approx((weights + kv) * 1.15, rel=1e-6)
    # Two nodes (TP 64, 1024 GiB) would need (weights + half the KV) x 1.15 = 1159 GiB: too little.
    assert (weights + kv / 2) * 1.15 > 2 * 32 * 16 * GIB
    assert (plan.nodes_per_replica, plan.tensor_parallel_size, plan.local_tensor_parallel_size) == (4, 128, 32)
    assert plan.memory_available_bytes == 4 * 512 * GIB
    assert (plan.runtime, plan.parallelism) == ("nxdi", groups.TENSOR_ACROSS_NODES)
    assert (plan.resource_name, plan.resource_count, plan.efa_devices_per_pod) == ("aws.amazon.com/neuron", 16, 8)
    assert plan.devices_per_replica == 64


def test_a_model_that_fits_one_node_is_never_split():
    plan = planner.plan(make_request(instance_type="trn2.48xlarge", max_model_len=8192, max_num_seqs=8))
    assert plan.nodes_per_replica == 1 and plan.runtime == "vllm-neuron"  # AWS's own 405B-on-one-trn2 shape


def test_on_trn2_the_group_is_planned_on_nxdi_and_the_plan_says_why():
    plan = planner.plan(make_request(instance_type="trn2.48xlarge", max_model_len=32768, max_num_seqs=5))
    assert plan.nodes_per_replica > 1 and plan.runtime == "nxdi"
    assert any("nxdi is the runtime that runs one replica across nodes" in r for r in plan.reasons)


def test_vllm_neuron_given_explicitly_is_refused_for_a_group_naming_the_runtime_that_can():
    with pytest.raises(
        PlanError, match=r"needs a runtime that runs one replica across nodes \(nxdi.*vllm-neuron does not"
    ):
        planner.plan(
            make_request(instance_type="trn2.48xlarge", max_model_len=32768, max_num_seqs=5, runtime="vllm-neuron")
        )


def test_instances_without_efa_never_span_nodes():
    with pytest.raises(PlanError, match=r"cannot span inf2\.48xlarge nodes.*EFA"):
        planner.plan(make_request(instance_type="inf2.48xlarge", max_model_len=8192, max_num_seqs=8))


def test_a_trn2u_group_is_an_ultraserver_node_config_and_larger_groups_are_refused():
    plan = planner.plan(make_request(instance_type="trn2u.48xlarge", max_model_len=32768, max_num_seqs=8))
    assert (plan.nodes_per_replica, plan.ultraserver_nodes) == (4, 4)
    assert groups.node_counts(lookup("trn2u.48xlarge")) == (2, 4)
    with pytest.raises(PlanError, match=r"group of 8 trn2u\.48xlarge nodes is not legal.*UltraServer has 4 nodes"):
        planner.plan(make_request(instance_type="trn2u.48xlarge", nodes_per_replica=8))


def test_dra_on_an_ultraserver_claims_nodes_without_efa_and_the_device_plugin_keeps_efa():
    request = make_request(instance_type="trn2u.48xlarge", max_model_len=32768, max_num_seqs=8)
    dra = planner.plan(replace(request, allocation="dra"))
    plugin = planner.plan(request)
    assert (dra.allocation, dra.efa_devices_per_pod, dra.needs_contiguous_cores) == ("dra", 0, False)
    assert (plugin.allocation, plugin.efa_devices_per_pod) == ("devicePlugin", 16)


def test_given_nodes_and_tp_must_agree():
    with pytest.raises(PlanError, match=r"fills 4 trn1\.32xlarge nodes.*nodesPerReplica is 2"):
        planner.plan(make_request(instance_type="trn1.32xlarge", tensor_parallel_size=128, nodes_per_replica=2))
    with pytest.raises(PlanError, match="not a whole number of nodes"):
        planner.plan(make_request(instance_type="trn1.32xlarge", tensor_parallel_size=48))


def test_refused_only_when_the_largest_legal_group_does_not_fit_either():
    arch = ModelArch("acme/giant", 6000, 120, 128, 8, 128)  # 12 TB of BF16 weights
    with pytest.raises(PlanError) as exc:
        planner.plan(make_request("acme/giant", arch=arch, instance_type="trn1.32xlarge", max_num_seqs=1))
    message = str(exc.value)
    assert "16 nodes x 32 NeuronCores of trn1.32xlarge" in message and "8192.0 GiB are available" in message


def test_efa_off_is_planned_with_a_warning():
    plan = planner.plan(make_request(instance_type="trn1.32xlarge", max_model_len=8192, max_num_seqs=8, efa=False))
    assert plan.efa_devices_per_pod == 0
    assert "NEURON_SKIP_EFA_AFFINITY" in dict(plan.env) and "FI_PROVIDER" not in dict(plan.env)
    assert any(r.startswith("warning: spec.neuron.efa is false") for r in plan.reasons)


def test_the_group_environment_is_wired_to_the_leaderworkerset_variables():
    env = groups.multi_node_env(local_tensor_parallel_size=32, efa=True)
    assert env["NEURON_RT_ROOT_COMM_ID"] == "$(LWS_LEADER_ADDRESS):8990"
    assert env["NEURON_RANK_ID"] == "$(LWS_WORKER_INDEX)" and env["WORLD_SIZE"] == "$(LWS_GROUP_SIZE)"
    assert env["NEURON_LOCAL_TP"] == "32" and env["FI_PROVIDER"] == "efa"
    assert "FI_PROVIDER" not in groups.multi_node_env(local_tensor_parallel_size=32, efa=False)


# --- planner properties -----------------------------------------------------------------------

GROUP_INSTANCES = [i.name for i in CATALOG if i.efa_devices]


@st.composite
def group_requests(draw):
    return make_request(
        draw(st.sampled_from([LLAMA_405B, "meta-llama/Llama-3.3-70B-Instruct", "Qwen/Qwen2.5-72B-Instruct"])),
        instance_type=draw(st.sampled_from(GROUP_INSTANCES)),
        max_model_len=draw(st.sampled_from([2048, 8192, 16384, 32768])),
        max_num_seqs=draw(st.integers(min_value=1, max_value=64)),
        allocation=draw(st.sampled_from([None, "dra"])),
        nodes_per_replica=draw(st.sampled_from([None, None, 2, 4])),
    )


def _plan(request: PlanRequest):
    try:
        return planner.plan(request)
    except PlanError:
        return None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group_requests())
def test_a_group_never_exceeds_its_nodes_its_tp_is_legal_and_its_memory_fits(request):
    plan = _plan(request)
    if plan is None or plan.nodes_per_replica == 1:
        return
    instance = lookup(plan.instance_type)
    lnc = plan.logical_core_size
    node_cores = instance.logical_cores(lnc)
    # TP x nodes is legal: whole nodes, a legal group size, a legal degree on each node.
    assert plan.nodes_per_replica in groups.node_counts(instance)
    assert plan.tensor_parallel_size == plan.nodes_per_replica * plan.local_tensor_parallel_size
    assert plan.local_tensor_parallel_size == node_cores
    assert plan.local_tensor_parallel_size in instance.tp_degrees(lnc)
    # Never more than its nodes: each pod holds at most one node's devices, cores, CPU and memory.
    assert plan.resource_count <= instance.chips and plan.devices_per_replica == plan.nodes_per_replica * instance.chips
    assert plan.host_cpus <= instance.vcpus and plan.host_memory_bytes <= instance.host_memory_gib * GIB
    assert plan.efa_devices_per_pod <= instance.efa_devices
    # Memory fits, and is what the nodes' HBM gives.
    assert plan.memory_needed_bytes <= plan.memory_available_bytes
    assert plan.memory_available_bytes == plan.nodes_per_replica * instance.hbm_total_bytes
    assert plan.runtime in groups.MULTI_NODE_PARALLELISM


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(group_requests())
def test_the_fewest_nodes_are_chosen_and_a_refusal_means_no_legal_group_fits(request):
    request = replace(request, nodes_per_replica=None)
    plan = _plan(request)
    instance = lookup(request.instance_type)
    if plan is None:
        # Refused: then no legal group of this instance holds it either (or the request is refused
        # for a reason that is not memory, which a larger group would not fix).
        for nodes in groups.node_counts(instance):
            assert _plan(replace(request, nodes_per_replica=nodes)) is None
        return
    for nodes in (n for n in groups.node_counts(instance) if n < plan.nodes_per_replica):
        assert _plan(replace(request, nodes_per_replica=nodes)) is None, f"{nodes} nodes would do"
    if plan.nodes_per_replica > 1:
        single = _plan(replace(request, nodes_per_replica=1))
        assert single is None, "a group is only planned when one node cannot hold the replica"


@settings(max_examples=60, deadline=None)
@given(model=st.sampled_from([a.name for a in BUILTIN_MODELS]), seqs=st.integers(1, 64))
def test_without_an_instance_the_pick_confirms_by_direct_request_groups_included(model, seqs):
    request = make_request(model, max_num_seqs=seqs, max_model_len=32768)
    plan = _plan(request)
    if plan is None:
        return
    direct = planner.plan(replace(request, instance_type=plan.instance_type))
    assert (direct.tensor_parallel_size, direct.nodes_per_replica) == (
        plan.tensor_parallel_size,
        plan.nodes_per_replica,
    )


# --- the per-rank launch line -----------------------------------------------------------------


def _kubernetes_expand(text: str, env: dict[str, str]) -> str:
    """What the kubelet does to args: `$$` -> `$`, `$(VAR)` -> its value (unknown names stay)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and (m := re.match(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", text[i:])):
            out.append(env.get(m.group(1), m.group(0)))
            i += len(m.group(0))
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@pytest.fixture
def fake_vllm(tmp_path: Path) -> Path:
    """A `vllm` on PATH that prints its argv as JSON (the real one needs Neuron hardware)."""
    script = tmp_path / "vllm"
    script.write_text("#!/bin/sh\nexec python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return tmp_path


@pytest.mark.parametrize("index", [0, 1, 3], ids=["the leader starts at rank 0", "worker 1", "worker 3"])
def test_the_launch_line_gives_each_rank_its_start_rank_and_keeps_every_other_argument(fake_vllm, index):
    plan = planner.plan(make_request(instance_type="trn1.32xlarge", max_model_len=8192, max_num_seqs=8))
    argv = ["vllm", "serve", "meta-llama/Llama-3.1-405B-Instruct", *plan.args, "--revision", "it's-main"]
    line = groups.serve_script(argv, local_tensor_parallel_size=plan.local_tensor_parallel_size)
    env = {**os.environ, "PATH": f"{fake_vllm}:{os.environ['PATH']}", "LWS_WORKER_INDEX": str(index)}
    escaped = line.replace("$", "$$")  # as the renderer puts it into args
    shell_line = _kubernetes_expand(escaped, {"LWS_WORKER_INDEX": "should-not-be-used-by-kubernetes"})
    done = subprocess.run(["/bin/sh", "-c", shell_line], env=env, capture_output=True, text=True, check=True)
    got = json.loads(done.stdout)
    config = json.loads(got[got.index("--additional-config") + 1])
    section = config["override_neuron_config"]
    assert section["start_rank_id"] == index * 32
    assert section["local_ranks_size"] == 32
    planned = json.loads(plan.args[plan.args.index("--additional-config") + 1])["override_neuron_config"]
    assert {k: v for k, v in section.items() if k != "start_rank_id"} == planned
    without_config = [
        a for i, a in enumerate(got) if a != "--additional-config" and got[i - 1] != "--additional-config"
    ]
    plan_args = list(plan.args)
    i = plan_args.index("--additional-config")
    del plan_args[i : i + 2]
    assert without_config == ["serve", "meta-llama/Llama-3.1-405B-Instruct", *plan_args, "--revision", "it's-main"]

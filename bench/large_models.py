"""Plans of models too large for one node: where groups start, what they cost, how fast planning is.

Prints tables; asserts nothing.
1. The large-model examples (examples/*405b*, the DRA example): nodes per replica, TP (per node x
   nodes), devices and EFA devices per pod, Neuron memory needed vs available, host requests,
   the startup estimate.
2. Llama-3.1-405B BF16 over a grid of context x concurrency on trn1.32xlarge, trn2.48xlarge and
   trn2u.48xlarge (auto runtime): the group size the planner picks, or "-" when no legal group
   holds it. KV heads are replicated to the global TP degree, so the KV cache grows with the group.
3. Planner time per plan (median of repeats, this machine), single-node vs group plans.

Usage: python bench/large_models.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import yaml

from neuronfleet.api import convert, resource
from neuronfleet.errors import PlanError
from neuronfleet.neuron import planner
from neuronfleet.neuron.types import PlanRequest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("llama31-405b-trn1-lws.yaml", "llama31-405b-trn2u-ultraserver.yaml", "llama33-70b-trn2-dra.yaml")
MODEL = "meta-llama/Llama-3.1-405B-Instruct"
GIB = 1024**3


def _gib(value: float) -> str:
    return f"{value / GIB:.0f}"


def example_table() -> list[str]:
    rows = [
        "| example | instance | runtime | nodes | TP (per node x nodes) | devices/pod | EFA/pod | allocation | "
        "needed GiB | available GiB | host/pod | startup s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in EXAMPLES:
        (doc,) = [d for d in yaml.safe_load_all((ROOT / "examples" / name).read_text()) if d]
        plan = planner.plan(convert.plan_request(resource.load(doc)))
        tp = f"{plan.tensor_parallel_size} ({plan.local_tensor_parallel_size} x {plan.nodes_per_replica})"
        rows.append(
            f"| {name} | {plan.instance_type} | {plan.runtime} | {plan.nodes_per_replica} | {tp} | "
            f"{plan.resource_count} | {plan.efa_devices_per_pod} | {plan.allocation} | "
            f"{_gib(plan.memory_needed_bytes)} | {_gib(plan.memory_available_bytes)} | "
            f"{plan.host_cpus} vCPU, {_gib(plan.host_memory_bytes)} GiB | {plan.expected_startup_seconds} |"
        )
    return rows


def _request(**fields: object) -> PlanRequest:
    return PlanRequest(model=MODEL, source=MODEL, served_name="x", **fields)  # type: ignore[arg-type]


def grid_table() -> list[str]:
    contexts = (2048, 8192, 32768)
    seqs = (1, 8, 32)
    instances = ("trn1.32xlarge", "trn2.48xlarge", "trn2u.48xlarge")
    header = "| maxModelLen x maxNumSeqs | " + " | ".join(instances) + " |"
    rows = [header, "|---|" + "---|" * len(instances)]
    for length in contexts:
        for n in seqs:
            cells = []
            for instance in instances:
                try:
                    plan = planner.plan(_request(instance_type=instance, max_model_len=length, max_num_seqs=n))
                    cells.append(
                        f"{plan.nodes_per_replica} node(s), TP {plan.tensor_parallel_size}, {plan.runtime}, "
                        f"{_gib(plan.memory_needed_bytes)}/{_gib(plan.memory_available_bytes)} GiB"
                    )
                except PlanError:
                    cells.append("-")
            rows.append(f"| {length} x {n} | " + " | ".join(cells) + " |")
    return rows


def timing_table(repeats: int) -> list[str]:
    cases = {
        "single node (405B on trn2.48xlarge, 8 x 8192)": _request(
            instance_type="trn2.48xlarge", max_model_len=8192, max_num_seqs=8
        ),
        "group of 4 (405B on trn1.32xlarge, 8 x 8192)": _request(
            instance_type="trn1.32xlarge", max_model_len=8192, max_num_seqs=8
        ),
        "no instance given (405B, 8 x 32768)": _request(max_model_len=32768, max_num_seqs=8),
    }
    rows = ["| plan | median ms | plan |", "|---|---|---|"]
    for label, request in cases.items():
        times = []
        plan = None
        for _ in range(repeats):
            start = time.perf_counter()
            plan = planner.plan(request)
            times.append(time.perf_counter() - start)
        assert plan is not None
        shape = f"{plan.instance_type}, {plan.nodes_per_replica} node(s), TP {plan.tensor_parallel_size}"
        rows.append(f"| {label} | {1000 * statistics.median(times):.2f} | {shape} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=50, help="planner runs per timed case (50)")
    args = parser.parse_args()
    print("## Large-model examples\n")
    print("\n".join(example_table()))
    print("\n## Llama-3.1-405B BF16: nodes per replica by context and concurrency\n")
    print("\n".join(grid_table()))
    print(f"\n## Planner time ({args.repeats} runs each, median)\n")
    print("\n".join(timing_table(args.repeats)))


if __name__ == "__main__":
    main()

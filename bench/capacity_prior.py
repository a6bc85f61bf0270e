"""The roofline capacity prior against every published Neuron latency it can be checked on.

For each figure of `neuron.capacity.PUBLISHED`: the planned replica's roofline step time at the published
concurrency and its prefill time for the published prompt (alpha + gamma x prompt), beside the
measurement, and their ratio (above 1: the prior is slower than measured, so it buys more replicas
than needed until the fit corrects it; below 1: it is optimistic). Then the curve and the SLO targets the
prior implies for every example in examples/ (10 tokens/s per user, 1 s + prompt / 4000 tokens/s).

Prints figures; asserts nothing. Usage: python bench/capacity_prior.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from neuronfleet.api import convert, resource
from neuronfleet.autoscale import slo_targets
from neuronfleet.neuron import capacity, planner
from neuronfleet.neuron.types import PlanRequest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SLO = slo_targets.ServiceLevel(per_user_tokens_per_second=10.0, ttft_seconds=1.0, ttft_prompt_tokens_per_second=4000.0)


def _published() -> list[str]:
    lines = [
        f"{'model':24s} {'instance':14s} {'TP':>3s} {'conc':>4s} | {'ITL ms':>7s} {'prior':>6s} {'x':>5s} | "
        f"{'TTFT ms':>7s} {'prior':>6s} {'x':>5s} | source"
    ]
    for fig in capacity.PUBLISHED:
        request = PlanRequest(
            model=fig.model,
            source=fig.model,
            served_name="bench",
            instance_type=fig.instance_type,
            tensor_parallel_size=fig.tensor_parallel_size,
            max_num_seqs=4,
            max_model_len=4096,
        )
        prior = capacity.roofline(planner.plan(request))
        step = prior.step_seconds(fig.concurrency, 0)
        ttft = "" if fig.ttft_seconds is None else f"{fig.ttft_seconds * 1e3:7.0f}"
        prefill = prior.alpha + prior.gamma * fig.prompt_tokens
        ratio = "" if fig.ttft_seconds is None else f"{prefill / fig.ttft_seconds:5.2f}"
        lines.append(
            f"{fig.model.split('/')[-1]:24s} {fig.instance_type:14s} {fig.tensor_parallel_size:3d} "
            f"{fig.concurrency:4d} | "
            f"{fig.step_seconds * 1e3:7.1f} {step * 1e3:6.1f} {step / fig.step_seconds:5.2f} | "
            f"{ttft:>7s} {prefill * 1e3:6.0f} {ratio:>5s} | {fig.source}"
        )
    return lines


def _examples() -> list[str]:
    lines = [
        f"{'example':28s} {'shape':34s} {'source':10s} {'alpha ms':>8s} {'beta ms':>7s} {'gamma us':>8s} | "
        f"{'B*':>3s} {'decode tok/s':>12s} {'prefill tok/s':>13s} {'chunk':>5s}"
    ]
    for path in sorted(EXAMPLES.glob("*.yaml")):
        md = resource.load(yaml.safe_load(path.read_text()))
        plan = planner.plan(convert.plan_request(md))
        prior = capacity.prior(plan)
        p = prior.profile
        derived = slo_targets.derive(SLO, p)
        shape = f"{plan.model.split('/')[-1]} {plan.instance_type} TP{plan.tensor_parallel_size}"
        lines.append(
            f"{path.name:28s} {shape:34s} {prior.source:10s} {p.alpha * 1e3:8.2f} {p.beta * 1e3:7.3f} "
            f"{p.gamma * 1e6:8.1f} | {derived.batch:3d} {derived.decode_tokens_per_second:12.0f} "
            f"{derived.prefill_tokens_per_second:13.0f} {derived.max_prefill_chunk_tokens:5d}"
        )
    return lines


def main() -> int:
    print("Roofline prior vs published Neuron latencies (x = prior / measured)")
    print("\n".join(_published()))
    print()
    print("Prior curve and SLO targets (10 tok/s per user) for every example")
    print("\n".join(_examples()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

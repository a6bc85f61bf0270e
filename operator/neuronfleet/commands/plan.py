"""`neuronfleet plan`: show the sharding plan for a model on a Neuron instance, and why.

The same pure planner the controller runs, from the command line: an ML engineer can check that a
model fits, which TP degree and resources a replica gets and which `vllm serve` flags it runs with,
before writing a ModelDeployment. Impossible requests exit with code 2 and the planner's message.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from typing import Any

from neuronfleet.errors import PlanError

__all__ = ["plan_to_dict", "register"]

EXIT_PLAN_ERROR = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="plan TP degree, Neuron resources, env and vLLM args for a model",
        description="Plan one replica of a model on AWS Inferentia/Trainium: instance type, tensor-parallel "
        "degree, Neuron resources, environment and `vllm serve` arguments, with the reasons for each choice.",
    )
    parser.add_argument("--model", required=True, help="model id, e.g. meta-llama/Llama-3.1-8B-Instruct")
    parser.add_argument("--instance-type", help="EC2 instance type, e.g. inf2.48xlarge (default: the planner picks)")
    parser.add_argument("--tensor-parallel-size", type=int, help="TP degree (default: the smallest that fits)")
    parser.add_argument("--logical-core-size", type=int, help="LNC on trn2/trn3 (default: the instance's)")
    parser.add_argument("--max-model-len", type=int, default=8192, help="longest sequence in tokens (8192)")
    parser.add_argument("--max-num-seqs", type=int, default=32, help="concurrent sequences per replica (32)")
    parser.add_argument("--max-num-batched-tokens", type=int, help="prefill chunk (default: per runtime)")
    parser.add_argument(
        "--per-user-tokens-per-second",
        type=float,
        help="spec.autoscaling.slo's per-user rate: sizes the prefill chunk on a calibrated shape and prints the "
        "SLO targets the capacity prior implies",
    )
    parser.add_argument("--ttft-seconds", type=float, default=1.0, help="SLO: first-token budget of a short prompt (1)")
    parser.add_argument(
        "--ttft-prompt-tokens-per-second", type=float, help="SLO: prompt tokens/s added to the TTFT budget (none)"
    )
    parser.add_argument(
        "--attainment", type=float, default=0.99, help="SLO: share of requests that must meet it (0.99)"
    )
    parser.add_argument("--runtime", choices=("vllm-neuron", "nxdi"), help="runtime profile (default: by family)")
    parser.add_argument(
        "--nodes-per-replica", type=int, help="nodes one replica spans (default: 1, or the fewest that fit)"
    )
    parser.add_argument(
        "--allocation", choices=("devicePlugin", "dra"), help="how pods get devices (default: devicePlugin)"
    )
    parser.add_argument("--no-efa", action="store_true", help="no EFA devices for the pods of a multi-node replica")
    parser.add_argument("--dtype", default="bfloat16", help="weight dtype (bfloat16)")
    parser.add_argument("--quantization", help="weight quantization (vllm-neuron: fp8, mxfp8, mxfp4; nxdi: int8, fp8)")
    parser.add_argument("--kv-cache-dtype", help="KV cache dtype: auto or fp8 (vllm-neuron)")
    parser.add_argument("--served-model-name", help="name clients use (default: the model id)")
    parser.add_argument("--speculative-model", help="EAGLE draft model id")
    parser.add_argument("--num-speculative-tokens", type=int, default=3, help="draft tokens per step (3)")
    parser.add_argument(
        "--compiled-cache-hit", action="store_true", help="assume compiled artifacts exist (shorter startup)"
    )
    parser.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table", help="output format")
    parser.set_defaults(func=_run)


def plan_to_dict(plan: Any) -> dict[str, Any]:
    """A Plan as plain JSON-able data; env becomes a mapping, tuples become lists."""
    data = dataclasses.asdict(plan)
    data["args"] = list(plan.args)
    data["env"] = dict(plan.env)
    data["reasons"] = list(plan.reasons)
    return data


def _request(args: argparse.Namespace) -> Any:
    from neuronfleet.neuron.types import PlanRequest, SpeculativeRequest

    speculative = None
    if args.speculative_model:
        method = "eagle3" if args.runtime != "nxdi" else "eagle"
        speculative = SpeculativeRequest(
            model=args.speculative_model, num_speculative_tokens=args.num_speculative_tokens, method=method
        )
    return PlanRequest(
        model=args.model,
        source=args.model,
        served_name=args.served_model_name or args.model,
        instance_type=args.instance_type,
        tensor_parallel_size=args.tensor_parallel_size,
        logical_core_size=args.logical_core_size,
        runtime=args.runtime,
        dtype=args.dtype,
        quantization=args.quantization,
        kv_cache_dtype=args.kv_cache_dtype,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        speculative=speculative,
        compiled_cache_hit=args.compiled_cache_hit,
        slo_tokens_per_second=args.per_user_tokens_per_second,
        nodes_per_replica=args.nodes_per_replica,
        allocation=args.allocation,
        efa=not args.no_efa,
    )


CURVE_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
"""Decode batches at which `neuronfleet plan` prints the prior's step time."""


def capacity_to_dict(plan: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The capacity prior of the planned replica, its step-time curve and, with an SLO rate, the targets it implies."""
    from neuronfleet.autoscale import slo_policy, slo_targets
    from neuronfleet.neuron import capacity

    prior = capacity.prior(plan)
    p = prior.profile
    out: dict[str, Any] = {
        "source": prior.source,
        "relativeUncertainty": prior.relative_uncertainty,
        "alphaSeconds": p.alpha,
        "betaSeconds": p.beta,
        "gammaSeconds": p.gamma,
        "kvCacheTokens": p.kv_cache_tokens,
        "curve": [
            {"batch": b, "stepSeconds": p.step_seconds(b, 0), "perUserTokensPerSecond": 1.0 / p.step_seconds(b, 0)}
            for b in CURVE_BATCHES
            if b <= p.max_num_seqs
        ],
    }
    rate = args.per_user_tokens_per_second
    if rate:
        slo = slo_targets.ServiceLevel(rate, args.ttft_seconds, args.ttft_prompt_tokens_per_second)
        try:
            d = slo_policy.derive(slo, p, goal=args.attainment)
        except slo_targets.SloUnreachable as exc:
            out["slo"] = {"unreachable": str(exc)}
            return out
        out["slo"] = {
            "batch": d.derived.batch,
            "batchLimit": d.derived.batch_limit,
            "decodeTokensPerSecond": d.derived.decode_tokens_per_second,
            "prefillTokensPerSecond": d.derived.prefill_tokens_per_second,
            "maxPrefillChunkTokens": d.derived.max_prefill_chunk_tokens,
            "utilization": d.utilization,
            "slotShare": d.concurrency_share,
            "targets": slo_targets.status_targets(d.targets),
        }
    return out


def _capacity_table(data: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"capacity ({data['source']} prior, +-{data['relativeUncertainty']:.0%}; the operator refits it online):",
        f"  step = {data['alphaSeconds'] * 1e3:.2f} ms + {data['betaSeconds'] * 1e3:.3f} ms x decode batch + "
        f"{data['gammaSeconds'] * 1e6:.1f} us x prefill tokens",
        "  batch  step ms  tokens/s per user",
    ]
    lines += [
        f"  {row['batch']:5d}  {row['stepSeconds'] * 1e3:7.1f}  {row['perUserTokensPerSecond']:17.1f}"
        for row in data["curve"]
    ]
    slo = data.get("slo")
    if slo and "unreachable" in slo:
        lines.append(f"  SLO unreachable: {slo['unreachable']}")
    elif slo:
        targets = ", ".join(f"{k} {v:.3g}" for k, v in slo["targets"].items())
        lines += [
            f"  SLO: batch {slo['batch']} ({slo['batchLimit']}), {slo['decodeTokensPerSecond']:.0f} decode and "
            f"{slo['prefillTokensPerSecond']:.0f} prefill tokens/s per replica, chunk <= "
            f"{slo['maxPrefillChunkTokens']} tokens",
            f"  targets before any measurement: utilization {slo['utilization']:.2f} (queueing bound, nominal "
            f"prompts), slot share {slo['slotShare']:.2f} (Erlang C): {targets}",
        ]
    return lines


def _gib(value: int) -> str:
    return f"{value / 1024**3:.1f} GiB"


def _table(plan: Any, source: str) -> str:
    rows = [
        ("model", plan.model),
        ("instance type", f"{plan.instance_type} ({plan.instance_family})"),
        ("runtime", plan.runtime),
        ("tensor parallel", f"{plan.tensor_parallel_size} (LNC {plan.logical_core_size})"),
        (
            "nodes/replica",
            f"{plan.nodes_per_replica} (TP {plan.local_tensor_parallel_size} per node, across nodes)"
            if plan.multi_node
            else "1",
        ),
        ("allocation", plan.allocation),
        ("neuron memory", f"{_gib(plan.memory_needed_bytes)} needed of {_gib(plan.memory_available_bytes)}"),
        ("  weights / KV", f"{_gib(plan.weights_bytes)} / {_gib(plan.kv_cache_bytes)}"),
        (
            "resources" + (" per pod" if plan.multi_node else ""),
            f"{plan.resource_name}: {plan.resource_count}"
            + (f", vpc.amazonaws.com/efa: {plan.efa_devices_per_pod}" if plan.efa_devices_per_pod else ""),
        ),
        ("devices/replica", str(plan.devices_per_replica)),
        ("replicas/node", str(plan.replicas_per_node)),
        ("contiguous cores", "yes (Neuron scheduler extension)" if plan.needs_contiguous_cores else "no"),
        ("host requests", f"cpu {plan.host_cpus}, memory {_gib(plan.host_memory_bytes)}"),
        ("startup (est.)", f"{plan.expected_startup_seconds} s"),
    ]
    width = max(len(key) for key, _ in rows)
    lines = [f"{key.ljust(width)}  {value}" for key, value in rows]
    lines.append("")
    lines.append("env:")
    lines += [f"  {key}={value}" for key, value in plan.env]
    lines.append("")
    lines.append("command:")
    lines.append("  vllm serve " + shlex.quote(source) + " \\")
    flags: list[str] = []
    for arg in plan.args:
        if arg.startswith("-") or not flags:
            flags.append(shlex.quote(arg))
        else:
            flags[-1] += " " + shlex.quote(arg)
    lines += [f"    {flag}" + (" \\" if i < len(flags) - 1 else "") for i, flag in enumerate(flags)]
    lines.append("")
    lines.append("why:")
    lines += [f"  - {reason}" for reason in plan.reasons]
    return "\n".join(lines) + "\n"


def _run(args: argparse.Namespace) -> int:
    from neuronfleet.neuron import planner

    try:
        request = _request(args)
        plan = planner.plan(request)
    except PlanError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_PLAN_ERROR
    capacity = capacity_to_dict(plan, args)
    if args.output == "json":
        sys.stdout.write(json.dumps({**plan_to_dict(plan), "capacity": capacity}, indent=2) + "\n")
    elif args.output == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump({**plan_to_dict(plan), "capacity": capacity}, sort_keys=False, width=1000))
    else:
        sys.stdout.write(_table(plan, request.source) + "\n".join(_capacity_table(capacity)) + "\n")
    return 0

"""How fast the fleet simulator replays a one-hour trace: CPU seconds, per request, per event.

Goal (issue 5): one policy over a one-hour trace in under 30 s on one core. Prints figures; asserts
nothing. Usage: python bench/simulator_speed.py [--trace FILE] [--profile NAME] [--startup S]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from neuronfleet.sim.oracle import plan_oracle
from neuronfleet.sim.policies import POLICY_NAMES
from neuronfleet.sim.profiles import get_profile
from neuronfleet.sim.runner import run_policy
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import read_trace

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traces"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default=str(TRACES / "AzureLLMInferenceTrace_conv.csv"))
    parser.add_argument("--profile", default="llama-3.1-8b-trn2-tp4")
    parser.add_argument("--startup", type=float, default=180.0)
    parser.add_argument("--rate-scale", type=float, default=1.0)
    args = parser.parse_args()

    started = time.process_time()
    trace = read_trace(args.trace)
    if args.rate_scale != 1.0:
        from neuronfleet.sim.trace import scale_rate

        trace = scale_rate(trace, args.rate_scale)
    read_cpu = time.process_time() - started
    profile = get_profile(args.profile)
    slo = Slo()
    started = time.process_time()
    plan = plan_oracle(trace, profile, slo, args.startup)
    plan_cpu = time.process_time() - started
    print(f"trace {Path(args.trace).name}: {len(trace)} requests over {trace[-1].arrival:.0f} s")
    print(f"read {read_cpu:.2f} s CPU; oracle plan (N*(t), LB_L) {plan_cpu:.2f} s CPU")
    print(f"{'policy':14s} {'cpu s':>7s} {'us/request':>11s} {'events':>8s} {'us/event':>9s} {'attain':>7s}")
    for name in POLICY_NAMES:
        if name == "static":
            continue
        started = time.process_time()
        run = run_policy(trace, profile, name, startup_seconds=args.startup, slo=slo, plan=plan)
        cpu = time.process_time() - started
        events = run.result.events
        print(
            f"{name:14s} {cpu:7.2f} {1e6 * cpu / len(trace):11.1f} {events:8d} {1e6 * cpu / events:9.2f} "
            f"{run.report.attainment:7.4f}"
        )


if __name__ == "__main__":
    main()

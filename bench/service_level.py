"""How close the measured service level (from vLLM's histograms) comes to the per-request truth.

For each trace and family, a fixed fleet a little too small for it (the largest size whose attainment is
below 99.5 %, so there are misses to count) is simulated with vLLM's histograms scraped every 15 s; every
five minutes the operator's own `service_level.measure` reads the simulator's answers to
`service_level.queries` over the last window, and the table compares its attainment with the exact share
of the window's requests that met the SLO (both TTFT and per-user rate).

Prints figures; asserts nothing. Usage: python bench/service_level.py [--traces DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from neuronfleet.autoscale import service_level
from neuronfleet.sim import adapter, answers, opt, workloads
from neuronfleet.sim.fleet import simulate
from neuronfleet.sim.policies import StaticPolicy
from neuronfleet.sim.profiles import get_profile
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import read_trace

_HERE = Path(__file__).resolve().parents[1]
TRACES = next(
    (p for p in (_HERE.parent / "shared/data/traces", _HERE.parent.parent / "shared/data/traces") if p.is_dir()),
    _HERE.parent / "shared/data/traces",
)
AZURE = {"code": "AzureLLMInferenceTrace_code.csv", "conv": "AzureLLMInferenceTrace_conv.csv"}


class Measuring(StaticPolicy):
    """A fixed fleet whose operator measures the service level every five minutes."""

    scrape_histograms = True
    scrape_seconds = 15.0
    sync_seconds = 15.0

    def __init__(self, replicas: int, slo: Slo) -> None:
        super().__init__(replicas)
        self.slo = adapter.service_level(slo)
        self.measured: list[tuple[float, service_level.Measurement]] = []

    def desired(self, view, now: float) -> int:
        if now >= service_level.WINDOW_SECONDS and int(now) % 300 < 15:
            results = answers.service_level_results(view.scrapes, now)
            self.measured.append((now, service_level.measure(results, self.slo)))
        return self.replicas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", default=str(TRACES))
    args = parser.parse_args()
    slo = Slo()
    profile = adapter.deployed_profile(get_profile("llama-3.1-8b-trn2-tp4"), slo)
    keys = [*AZURE, *(f"{name}:1" for name in workloads.names())]
    print(f"{'trace':16s} {'fleet':>5s} {'windows':>7s} {'truth mean':>10s} {'mean err':>9s} {'max |err|':>9s}")
    for key in keys:
        trace = read_trace(Path(args.traces) / AZURE[key]) if key in AZURE else workloads.generate(key.split(":")[0], 1)
        below = [r.replicas for r in opt.static_runs(trace, profile, slo, goal=0.995) if r.report.attainment < 0.995]
        if not below:
            continue
        chosen = max(below)
        policy = Measuring(chosen, slo)
        result = simulate(trace, profile, policy, startup_seconds=60.0, initial_replicas=chosen)
        errors, truths = [], []
        for now, m in policy.measured:
            window = [r for r in result.requests if now - 300.0 < r.first_token <= now]
            if not m.measured or not window:
                continue
            truth = sum(
                slo.met(r.prompt_tokens, r.output_tokens, r.first_token - r.arrival, r.finish - r.first_token)
                for r in window
            ) / len(window)
            truths.append(truth)
            errors.append(m.attainment - truth)
        if errors:
            print(
                f"{key:16s} {chosen:5d} {len(errors):7d} {statistics.mean(truths):10.4f} "
                f"{statistics.mean(errors):+9.4f} {max(abs(e) for e in errors):9.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

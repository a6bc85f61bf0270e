"""One call from (trace, profile, policy, startup) to a scored run, for the CLI and the benchmark."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from neuronfleet.sim import adapter
from neuronfleet.sim.fleet import SimResult, simulate
from neuronfleet.sim.oracle import OraclePlan, plan_oracle
from neuronfleet.sim.policies import make_policy
from neuronfleet.sim.profiles import EngineProfile
from neuronfleet.sim.report import Report, summarize
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest

__all__ = ["Run", "run_policy"]


@dataclass(frozen=True)
class Run:
    """A run's raw result, its report and the oracle it was compared with."""

    result: SimResult
    report: Report
    plan: OraclePlan


def run_policy(
    trace: Sequence[TraceRequest],
    profile: EngineProfile,
    policy_name: str,
    *,
    startup_seconds: float,
    slo: Slo | None = None,
    target: float | None = None,
    plan: OraclePlan | None = None,
    progress: Callable[[float, float], None] | None = None,
    planned_engine: bool = True,
    initial_replicas: int | None = None,
) -> Run:
    """Simulate one policy; every policy starts from `initial_replicas` warm at t=0 (default: the oracle's).

    neuronfleet runs on the engine its planner configures for the SLO (`adapter.deployed_profile`);
    the baselines run on `profile` as given, the serving options a hand-written deployment keeps.
    `planned_engine=False` runs neuronfleet on `profile` too, to compare autoscalers on one engine.
    """
    slo = slo or Slo()
    plan = plan or plan_oracle(trace, profile, slo, startup_seconds)
    if policy_name == "neuronfleet" and planned_engine:
        profile = adapter.deployed_profile(profile, slo)
    policy = make_policy(policy_name, profile, slo, startup_seconds=startup_seconds, plan=plan, target=target)
    initial = initial_replicas or max(1, plan.replicas_at(0.0))
    if policy_name == "static":
        initial = int(getattr(policy, "replicas", initial))
    result = simulate(
        trace, profile, policy, startup_seconds=startup_seconds, initial_replicas=initial, progress=progress
    )
    report = summarize(result, slo, oracle_core_hours=plan.lbl_core_hours)
    return Run(result, report, plan)

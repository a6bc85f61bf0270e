"""Policy names the CLI and the benchmark accept, with defaults derived from the profile.

A baseline's target is its one tuning knob; `target=None` picks the documented default (or a
profile-derived one where the default is workload-specific), and the benchmark sweeps it.
"""

from __future__ import annotations

from neuronfleet.neuron import capacity
from neuronfleet.sim import baselines
from neuronfleet.sim.oracle import OraclePlan, OraclePolicy
from neuronfleet.sim.policy import FleetPolicy
from neuronfleet.sim.profiles import EngineProfile
from neuronfleet.sim.slo import Slo

__all__ = ["BASELINES", "POLICY_NAMES", "default_target", "make_policy", "slo_batch", "sweep_targets"]

BASELINES: tuple[str, ...] = ("hpa", "keda-tokens", "keda-waiting", "kpa", "apa")
POLICY_NAMES: tuple[str, ...] = ("neuronfleet", *BASELINES, "oracle", "static")


def slo_batch(profile: EngineProfile, slo: Slo) -> int:
    """Largest decode batch whose step still gives each user the SLO's token rate."""
    return max(1, capacity.slo_batch(profile, slo.min_tokens_per_second))


def default_target(name: str, profile: EngineProfile, slo: Slo) -> float:
    """The target a user would start from (documented defaults where one exists)."""
    batch = slo_batch(profile, slo)
    if name == "hpa":
        return 0.75 * batch  # running+waiting per pod: three quarters of the batch the SLO allows
    if name == "keda-tokens":
        # Half the decode-only throughput at that batch: prefill takes the other half of the steps.
        return round(0.5 * batch / profile.step_seconds(batch, 0), -1)
    if name == "keda-waiting":
        return 5.0  # WVA's queueLengthThreshold default
    if name == "kpa":
        return float(profile.max_num_seqs)  # containerConcurrency = max_num_seqs (70 % applied)
    if name == "apa":
        return 0.5  # AIBrix sample: kv_cache_usage target 0.5
    if name == "static":
        return 1.0
    raise ValueError(f"no target for policy {name!r}")


def sweep_targets(name: str, profile: EngineProfile, slo: Slo) -> tuple[float, ...]:
    """Targets the benchmark tries, from generous to lean, to compare policies at equal attainment."""
    if name == "keda-waiting":
        return (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0)
    if name == "apa":
        return (0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.5)
    if name == "static":
        return (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 24.0, 32.0)
    if name == "neuronfleet":
        return (0.1, 0.15, 0.25, 0.4, 0.55, 0.75, 1.0, 1.3)
    base = default_target(name, profile, slo)
    return tuple(round(base * f, 2) for f in (0.1, 0.15, 0.25, 0.4, 0.55, 0.75, 1.0, 1.3))


class StaticPolicy:
    """A fixed fleet: the `static-best` reference when its size is swept."""

    sync_seconds = 60.0
    scrape_seconds = 60.0
    scrape_kv = False

    def __init__(self, replicas: int) -> None:
        self.name = f"static@{replicas}"
        self.replicas = replicas

    def desired(self, view: object, now: float) -> int:
        """Always the same count."""
        del view, now
        return self.replicas


def make_policy(
    name: str,
    profile: EngineProfile,
    slo: Slo,
    *,
    startup_seconds: float,
    plan: OraclePlan,
    target: float | None = None,
    max_replicas: int = 64,
) -> FleetPolicy:
    """Build a fresh policy object (policies keep state; never share one between runs)."""
    if name == "oracle":
        return OraclePolicy(plan)
    if name == "neuronfleet":
        from neuronfleet.sim import adapter  # needs neuronfleet.autoscale.decide

        return adapter.NeuronfleetPolicy(
            profile, slo, startup_seconds=startup_seconds, target_scale=target, max_replicas=max_replicas
        )
    value = default_target(name, profile, slo) if target is None else target
    if name == "hpa":
        return baselines.Hpa(target=value, max_replicas=max_replicas)
    if name == "keda-tokens":
        return baselines.Keda(signal="tokens", threshold=value, max_replicas=max_replicas)
    if name == "keda-waiting":
        return baselines.Keda(signal="waiting", threshold=value, max_replicas=max_replicas)
    if name == "kpa":
        return baselines.Kpa(container_concurrency=value, max_replicas=max_replicas)
    if name == "apa":
        return baselines.Apa(target=value, max_replicas=max_replicas)
    if name == "static":
        return StaticPolicy(int(value))
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")

"""The neuronfleet policy in the simulator runs the operator's own `decide`, fed like the operator."""

from __future__ import annotations

from collections import deque

import pytest
from sim_builders import ROUND

from neuronfleet.autoscale import capacity_fit, defaults, feedback, service_level, slo_policy, slo_targets, types
from neuronfleet.autoscale import decide as decide_module
from neuronfleet.autoscale import step as step_module
from neuronfleet.neuron import capacity
from neuronfleet.sim import adapter, workloads
from neuronfleet.sim.fleet import simulate
from neuronfleet.sim.observe import FleetView, ReplicaSample, Scrape
from neuronfleet.sim.runner import run_policy
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest


def view(concurrency_per_replica: int, *, replicas: int = 2, at: float = 30.0) -> FleetView:
    scrapes: deque[Scrape] = deque()
    for t, tokens in ((at - 30.0, 0.0), (at - 15.0, 150.0), (at, 300.0)):
        sample = ReplicaSample(concurrency_per_replica, 1, 0.25, tokens, 10 * tokens)
        scrapes.append(Scrape(t, {i: sample for i in range(replicas)}))
    return FleetView(scrapes, current_replicas=replicas, ready_replicas=replicas, starting_replicas=0)


def test_the_observation_holds_fleet_sums_of_the_newest_scrape_and_the_token_rate():
    seen = adapter.observation(view(4, replicas=3), 30.0)
    assert seen.concurrency == 3 * (4 + 1)
    assert seen.waiting == 3
    assert seen.kv_cache_usage == pytest.approx(0.25)
    assert seen.tokens_per_second == pytest.approx(3 * 300.0 / 30.0)
    assert seen.sampled_at == 30.0
    assert (seen.current_replicas, seen.ready_replicas, seen.starting_replicas) == (3, 3, 0)


def test_completions_and_the_growth_of_running_plus_waiting_are_per_replica_like_rate_and_deriv():
    """Replica 0 finishes 2 requests a second and its queue grows by 3 over 30 s; replica 1 joins at the
    last scrape with 9 queued: one sample is no slope (`deriv` needs two), so joining is not growth."""
    scrapes: deque[Scrape] = deque()
    for t, done, waiting in ((0.0, 0.0, 1), (15.0, 30.0, 2), (30.0, 60.0, 4)):
        replicas = {0: ReplicaSample(5, waiting, 0.0, 0.0, 0.0, requests_finished=done)}
        if t == 30.0:
            replicas[1] = ReplicaSample(0, 9, 0.0, 0.0, 0.0, requests_finished=0.0)
        scrapes.append(Scrape(t, replicas))
    fleet = FleetView(scrapes, current_replicas=2, ready_replicas=2, starting_replicas=0)
    seen = adapter.observation(fleet, 30.0)
    assert seen.completions_per_second == pytest.approx(2.0)
    assert seen.concurrency_growth == pytest.approx(3 / 30)
    assert seen.rate_window_seconds == adapter.RATE_WINDOW_SECONDS


def test_the_simulated_engine_counts_every_finished_request():
    """The counter behind completions/s: each scrape reads exactly the requests finished by then."""
    trace = [TraceRequest(arrival=0.5 * i, prompt_tokens=200, output_tokens=20) for i in range(200)]
    scraped: list[tuple[float, float]] = []

    class Spy(adapter.NeuronfleetPolicy):
        def desired(self, view, now):
            if view.scrapes:
                newest = view.scrapes[-1]
                scraped.append((newest.at, sum(s.requests_finished for s in newest.replicas.values())))
            return super().desired(view, now)

    result = simulate(trace, ROUND, Spy(ROUND, Slo(), startup_seconds=60.0), startup_seconds=60.0, initial_replicas=2)
    assert len(scraped) > 3 and scraped[-1][1] > 0
    for at, count in scraped:
        assert count == sum(1 for r in result.requests if r.finish <= at)


def test_the_policy_is_the_operators_decide_function_not_a_copy(monkeypatch):
    calls = []
    real = decide_module.decide

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(decide_module, "decide", spy)
    policy = adapter.NeuronfleetPolicy(ROUND, Slo(), startup_seconds=60.0)
    policy.desired(view(1), 30.0)
    assert len(calls) == 1
    assert isinstance(calls[0][0], types.Observation)


def test_overload_scales_up_and_the_decision_is_kept_in_history():
    policy = adapter.NeuronfleetPolicy(ROUND, Slo(), startup_seconds=60.0)
    target = policy.policy.targets.concurrency
    wanted = policy.desired(view(int(target * 1.5)), 30.0)
    assert wanted > 2
    assert policy.last is not None and policy.last.reason == types.Reason.SCALED_UP
    assert [h.replicas_after for h in policy.history] == [wanted]


def test_an_empty_view_holds_the_current_count():
    policy = adapter.NeuronfleetPolicy(ROUND, Slo(), startup_seconds=60.0)
    empty = FleetView(deque(), current_replicas=3, ready_replicas=3, starting_replicas=0)
    assert policy.desired(empty, 10.0) == 3
    assert policy.last is not None and policy.last.reason == types.Reason.METRICS_UNAVAILABLE


def test_the_prompt_token_rate_reaches_decide():
    seen = adapter.observation(view(4, replicas=3), 30.0)
    assert seen.prompt_tokens_per_second == pytest.approx(3 * 3000.0 / 30.0)


def test_the_open_loop_policy_is_the_one_derived_from_the_scoring_slo():
    slo = Slo()
    policy = adapter.simulated_policy(ROUND, slo, startup_seconds=60.0, variant="open-loop")
    derived = slo_targets.derive(adapter.service_level(slo), ROUND)
    assert policy.targets == derived.targets
    assert policy.load_model == derived.load_model
    assert policy.scale_down == defaults.SCALE_DOWN


@pytest.mark.parametrize("scale", [0.5, 2.0], ids=["half the targets", "twice the targets"])
def test_the_sweep_scales_every_target(scale):
    plain = adapter.simulated_policy(ROUND, Slo(), startup_seconds=60.0, variant="v0")
    scaled = adapter.simulated_policy(ROUND, Slo(), startup_seconds=60.0, variant="v0", target_scale=scale)
    assert scaled.targets.concurrency == pytest.approx(plain.targets.concurrency * scale)
    assert scaled.targets.prompt_tokens_per_second == pytest.approx(plain.targets.prompt_tokens_per_second * scale)
    assert plain.targets.prompt_tokens_per_second == pytest.approx(1 / ROUND.gamma / 3)


def test_the_hold_variant_keeps_replicas_for_an_hour_of_recommendations():
    policy = adapter.simulated_policy(ROUND, Slo(), startup_seconds=60.0, variant="hold")
    assert policy.scale_down.stabilization_seconds == adapter.HOLD_SECONDS
    with pytest.raises(ValueError, match="unknown variant"):
        adapter.simulated_policy(ROUND, Slo(), startup_seconds=60.0, variant="nope")


def test_a_variant_names_the_policy_in_reports():
    assert adapter.NeuronfleetPolicy(ROUND, Slo(), startup_seconds=60.0).name == "neuronfleet"
    assert adapter.NeuronfleetPolicy(ROUND, Slo(), startup_seconds=60.0, variant="hold", target_scale=0.5).name == (
        "neuronfleet-hold@0.5"
    )


def test_neuronfleet_runs_on_the_engine_its_planner_renders_for_the_slo():
    profile = capacity.LLAMA_8B_TRN2_TP4
    deployed = adapter.deployed_profile(profile, Slo())
    assert deployed.max_num_batched_tokens == 608  # what `neuronfleet render` puts in --max-num-batched-tokens
    assert (deployed.alpha, deployed.beta, deployed.gamma) == (profile.alpha, profile.beta, profile.gamma)
    assert adapter.deployed_profile(profile, None) is profile
    assert adapter.deployed_profile(ROUND, Slo()) is ROUND  # not a calibrated shape: nothing to plan


def test_run_policy_gives_neuronfleet_the_planned_engine_and_the_baselines_the_profile_as_given():
    trace = [TraceRequest(float(i), 300, 20) for i in range(5)]
    profile = capacity.LLAMA_8B_TRN2_TP4
    ours = run_policy(trace, profile, "neuronfleet", startup_seconds=60)
    same = run_policy(trace, profile, "neuronfleet", startup_seconds=60, planned_engine=False)
    hpa = run_policy(trace, profile, "hpa", startup_seconds=60)
    assert ours.result.profile.max_num_batched_tokens == 608
    assert same.result.profile.max_num_batched_tokens == 2048
    assert hpa.result.profile.max_num_batched_tokens == 2048


def test_the_default_policy_runs_the_operators_measured_slo_path_every_sync(monkeypatch):
    """Spies on the pure functions the controller will call: the simulator must call the same ones."""
    calls: dict[str, int] = {}

    def spy(module, name):
        real = getattr(module, name)

        def wrapped(*args, **kwargs):
            calls[f"{module.__name__}.{name}"] = calls.get(f"{module.__name__}.{name}", 0) + 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapped)

    for module, name in [
        (service_level, "measure"),
        (capacity_fit, "update"),
        (feedback, "update"),
        (slo_policy, "derive"),
        (step_module, "step"),
    ]:
        spy(module, name)
    profile = capacity.LLAMA_8B_TRN2_TP4
    policy = adapter.NeuronfleetPolicy(profile, Slo(), startup_seconds=60.0)
    assert policy.scrape_histograms and policy.state is not None
    simulate(workloads.generate("steady", 1, duration=600.0), profile, policy, startup_seconds=60.0, initial_replicas=2)
    syncs = calls["neuronfleet.autoscale.step.step"]
    assert syncs >= 600 / policy.sync_seconds - 1
    for name in ("service_level.measure", "capacity_fit.update", "feedback.update"):
        assert calls[f"neuronfleet.autoscale.{name}"] == syncs
    assert policy.state.measurement is not None and policy.state.measurement.measured
    assert policy.state.fit.observations > 0, "the fit learned from the simulated series"


def test_the_open_loop_variant_does_not_measure():
    policy = adapter.NeuronfleetPolicy(ROUND, Slo(), startup_seconds=60.0, variant="open-loop")
    assert policy.state is None and not policy.scrape_histograms

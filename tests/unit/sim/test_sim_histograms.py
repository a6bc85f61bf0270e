"""Simulated replicas export vLLM's histograms, and the operator's measurement reads them like Prometheus'."""

from __future__ import annotations

import dataclasses
import math

import pytest
from sim_builders import ROUND

from neuronfleet.autoscale import capacity_fit, service_level, slo_targets
from neuronfleet.neuron import capacity
from neuronfleet.sim import answers, histograms, workloads
from neuronfleet.sim.engine import Replica, SimRequest
from neuronfleet.sim.fleet import simulate
from neuronfleet.sim.policies import StaticPolicy
from neuronfleet.sim.profiles import LLAMA_8B_TRN2_TP4
from neuronfleet.sim.slo import Slo


class Watching(StaticPolicy):
    """A fixed fleet that scrapes histograms and measures the service level every five minutes."""

    scrape_histograms = True
    scrape_seconds = 15.0
    sync_seconds = 15.0

    def __init__(self, replicas: int) -> None:
        super().__init__(replicas)
        self.measurements: list[tuple[float, service_level.Measurement]] = []
        self.views = []

    def desired(self, view, now: float) -> int:
        self.views.append((now, view.scrapes[-1] if view.scrapes else None))
        if now >= 300.0 and int(now) % 300 < 15:
            results = answers.service_level_results(view.scrapes, now)
            slo = slo_targets.ServiceLevel(10.0, 1.0, 4000.0)
            self.measurements.append((now, service_level.measure(results, slo)))
        return self.replicas


def test_vllm_bucket_bounds_are_the_ones_vllm_032_registers():
    assert histograms.TTFT_BUCKETS[:3] == (0.001, 0.005, 0.01) and histograms.TTFT_BUCKETS[-1] == 2560.0
    assert len(histograms.TTFT_BUCKETS) == 22 and len(histograms.ITL_BUCKETS) == 19
    assert histograms.one_two_five_buckets(100) == (1, 2, 5, 10, 20, 50, 100)
    assert histograms.PROMPT_TOKENS_BUCKETS[-1] == 20000


def test_a_histogram_counts_with_le_semantics_and_adds_pending_observations_to_a_snapshot():
    h = histograms.Histogram((0.1, 1.0))
    h.observe(0.1)  # on the bound: in the 0.1 bucket (le = less or equal)
    h.observe(0.5, 3)
    h.observe(7.0)
    snap = h.snapshot(0.05, 2)
    assert snap.cumulative == (3, 6, 7)
    assert snap.sum == pytest.approx(0.1 + 1.5 + 7.0 + 0.1)
    assert h.snapshot().count == 5, "the pending observations are not recorded"


def drain(replica: Replica, requests: list[SimRequest]) -> list[SimRequest]:
    """Enqueue everything at t=0 and run the replica's steps until every request finished."""
    done: list[SimRequest] = []
    now = 0.0
    for r in requests:
        replica.enqueue(r, 0.0)
    while (end := replica.finish_step(now, done)) is not None:
        now = end
    assert len(done) == len(requests)
    return done


def test_every_request_lands_once_in_the_per_request_histograms_with_its_own_timings():
    trace = [SimRequest(i, 0.0, 200 + 50 * i, 5 + i) for i in range(12)]
    replica = Replica(0, ROUND)
    done = drain(replica, trace)
    h = replica.histograms
    assert h["time_to_first_token_seconds"].snapshot().count == len(trace)
    assert h["time_to_first_token_seconds"].sum == pytest.approx(sum(r.first_token for r in done))
    assert h["request_time_per_output_token_seconds"].snapshot().count == len(trace)
    assert h["request_prompt_tokens"].sum == sum(r.prompt_tokens for r in trace)
    # One ITL per generated token after the first.
    assert h["inter_token_latency_seconds"].snapshot().count == sum(r.output_tokens - 1 for r in trace)
    # Queue + prefill == TTFT for every request (no front end in the simulator).
    total_ttft = h["time_to_first_token_seconds"].sum
    assert h["request_queue_time_seconds"].sum + h["request_prefill_time_seconds"].sum == pytest.approx(total_ttft)
    assert h["request_queue_time_seconds"].sum > 0, "a 4-slot replica queues some of 12 requests"


def test_a_scrape_inside_a_macro_step_counts_the_itls_of_the_steps_already_done():
    replica = Replica(0, ROUND)
    done: list[SimRequest] = []
    for i in range(3):
        replica.enqueue(SimRequest(i, 0.0, 10, 101), 0.0)
    now = 0.0
    while not replica.decoding or replica.step_chunks:
        now = replica.finish_step(now, done)
    assert replica.step_count > 10, "three decodes with nothing to prefill run as one macro step"
    middle = replica.step_start + 5.5 * replica.step_seconds
    itl = replica.histograms_at(middle)["inter_token_latency_seconds"]
    assert itl.count == replica.histograms["inter_token_latency_seconds"].snapshot().count + 3 * 5
    assert replica.generation_tokens_at(middle) == replica.generation_tokens + 3 * 5


@pytest.fixture(scope="module")
def watched() -> tuple[Watching, list[SimRequest]]:
    """Fifteen minutes of long prompts on too few replicas: some requests miss their TTFT budget."""
    trace = workloads.generate("long-prompts", 2, duration=960.0)
    policy = Watching(6)
    result = simulate(trace, LLAMA_8B_TRN2_TP4, policy, startup_seconds=60.0, initial_replicas=6)
    return policy, result.requests


def test_the_measured_attainment_matches_the_per_request_truth_within_two_points(watched):
    policy, requests = watched
    slo = Slo()
    compared = 0
    for now, m in policy.measurements:
        window = [r for r in requests if now - 300.0 < r.first_token <= now]
        truth = sum(
            slo.met(r.prompt_tokens, r.output_tokens, r.first_token - r.arrival, r.finish - r.first_token)
            for r in window
        ) / len(window)
        assert m.measured
        assert m.attainment == pytest.approx(truth, abs=0.02)
        compared += 1
    assert compared >= 2
    assert min(m.attainment for _, m in policy.measurements) < 0.99, "the fleet is small enough to miss"


def test_histogram_answers_come_back_in_prometheus_shape(watched):
    policy, _ = watched
    now, scrape = policy.views[-1]
    assert scrape is not None and all(s.histograms for s in scrape.replicas.values())
    found = answers.service_level_results([scrape], now)
    assert found["ttft"].samples == (), "one scrape is not enough for increase()"
    assert answers.le_label(math.inf) == "+Inf" and answers.le_label(0.1) == "0.1"


class Fitting(StaticPolicy):
    """A fixed fleet whose operator fits the step-time curve from the replicas' series each sync."""

    scrape_histograms = True
    scrape_seconds = 15.0
    sync_seconds = 15.0

    def __init__(self, replicas: int, prior: capacity.CapacityProfile) -> None:
        super().__init__(replicas)
        self.fit = capacity_fit.start(capacity.Prior(prior, "roofline", capacity.ROOFLINE_UNCERTAINTY))

    def desired(self, view, now: float) -> int:
        results = answers.capacity_fit_results(view.scrapes, now, window_seconds=60.0)
        seen = capacity_fit.observations(
            results,
            window_seconds=60.0,
            interval_seconds=self.sync_seconds,
            chunk=LLAMA_8B_TRN2_TP4.max_num_batched_tokens,
        )
        self.fit = capacity_fit.update(self.fit, seen, now=now)
        return self.replicas


def test_the_fit_reads_the_simulated_series_and_finds_the_engines_curve():
    # The engine runs the 8B profile; the operator starts from a prior off by 2x on every constant.
    true = LLAMA_8B_TRN2_TP4
    wrong = dataclasses.replace(true, alpha=2 * true.alpha, beta=0.5 * true.beta, gamma=2 * true.gamma)
    policy = Fitting(6, wrong)
    simulate(workloads.generate("diurnal", 1, duration=1500.0), true, policy, startup_seconds=60.0, initial_replicas=6)
    for batch in (4, 16, 32):
        mean, _ = capacity_fit.predict(policy.fit, batch)
        assert mean == pytest.approx(true.step_seconds(batch, 0), rel=0.1)
    # gamma: a prompt that waits for another's chunk lengthens its prefill time, so the fit errs slow (safe).
    assert true.gamma * 0.98 <= capacity_fit.estimate(policy.fit)[2] <= true.gamma * 1.2

"""The M/G/1 waiting-time tail the planned utilization is sized on: the incomplete gamma function it is
built from, the cases with a closed form, and a simulated queue (Lindley's recursion) for the rest."""

from __future__ import annotations

import math
import random

import pytest

from neuronfleet.autoscale import queueing


def _q_integer(n: int, x: float) -> float:
    """Q(n, x) for whole n: the Poisson sum e^-x sum_{k<n} x^k / k!."""
    return math.exp(-x) * sum(x**k / math.factorial(k) for k in range(n))


@pytest.mark.parametrize(("a", "x"), [(1, 0.3), (1, 4.0), (2, 0.5), (5, 3.0), (5, 9.0), (30, 25.0), (30, 40.0)])
def test_the_incomplete_gamma_matches_the_poisson_sum_on_both_sides_of_a_plus_one(a, x):
    assert queueing.regularized_gamma_q(a, x) == pytest.approx(_q_integer(a, x), rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("x", [0.01, 0.4, 2.0, 7.0])
def test_the_incomplete_gamma_at_one_half_is_the_complementary_error_function(x):
    assert queueing.regularized_gamma_q(0.5, x) == pytest.approx(math.erfc(math.sqrt(x)), rel=1e-9)


def test_the_incomplete_gamma_refuses_a_shape_that_is_not_positive():
    with pytest.raises(ValueError, match="shape"):
        queueing.regularized_gamma_q(0.0, 1.0)
    assert queueing.regularized_gamma_q(3.0, 0.0) == 1.0


@pytest.mark.parametrize(("rho", "t"), [(0.1, 0.5), (0.5, 1.0), (0.8, 3.0)])
def test_exponential_service_gives_the_exact_m_m_1_tail(rho, t):
    # M/M/1 with mean service 0.2 s: P(W > t) = rho exp(-(1 - rho) t / 0.2).
    tail = queueing.mg1_waiting_tail(rho, wait_seconds=t, service_mean=0.2, service_mean_square=0.08)
    assert tail == pytest.approx(rho * math.exp(-(1 - rho) * t / 0.2), rel=1e-6)


def _simulated_tail(rho: float, mean: float, scv: float, t: float, customers: int = 400_000) -> float:
    """P(W > t) of an M/G/1 queue with gamma service times, by Lindley's recursion (seeded)."""
    rng = random.Random(11)
    rate, shape, scale = rho / mean, 1.0 / scv, mean * scv
    wait, over = 0.0, 0
    for _ in range(customers):
        over += wait > t
        wait = max(0.0, wait + rng.gammavariate(shape, scale) - rng.expovariate(rate))
    return over / customers


@pytest.mark.parametrize(
    ("rho", "scv", "t"),
    [(0.25, 0.15, 1.5), (0.25, 0.15, 2.5), (0.15, 0.15, 2.0), (0.4, 0.5, 2.0), (0.5, 1.0, 3.0), (0.3, 2.0, 3.0)],
    ids=["long prompts, one service out", "long prompts, two out", "light load", "chat", "exponential", "spread"],
)
def test_the_tail_matches_a_simulated_queue_from_nearly_constant_to_spread_service(rho, scv, t):
    """Within 10 % of a simulated queue, or above it by up to 25 % two service times out with nearly
    constant service (the gamma residual's right tail is heavier than the real one: the safe side).
    Kingman's exponential form is 1.3-2.4x the simulated tail on the first three cases."""
    mean = 1.0
    tail = queueing.mg1_waiting_tail(
        rho, wait_seconds=t, service_mean=mean, service_mean_square=mean * mean * (1 + scv)
    )
    simulated = _simulated_tail(rho, mean, scv, t)
    assert 0.9 * simulated <= tail <= 1.25 * simulated


def test_the_tail_grows_with_the_load_and_shrinks_with_the_wait():
    common = dict(service_mean=1.0, service_mean_square=1.3)
    by_load = [queueing.mg1_waiting_tail(r, wait_seconds=2.0, **common) for r in (0.1, 0.3, 0.5, 0.7, 0.9)]
    by_wait = [queueing.mg1_waiting_tail(0.5, wait_seconds=t, **common) for t in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert by_load == sorted(by_load) and by_wait == sorted(by_wait, reverse=True)
    assert by_wait[0] == pytest.approx(0.5, rel=1e-6), "P(W > 0) is the load (PASTA)"
    assert queueing.mg1_waiting_tail(0.0, wait_seconds=1.0, **common) == 0.0
    assert queueing.mg1_waiting_tail(1.0, wait_seconds=1.0, **common) == 1.0


def _routed_by_sampling(rho: float, d: float, n: int, draws: int, rng: random.Random) -> float:
    """The router's rule on the model's own assumptions, sampled: counts D + B per replica (D Poisson(d),
    B busy with probability rho), the arrival goes to a replica at the lowest count chosen at random."""

    def poisson(mean: float) -> int:
        k, p, limit = 0, 1.0, math.exp(-mean)
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1

    busy_hits = 0
    for _ in range(draws):
        replicas = [(poisson(d) + (b := rng.random() < rho), b) for _ in range(n)]
        low = min(count for count, _ in replicas)
        busy_hits += rng.choice([b for count, b in replicas if count == low])
    return busy_hits / draws


@pytest.mark.parametrize(("rho", "d", "n"), [(0.3, 0.5, 4), (0.2, 2.0, 12), (0.5, 8.0, 6), (0.1, 0.0, 3)])
def test_the_routed_wait_probability_is_the_routers_rule_on_its_assumptions(rho, d, n):
    """The sum over the lowest count is what picking a replica at the lowest count gives, sampled."""
    computed = queueing.routed_wait_probability(rho, decoding_per_replica=d, replicas=n)
    sampled = _routed_by_sampling(rho, d, n, 40_000, random.Random(7))
    assert computed == pytest.approx(sampled, abs=4 * math.sqrt(sampled * (1 - sampled) / 40_000) + 1e-3)


def test_the_routed_wait_probability_spans_random_routing_to_a_full_pool():
    """One replica, or decode counts that swamp the one extra request, route at random (rho); without
    decodes a busy replica is avoided unless every one is busy (rho^N); more replicas pool more."""
    assert queueing.routed_wait_probability(0.3, decoding_per_replica=2.0, replicas=1) == pytest.approx(0.3)
    assert queueing.routed_wait_probability(0.3, decoding_per_replica=0.0, replicas=4) == pytest.approx(0.3**4)
    chat = queueing.routed_wait_probability(0.3, decoding_per_replica=60.0, replicas=8)
    assert 0.2 < chat <= 0.3
    few = [queueing.routed_wait_probability(0.3, decoding_per_replica=1.0, replicas=n) for n in (1, 2, 4, 8, 16)]
    assert few == sorted(few, reverse=True) and few[-1] < 0.1
    assert queueing.routed_wait_probability(0.0, decoding_per_replica=1.0, replicas=4) == 0.0
    assert queueing.routed_wait_probability(1.0, decoding_per_replica=1.0, replicas=4) == 1.0

"""Concurrency sized on arrivals, a backlog apart (`decide._arrival_demand`): pure, hand-built observations.

Targets: concurrency 20 per replica. Requests hold a slot `running / completions` seconds (Little's law).
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from neuronfleet.autoscale import decide as decide_module
from neuronfleet.autoscale import defaults, types

NOW = 10_000.0


def policy(startup: float = 1200.0, **targets: float) -> types.Policy:
    return types.Policy(
        min_replicas=1,
        max_replicas=64,
        targets=types.Targets(**(targets or {"concurrency": 20.0})),
        scale_up=defaults.HPA_SCALE_UP,
        scale_down=defaults.HPA_SCALE_DOWN,
        expected_startup_seconds=startup,
        load_model=types.LoadModel(per_request=0.01, per_prompt_token=0.0001, available=0.9),
    )


def seen(
    *,
    running: float,
    waiting: float,
    completions: float | None,
    growth: float | None,
    ready: int = 4,
    starting: int = 0,
    prompt: float | None = None,
) -> types.Observation:
    return types.Observation(
        tokens_per_second=None,
        concurrency=running + waiting,
        waiting=waiting,
        prompt_tokens_per_second=prompt,
        completions_per_second=completions,
        concurrency_growth=growth,
        rate_window_seconds=60.0,
        sampled_at=NOW,
        current_replicas=ready + starting,
        ready_replicas=ready,
        starting_replicas=starting,
    )


def recommended(observation: types.Observation, startup: float = 1200.0, **targets: float) -> int:
    history = tuple(types.HistoryEntry(NOW - 3600 + 15 * i, 0, 0, 0) for i in range(240))
    return decide_module.decide(observation, policy(startup, **targets), history, NOW).recommended


def test_a_backlog_that_piles_up_while_replicas_start_is_not_sized_as_steady_load() -> None:
    """4 ready replicas full (80 running, 4 finish a second: a 20 s hold) and 200 waiting, 4 more starting.

    Running + waiting asks for 14 replicas. Drained within one 1200 s startup, the backlog needs
    200 x 20/1200 = 3.3 slots: the arrivals need 5 replicas, and the 8 in hand (4 starting) suffice."""
    backlog = seen(running=80, waiting=200, completions=4.0, growth=0.0, starting=4)
    assert recommended(dataclasses.replace(backlog, completions_per_second=None)) == 14
    assert recommended(backlog) == math.ceil((80 + 200 * 20 / 1200) / 20)
    decision = decide_module.decide(backlog, policy(), (), NOW)
    assert decision.replicas == 8  # no scale-up for a backlog the starting replicas will clear
    assert "concurrency 83.3 on arrivals, 280 running + waiting" in decision.message  # why, for the event


def test_the_same_backlog_weighs_more_when_replicas_start_fast() -> None:
    """Within a 60 s startup the backlog's 200 requests need 200 * 20/60 slots: the count sees most of them."""
    backlog = seen(running=80, waiting=200, completions=4.0, growth=0.0)
    assert recommended(backlog, startup=60.0) == math.ceil((80 + 200 * 20 / 60) / 20)
    assert recommended(backlog, startup=60.0) > recommended(backlog, startup=1200.0)


def test_a_backlog_never_weighs_more_than_one_slot_per_request() -> None:
    """Requests that hold a slot 300 s cannot drain faster within a 60 s startup by more slots than requests."""
    long_answers = seen(running=80, waiting=40, completions=80 / 300, growth=0.0)
    assert recommended(long_answers, startup=60.0) == math.ceil(120 / 20)


def test_requests_piling_up_buy_replicas_for_the_arrival_rate() -> None:
    """Completions 4/s and running + waiting growing 4/s: arrivals are 8/s, twice what the 80 running carry.

    Running + waiting (100) asks for 5; the arrivals need about 80 + 20 s x the growth beyond its noise."""
    growing = seen(running=80, waiting=20, completions=4.0, growth=4.0)
    noise = decide_module.GROWTH_NOISE_SIGMAS * math.sqrt(2 * 4.0 / 60.0)
    expected = 80 + 20 * (4.0 - noise) + 20 * min(1.0, 20 / 1200)
    assert recommended(growing) == math.ceil(expected / 20)
    assert recommended(growing) > recommended(dataclasses.replace(growing, concurrency_growth=None)) == 5


@pytest.mark.parametrize("growth", [-0.7, -0.3, 0.3, 0.7])
def test_growth_within_the_counting_noise_is_read_as_none(growth: float) -> None:
    """4 completions a second over 60 s: two standard deviations of the difference of two counts is 0.73/s."""
    jitter = seen(running=90, waiting=0, completions=4.0, growth=growth)
    flat = seen(running=90, waiting=0, completions=4.0, growth=0.0)
    assert recommended(jitter) == recommended(flat) == math.ceil(90 / 20)


def test_a_draining_backlog_asks_for_less_than_what_runs() -> None:
    """Running + waiting shrinking 2/s beyond the noise: arrivals are below completions."""
    draining = seen(running=100, waiting=0, completions=5.0, growth=-2.0)
    assert recommended(draining) < math.ceil(100 / 20)


@pytest.mark.parametrize(
    "missing",
    [
        {"completions_per_second": None},
        {"concurrency_growth": None},
        {"completions_per_second": 0.0},
        {"waiting": None},
    ],
)
def test_without_a_completions_or_growth_series_concurrency_is_running_plus_waiting(missing: dict[str, object]) -> None:
    """Before anything finished, or with the queries overridden away, the gauges size the fleet as they are."""
    observation = dataclasses.replace(seen(running=80, waiting=200, completions=4.0, growth=1.0), **missing)
    assert recommended(observation) == math.ceil(280 / 20)


def test_the_engine_load_signal_prices_the_arrivals_prompts_and_the_backlog() -> None:
    """Prompt tokens/s counts what was prefilled (what the ready replicas could); arrivals bring more."""
    model = policy().load_model
    assert model is not None
    growing = seen(running=80, waiting=20, completions=4.0, growth=4.0, prompt=8000.0)
    noise = decide_module.GROWTH_NOISE_SIGMAS * math.sqrt(2 * 4.0 / 60.0)
    concurrency = 80 + 20 * (4.0 - noise) + 20 * 20 / 1200
    prompt = 8000.0 * (4.0 + 4.0 - noise + 20 / 1200) / 4.0
    load = (model.per_request * concurrency + model.per_prompt_token * prompt) / model.available
    got = recommended(growing, engine_load=0.5)
    assert got == math.ceil(load / 0.5)
    assert got > recommended(dataclasses.replace(growing, completions_per_second=None), engine_load=0.5)

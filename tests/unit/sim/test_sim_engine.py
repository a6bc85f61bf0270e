"""Hand-checkable engine cases: one replica, a few requests, times from the step model's arithmetic."""

from __future__ import annotations

import pytest
from sim_builders import ROUND, request, run_static

from neuronfleet.sim.engine import Replica, SimRequest


def test_one_request_ttft_and_decode_time_equal_the_step_arithmetic():
    # Prefill of 500 tokens: one step of 10 ms + 0.1 ms * 500 = 60 ms, which also emits token 1.
    # Then 9 decode steps at batch 1: 9 * (10 ms + 1 ms) = 99 ms.
    result = run_static([request(5.0, 500, 10)])
    (r,) = result.requests
    assert r.first_token - r.arrival == pytest.approx(0.060)
    assert r.finish - r.first_token == pytest.approx(0.099)


def test_a_prompt_longer_than_the_token_budget_is_prefilled_in_chunks():
    # 2500 tokens with a 1000-token budget: steps of 1000, 1000, 500 -> 110 + 110 + 60 ms.
    (r,) = run_static([request(0.0, 2500, 1)]).requests
    assert r.first_token == pytest.approx(0.280)
    assert r.finish == r.first_token


def test_two_simultaneous_prompts_share_one_prefill_step_then_decode_together():
    # Both prompts fit one 1000-token step: 10 + 0.1 * 800 = 90 ms; then batch-2 steps of 12 ms.
    result = run_static([request(0.0, 400, 5), request(0.0, 400, 3)])
    a, b = result.requests
    assert a.first_token == pytest.approx(0.090)
    assert b.first_token == pytest.approx(0.090)
    assert b.finish == pytest.approx(0.090 + 2 * 0.012)
    # After b leaves, a decodes its last 2 tokens alone at 11 ms each.
    assert a.finish == pytest.approx(0.090 + 2 * 0.012 + 2 * 0.011)


def test_an_arrival_during_a_long_decode_joins_at_the_next_step_boundary():
    # A decodes alone from t=0.060 in 11 ms steps; B arrives at 0.1 s, inside step 4
    # (0.104 .. 0.115 is step 5: boundaries at 0.060 + 11 ms * k). B is admitted at 0.104.
    result = run_static([request(0.0, 500, 50), request(0.1, 200, 2)])
    a, b = result.requests
    boundary = 0.060 + 4 * 0.011
    assert boundary >= 0.1
    mixed_step = 0.010 + 0.001 * 1 + 0.0001 * 200  # A decodes while B prefills
    assert b.first_token == pytest.approx(boundary + mixed_step)
    assert b.finish == pytest.approx(b.first_token + 0.012)  # one batch-2 step
    # A: 4 single steps, the mixed step, one batch-2 step, then 49 - 6 = 43 single steps.
    assert a.finish == pytest.approx(0.060 + 4 * 0.011 + mixed_step + 0.012 + 43 * 0.011)


def test_max_num_seqs_holds_the_fifth_request_until_a_slot_frees():
    trace = [request(0.0, 100, 20) for _ in range(4)] + [request(0.0, 100, 2)]
    result = run_static(trace)
    first_four = result.requests[:4]
    fifth = result.requests[4]
    assert fifth.first_token > max(r.finish for r in first_four) - 1e-12


def test_the_generation_counter_is_interpolated_inside_a_macro_step():
    replica = Replica(0, ROUND)
    req = SimRequest(0, 0.0, 100, 101)
    done: list[SimRequest] = []
    assert replica.enqueue(req, 0.0) == 0.0  # an idle replica plans at once
    end = replica.finish_step(0.0, done)
    assert end == pytest.approx(0.020)  # prefill step: 10 ms + 0.1 ms * 100
    end = replica.finish_step(0.020, done)
    assert end == pytest.approx(0.020 + 100 * 0.011)  # one macro step of 100 identical decodes
    assert replica.generation_tokens_at(0.020) == 1
    assert replica.generation_tokens_at(0.020 + 10.5 * 0.011) == 11
    assert replica.kv_usage_at(0.020 + 10.5 * 0.011) == pytest.approx((100 + 11) / ROUND.kv_cache_tokens)

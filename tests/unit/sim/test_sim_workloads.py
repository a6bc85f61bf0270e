"""Workload families: deterministic per seed, and each has the statistics its name promises."""

from __future__ import annotations

import functools
import itertools
import statistics

import pytest

from neuronfleet.sim import workloads

SEEDS = (1, 2, 3)


@functools.cache
def trace_of(name: str, seed: int):
    """An hour of a family (cached: several tests read the same trace)."""
    return workloads.generate(name, seed)


def counts(trace, bin_seconds: float, duration: float = workloads.DEFAULT_DURATION_SECONDS) -> list[int]:
    bins = [0] * int(duration // bin_seconds + 1)
    for r in trace:
        bins[int(r.arrival // bin_seconds)] += 1
    return bins[: int(duration // bin_seconds)]


def runs_above(values: list[float], threshold: float) -> list[int]:
    """Start indexes of the maximal runs of values above `threshold`."""
    starts = []
    inside = False
    for i, v in enumerate(values):
        if v > threshold and not inside:
            starts.append(i)
        inside = v > threshold
    return starts


@pytest.mark.parametrize("name", workloads.names())
def test_the_same_seed_gives_the_same_trace_and_another_seed_another(name):
    first = workloads.generate(name, 7, duration=600.0)
    assert workloads.generate(name, 7, duration=600.0) == first
    assert workloads.generate(name, 8, duration=600.0) != first


@pytest.mark.parametrize("name", workloads.names())
def test_every_family_is_a_sorted_trace_inside_its_duration_with_positive_sizes(name):
    trace = workloads.generate(name, 1, duration=900.0)
    assert len(trace) > 100
    arrivals = [r.arrival for r in trace]
    assert arrivals == sorted(arrivals)
    assert arrivals[0] >= 0.0 and arrivals[-1] < 900.0
    assert min(r.prompt_tokens for r in trace) >= 1 and min(r.output_tokens for r in trace) >= 1


@pytest.mark.parametrize("seed", SEEDS)
def test_long_prompts_are_4k_to_16k_tokens_spread_log_uniformly(seed):
    prompts = [r.prompt_tokens for r in trace_of("long-prompts", seed)]
    assert min(prompts) >= 4096 and max(prompts) <= 16384
    # Log-uniform over [4k, 16k]: the median is the geometric mean, 8192.
    assert 7000 <= statistics.median(prompts) <= 9500


@pytest.mark.parametrize("seed", SEEDS)
def test_long_outputs_pair_short_prompts_with_answers_of_800_to_3000_tokens(seed):
    trace = trace_of("long-outputs", seed)
    assert statistics.median(r.prompt_tokens for r in trace) < 400
    outputs = [r.output_tokens for r in trace]
    assert min(outputs) >= 800 and max(outputs) <= 3000


@pytest.mark.parametrize("seed", SEEDS)
def test_the_diurnal_rate_rises_about_fivefold_to_a_peak_in_the_middle_and_falls_back(seed):
    per_5min = counts(trace_of("diurnal", seed), 300.0)
    assert max(per_5min) >= 3.5 * min(per_5min)
    peak = per_5min.index(max(per_5min))
    assert len(per_5min) // 4 <= peak < 3 * len(per_5min) // 4
    assert per_5min[0] < max(per_5min) / 2 and per_5min[-1] < max(per_5min) / 2


@pytest.mark.parametrize("seed", SEEDS)
def test_a_flash_crowd_reaches_ten_times_the_base_rate_within_about_a_minute(seed):
    per_10s = counts(trace_of("flash-crowd", seed), 10.0)
    base = statistics.median(per_10s[: len(per_10s) // 4])
    smooth = [sum(per_10s[i : i + 3]) / 3 for i in range(len(per_10s) - 2)]
    crowd = next(i for i, v in enumerate(smooth) if v >= 8 * base)
    quiet = max(i for i, v in enumerate(smooth[:crowd]) if v <= 2 * base)
    assert (crowd - quiet) * 10.0 <= 90.0, "from twice the base rate to eight times within 90 s"
    # It lasts minutes, not one bin.
    assert sum(v >= 7 * base for v in smooth) * 10.0 >= 180.0


@pytest.mark.parametrize("seed", SEEDS)
def test_bursts_recur_every_few_minutes_and_each_lasts_about_a_minute(seed):
    trace = trace_of("bursts", seed)
    per_10s = counts(trace, 10.0)
    base = statistics.median(per_10s)
    starts = [i * 10.0 for i in runs_above([float(v) for v in per_10s], 4 * base)]
    # Starts closer than a minute belong to one burst (Poisson dips inside it).
    bursts = [s for k, s in enumerate(starts) if k == 0 or s - starts[k - 1] > 60.0]
    assert 6 <= len(bursts) <= 18
    gaps = [b - a for a, b in itertools.pairwise(bursts)]
    assert 150.0 <= statistics.median(gaps) <= 600.0
    # Prefill-heavy like the Azure code trace: long prompts, short answers.
    assert statistics.median(r.prompt_tokens for r in trace) > 10 * statistics.median(r.output_tokens for r in trace)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_mix_holds_long_prompts_short_chat_and_a_crowd(seed):
    trace = trace_of("mix", seed)
    prompts = [r.prompt_tokens for r in trace]
    assert sum(p >= 4096 for p in prompts) > 0.05 * len(prompts)
    assert statistics.median(prompts) < 2000
    per_min = counts(trace, 60.0)
    assert max(per_min) >= 3 * statistics.median(per_min)


def test_families_are_told_apart_by_size_and_rate():
    # No two families are the same traffic under another name.
    shapes = {}
    for name in workloads.names():
        trace = trace_of(name, 1)
        shapes[name] = (
            round(statistics.median(r.prompt_tokens for r in trace), -2),
            round(statistics.median(r.output_tokens for r in trace), -1),
            round(max(counts(trace, 60.0)) / max(1, statistics.median(counts(trace, 60.0))), 0),
        )
    assert len(set(shapes.values())) == len(shapes)


@pytest.mark.parametrize(
    ("name", "duration", "message"),
    [("nope", 60.0, "unknown workload"), ("steady", 0.0, "duration")],
    ids=["an unknown family names the known ones", "a duration must be positive"],
)
def test_bad_arguments_are_refused_with_the_reason(name, duration, message):
    with pytest.raises(ValueError, match=message):
        workloads.generate(name, 1, duration=duration)

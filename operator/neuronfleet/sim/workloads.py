"""Workload families: request traces generated deterministically from a seed, beside the Azure traces.

Why: a policy tuned until it holds its SLO on two recorded traces has learned those traces. The
benchmark also runs traffic shapes neither Azure trace has, each drawn from a seed so that a run is
reproducible and a second seed is a second, different trace of the same family. A default that
passes every family at every startup scenario is tuned to none of them.

Families (each `generate(name, seed)` call draws its own rates, times and sizes from the seed):

- `steady`: chat-sized requests, Poisson arrivals at a constant rate. The control.
- `long-prompts`: prompts of 4k-16k tokens (log-uniform), a few hundred output tokens, Poisson
  arrivals whose rate drifts slowly (+-30 %). Prefill-dominated, KV-heavy.
- `long-outputs`: short prompts (median 200 tokens) with 800-3000-token answers, as reasoning
  models give. Decode-dominated: requests stay for minutes.
- `diurnal`: chat-sized requests whose rate follows a compressed day, trough to peak about 5x and
  back, over the trace.
- `flash-crowd`: chat-sized requests at a base rate until, at a random time, the rate climbs to 10x
  within a minute, stays for 4-8 minutes and decays over about five.
- `bursts`: prefill-heavy, code-completion-sized requests (median prompt 1500 tokens, short
  answers) at a low base rate, with minute-scale bursts of 8-15x that recur every 4-8 minutes
  (jittered): the shape of the Azure code trace, with other periods and sizes.
- `mix`: a superposition: a chat base, a long-prompt stream, recurring bursts and a flash crowd,
  each at a share of its own family's rate.

Request sizes are log-normal (clipped), the usual shape of LLM prompt and answer lengths (the Azure
2023 traces: chat prompts median 1020 / mean 1155 tokens, answers median 129 / mean 211; code prompts
median 1469, answers median 13; reference/autoscaling.md section 2). Rates are set so that the
Llama-3.1-8B trn2 TP4 profile needs a fleet of a few to a few tens of replicas: large enough that
autoscaling matters, small enough that a benchmark run takes seconds. Arrivals of time-varying
rates come from thinning a Poisson process (Lewis and Shedler), so each family is an exact
inhomogeneous Poisson process with the stated rate curve.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from neuronfleet.sim.trace import TraceRequest

__all__ = ["DEFAULT_DURATION_SECONDS", "FAMILIES", "Family", "generate", "names"]

DEFAULT_DURATION_SECONDS = 3600.0
"""An hour, like the Azure 2023 traces: long enough for several scale cycles at a 20-minute startup."""

Rate = Callable[[float], float]
Sizes = Callable[[random.Random], tuple[int, int]]


@dataclass(frozen=True)
class Family:
    """One workload family: a name, what it stands for, and its generator."""

    name: str
    description: str
    build: Callable[[random.Random, float], list[tuple[float, int, int]]]


def _lognormal(rng: random.Random, median: float, sigma: float, lo: int, hi: int) -> int:
    """A log-normal size with the given median, clipped to [lo, hi]."""
    return int(min(hi, max(lo, round(median * math.exp(rng.gauss(0.0, sigma))))))


def _chat(rng: random.Random) -> tuple[int, int]:
    # Azure conv 2023: prompt median 1020, answer median 129 (mean 211, long right tail).
    return _lognormal(rng, 1000, 0.7, 16, 8000), _lognormal(rng, 130, 0.9, 1, 2000)


def _code(rng: random.Random) -> tuple[int, int]:
    # Azure code 2023: prompt median 1469 (p99 7436), answer median 13 (p99 252).
    return _lognormal(rng, 1500, 0.8, 32, 8000), _lognormal(rng, 16, 1.1, 1, 500)


def _long_prompt(rng: random.Random) -> tuple[int, int]:
    prompt = round(4096 * 4.0 ** rng.random())  # log-uniform over [4096, 16384]
    return prompt, _lognormal(rng, 300, 0.6, 20, 1500)


def _long_output(rng: random.Random) -> tuple[int, int]:
    return _lognormal(rng, 200, 0.8, 8, 2000), int(800 + 2200 * rng.random())


def _arrivals(
    rng: random.Random, rate: Rate, peak: float, duration: float, sizes: Sizes
) -> list[tuple[float, int, int]]:
    """An inhomogeneous Poisson process with `rate(t) <= peak`, by thinning; each arrival sized by `sizes`."""
    out: list[tuple[float, int, int]] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration:
            return out
        if rng.random() * peak <= rate(t):
            prompt, output = sizes(rng)
            out.append((t, prompt, output))


def _drift(rng: random.Random, duration: float, *, amplitude: float, period: float) -> Rate:
    """A slow multiplicative drift 1 +- amplitude: three sines of random phase around `period`."""
    waves = [(period * f, rng.uniform(0, 2 * math.pi)) for f in (1.0, 0.61, 0.37)]

    def factor(t: float) -> float:
        return 1.0 + amplitude * sum(math.sin(2 * math.pi * t / p + phase) for p, phase in waves) / len(waves)

    return factor


def _steady(rng: random.Random, duration: float) -> list[tuple[float, int, int]]:
    rate = rng.uniform(10.0, 16.0)
    return _arrivals(rng, lambda t: rate, rate, duration, _chat)


def _long_prompts(rng: random.Random, duration: float) -> list[tuple[float, int, int]]:
    base = rng.uniform(1.5, 2.5)
    drift = _drift(rng, duration, amplitude=0.3, period=900.0)
    return _arrivals(rng, lambda t: base * drift(t), base * 1.3, duration, _long_prompt)


def _long_outputs(rng: random.Random, duration: float) -> list[tuple[float, int, int]]:
    base = rng.uniform(2.0, 3.5)
    drift = _drift(rng, duration, amplitude=0.3, period=1200.0)
    return _arrivals(rng, lambda t: base * drift(t), base * 1.3, duration, _long_output)


def _diurnal(rng: random.Random, duration: float) -> list[tuple[float, int, int]]:
    peak = rng.uniform(18.0, 26.0)
    trough = peak / rng.uniform(4.5, 6.0)
    phase = rng.uniform(-0.1, 0.1)

    def rate(t: float) -> float:
        # One compressed day: trough at the start and end, peak in the middle (a raised cosine).
        x = t / duration + phase
        return trough + (peak - trough) * 0.5 * (1.0 - math.cos(2 * math.pi * x))

    return _arrivals(rng, rate, peak, duration, _chat)


def _flash_window(rng: random.Random, duration: float) -> tuple[float, float, float, float]:
    """(start, ramp, hold, decay) seconds of a flash crowd: 10x within a minute, held 4-8 min, ~5 min decay."""
    return rng.uniform(0.25, 0.55) * duration, rng.uniform(30.0, 60.0), rng.uniform(240.0, 480.0), 300.0


def _flash_factor(window: tuple[float, float, float, float], t: float, height: float = 10.0) -> float:
    start, ramp, hold, decay = window
    if t < start:
        return 1.0
    if t < start + ramp:
        return 1.0 + (height - 1.0) * (t - start) / ramp
    if t < start + ramp + hold:
        return height
    return 1.0 + (height - 1.0) * math.exp(-(t - start - ramp - hold) / (decay / 3.0))


def _flash_crowd(rng: random.Random, duration: float) -> list[tuple[float, int, int]]:
    base = rng.uniform(2.0, 3.0)
    window = _flash_window(rng, duration)
    return _arrivals(rng, lambda t: base * _flash_factor(window, t), base * 10.0, duration, _chat)


def _burst_starts(rng: random.Random, duration: float) -> tuple[list[tuple[float, float, float]], float]:
    """Recurring bursts: (start, length, height) every 4-8 minutes (+-20 % jitter), 30-90 s long, 8-15x."""
    period = rng.uniform(240.0, 480.0)
    bursts = []
    t = rng.uniform(0.2, 1.0) * period
    while t < duration:
        bursts.append((t, rng.uniform(30.0, 90.0), rng.uniform(8.0, 15.0)))
        t += period * rng.uniform(0.8, 1.2)
    return bursts, period


def _burst_factor(bursts: list[tuple[float, float, float]], t: float) -> float:
    for start, length, height in bursts:
        if start <= t < start + length:
            return height
    return 1.0


def _bursts(rng: random.Random, duration: float) -> list[tuple[float, int, int]]:
    base = rng.uniform(0.8, 1.3)
    bursts, _ = _burst_starts(rng, duration)
    return _arrivals(rng, lambda t: base * _burst_factor(bursts, t), base * 15.0, duration, _code)


def _mix(rng: random.Random, duration: float) -> list[tuple[float, int, int]]:
    chat = rng.uniform(4.0, 6.0)
    long_rate = rng.uniform(0.4, 0.7)
    code = rng.uniform(0.4, 0.7)
    bursts, _ = _burst_starts(rng, duration)
    window = _flash_window(rng, duration)
    parts = (
        _arrivals(rng, lambda t: chat * _flash_factor(window, t, 5.0), chat * 5.0, duration, _chat),
        _arrivals(rng, lambda t: long_rate, long_rate, duration, _long_prompt),
        _arrivals(rng, lambda t: code * _burst_factor(bursts, t), code * 15.0, duration, _code),
    )
    return [row for part in parts for row in part]


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("steady", "chat-sized requests at a constant Poisson rate (the control)", _steady),
        Family("long-prompts", "4k-16k-token prompts, a few hundred output tokens, slow drift", _long_prompts),
        Family("long-outputs", "short prompts, 800-3000-token answers, slow drift", _long_outputs),
        Family("diurnal", "chat rate over one compressed day, trough to peak ~5x", _diurnal),
        Family("flash-crowd", "chat base rate, 10x within a minute for 4-8 minutes, then decay", _flash_crowd),
        Family("bursts", "code-sized requests, 8-15x bursts of 30-90 s recurring every 4-8 min", _bursts),
        Family("mix", "chat with a 5x flash crowd + long prompts + recurring code bursts", _mix),
    )
}
"""Every family by name, in the order the benchmark reports them."""


def names() -> tuple[str, ...]:
    """Family names, in report order."""
    return tuple(FAMILIES)


def generate(name: str, seed: int, *, duration: float = DEFAULT_DURATION_SECONDS) -> tuple[TraceRequest, ...]:
    """The trace of family `name` for `seed`: the same arguments always give the same requests."""
    family = FAMILIES.get(name)
    if family is None:
        raise ValueError(f"unknown workload {name!r}; known: {', '.join(FAMILIES)}")
    if duration <= 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration}")
    # One generator per (family, seed): adding a family never changes another family's traces.
    rng = random.Random(f"{name}:{seed}")
    rows = sorted(family.build(rng, duration))
    return tuple(TraceRequest(t, prompt, output) for t, prompt, output in rows)

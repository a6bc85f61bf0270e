"""The replica's step-time curve, learned online from the fleet's own vLLM series, starting from a prior.

Why: SLO targets come from `alpha + beta * batch + gamma * prefill_tokens` (`neuron/capacity.py`), and
that curve is calibrated for two shapes only; every other plan starts from a roofline that published
figures put within a factor of two or three (`bench/capacity_prior.py`). The fleet measures its own
curve all the time: every engine step of every replica shows up in vLLM's counters and histograms. So
the operator fits the curve from them, per fleet, and the targets follow the fit as it firms up.

Two kinds of observation, per replica over one rate window, from Prometheus:
- Step time (inter-token latency vs running requests and iteration tokens). Steps: the increase of
  `vllm:iteration_tokens_total_count` (one observation per engine step); decode batch x = increase of
  `vllm:generation_tokens_total` / steps; prefill z = increase of `vllm:prompt_tokens_total` / steps;
  step time y = increase of `vllm:inter_token_latency_seconds_sum` / `_count`, the mean inter-token
  latency: the duration of the steps the decoding sequences waited for. Then
  y = alpha + beta * x + gamma * z + noise. Mean ITL weights steps by their batch: a batch that varies
  inside the window leans y towards the bigger steps (Var(batch) / batch, a few percent at steady load),
  and when prefill and decodes anti-correlate (a burst of prompts with short answers: prefill-only steps,
  then decode-only ones) the prefill the decodes actually waited for is less than z. So each window
  counts in proportion to its share of decode tokens, and gamma gets a second equation:
- Prefill time vs prompt tokens. Over the requests that finished in the window, prefill took
  T = increase of `vllm:request_prefill_time_seconds_sum` for P = increase of
  `vllm:request_prompt_tokens_sum` tokens, in about K = max(n, P / c + n / 2) steps (c: the chunk budget
  less the decodes, n: requests; a prompt's last chunk is on average half full, and every prompt takes a
  step at least). So
  T / P = alpha K / P + beta x K / P + gamma. A prompt waiting for another's chunks lengthens T: the
  equation then overstates the step cost, the safe side.

The fit is Bayesian linear regression in information form (precision matrix and vector, 3x3, pure
Python): the prior is a Gaussian around the prior curve with `relative_uncertainty` of each constant as
its standard deviation; each observation adds `x x^T / sigma^2` with sigma its step time times the
relative noise, which starts at `NOISE` (10 %) and is then measured from the fit's own residuals; the
evidence decays with time constant `FORGET_SECONDS` (an hour) while the prior stays, so a fleet whose
engine changes (a new image, other traffic) is re-learned rather than averaged with its past.
Overlapping windows (a 1-minute rate window read every 15 s) each count by interval / window, so the
evidence per minute does not depend on how often the controller reads it.

Confidence: 1 - the relative standard deviation of the predicted step time at the SLO batch (clipped to
[0, 1]): how sure the fit is where the targets are derived. `CONVERGED_UNCERTAINTY` (5 %) is where the
fit counts as converged; `tests/realvllm/test_realvllm_capacity_fit.py` measures how many scrape
intervals a real vLLM needs and how far the fitted curve is from its measured ITL.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from neuronfleet.autoscale import promql
from neuronfleet.neuron.capacity import CapacityProfile, Prior

if TYPE_CHECKING:  # a type only: the pure core does not import the HTTP client
    from neuronfleet.autoscale.prometheus import QueryResult

__all__ = [
    "CONVERGED_UNCERTAINTY",
    "FORGET_SECONDS",
    "MIN_STEPS",
    "NOISE",
    "NOISE_PRIOR_WEIGHT",
    "Fit",
    "Observation",
    "confidence",
    "curve",
    "estimate",
    "observations",
    "predict",
    "prefill_observation",
    "queries",
    "start",
    "status",
    "step_observation",
    "update",
]

NOISE = 0.10
"""Prior guess of the standard deviation of one window's mean step time around the linear curve, relative
to it (the engine is not quite linear: bucketed graphs, batch-weighted means). The fit then measures it from
its own residuals."""

NOISE_PRIOR_WEIGHT = 10.0
"""Windows' worth of weight the `NOISE` guess carries before the measured residuals take over."""

FORGET_SECONDS = 3600.0
"""Time constant of forgetting: evidence older than about an hour gives way to the prior."""

MIN_STEPS = 20
"""Engine steps a replica must have run in the window for its window to count (an idle replica says nothing)."""

CONVERGED_UNCERTAINTY = 0.05
"""Relative standard deviation of the step time at the SLO batch under which the fit counts as converged."""

_SERIES = {
    "steps": "iteration_tokens_total_count",
    "generation_tokens": "generation_tokens_total",
    "prompt_tokens": "prompt_tokens_total",
    "itl_sum": "inter_token_latency_seconds_sum",
    "itl_count": "inter_token_latency_seconds_count",
    "prefill_sum": "request_prefill_time_seconds_sum",
    "prefill_count": "request_prefill_time_seconds_count",
    "prefill_prompt_tokens": "request_prompt_tokens_sum",
}
"""Query key -> the vLLM series (without the `vllm:` prefix) whose per-instance increase it reads."""

_FLOOR = 0.001  # no constant is fitted below 0.1 % of its prior: a negative step cost is noise, not physics


@dataclass(frozen=True)
class Observation:
    """One linear equation `coefficients . (alpha, beta, gamma) = value`, with its evidence weight."""

    coefficients: tuple[float, float, float]
    value: float  # seconds (a step) or seconds per prompt token (prefill)
    weight: float = 1.0  # evidence this window carries (interval / window for overlapping windows)


def step_observation(
    decode_batch: float, prefill_tokens: float, step_seconds: float, weight: float = 1.0
) -> Observation:
    """A window's mean step time at a mean decode batch and prefill tokens per step."""
    return Observation((1.0, decode_batch, prefill_tokens), step_seconds, weight)


def prefill_observation(
    prefill_seconds: float,
    prompt_tokens: float,
    requests: float,
    *,
    decode_batch: float,
    chunk: int,
    weight: float = 1.0,
) -> Observation:
    """A window's prefill time for its prompt tokens, in steps of `chunk` tokens beside `decode_batch` decodes."""
    per_step = max(1.0, chunk - decode_batch)
    # A prompt spans ceil(p / chunk) steps: p / chunk + 1/2 on average for long ones, and at least one.
    steps = max(requests, prompt_tokens / per_step + requests / 2.0)
    share = steps / prompt_tokens if prompt_tokens > 0 else math.nan
    value = prefill_seconds / prompt_tokens if prompt_tokens > 0 else math.nan
    return Observation((share, share * decode_batch, 1.0), value, weight)


@dataclass(frozen=True)
class Fit:
    """The evidence about (alpha, beta, gamma) so far, and the prior it started from."""

    prior: tuple[float, float, float]
    prior_information: tuple[float, float, float]  # diagonal: 1 / sigma^2 per constant
    source: str  # the prior's source: "calibrated" | "roofline"
    # Sum over observations of w x x^T and w x y, with w = weight / y^2 (relative errors), decayed over time.
    data: tuple[tuple[float, float, float], ...] = ((0.0,) * 3,) * 3
    data_vector: tuple[float, float, float] = (0.0, 0.0, 0.0)
    weight: float = 0.0  # sum of the observations' weights (= sum of w y^2), decayed alike
    observations: int = 0
    updated_at: float | None = None
    noise: float = NOISE  # relative noise of one observation, re-measured at each update

    def posterior(self) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
        """Information matrix and vector: the prior plus the data scaled by 1 / noise^2."""
        scale = 1.0 / self.noise**2
        info = tuple(
            tuple(scale * self.data[i][j] + (self.prior_information[i] if i == j else 0.0) for j in range(3))
            for i in range(3)
        )
        vector = tuple(scale * self.data_vector[i] + self.prior_information[i] * self.prior[i] for i in range(3))
        return info, vector


def start(prior: Prior) -> Fit:
    """A fit that knows only the prior: the estimate is the prior curve."""
    p = prior.profile
    theta = (p.alpha, p.beta, p.gamma)
    diag = tuple(1.0 / (prior.relative_uncertainty * v) ** 2 for v in theta)
    return Fit(theta, diag, prior.source)  # type: ignore[arg-type]


def update(fit: Fit, samples: Sequence[Observation], *, now: float) -> Fit:
    """The fit after forgetting up to `now` and learning `samples`; unusable samples are skipped."""
    keep = 1.0
    if fit.updated_at is not None and now > fit.updated_at:
        keep = math.exp(-(now - fit.updated_at) / FORGET_SECONDS)
    data = [[keep * v for v in row] for row in fit.data]
    vec = [keep * v for v in fit.data_vector]
    total = keep * fit.weight
    used = 0
    for s in samples:
        values = (s.value, s.weight, *s.coefficients)
        if not all(math.isfinite(v) for v in values) or s.value <= 0 or s.weight <= 0:
            continue
        if min(s.coefficients) < 0:
            continue
        x = s.coefficients
        y = s.value
        w = s.weight / y**2
        for i in range(3):
            vec[i] += w * x[i] * y
            for j in range(3):
                data[i][j] += w * x[i] * x[j]
        total += s.weight
        used += 1
    learned = dataclasses.replace(
        fit,
        data=tuple(tuple(row) for row in data),  # type: ignore[arg-type]
        data_vector=tuple(vec),  # type: ignore[arg-type]
        weight=total,
        observations=fit.observations + used,
        updated_at=now,
    )
    return dataclasses.replace(learned, noise=_noise(learned))


def _noise(fit: Fit) -> float:
    """Relative noise from the residuals of the current estimate, with `NOISE` as a prior worth a few windows.

    With w = weight / y^2 the weighted squared relative residuals are W - 2 theta.d + theta^T D theta, from
    the sums the fit keeps (no per-observation history needed).
    """
    theta = estimate(fit)
    d, big = fit.data_vector, fit.data
    rss = fit.weight - 2 * sum(theta[i] * d[i] for i in range(3))
    rss += sum(theta[i] * big[i][j] * theta[j] for i in range(3) for j in range(3))
    dof = max(0.0, fit.weight - 3.0)
    return math.sqrt((NOISE**2 * NOISE_PRIOR_WEIGHT + max(0.0, rss)) / (NOISE_PRIOR_WEIGHT + dof))


def estimate(fit: Fit) -> tuple[float, float, float]:
    """(alpha, beta, gamma) now: the posterior mean, each kept above 0.1 % of its prior."""
    info, vector = fit.posterior()
    theta = _solve(info, vector)
    return tuple(max(_FLOOR * p, t) for t, p in zip(theta, fit.prior, strict=True))  # type: ignore[return-value]


def predict(fit: Fit, decode_batch: float, prefill_tokens: float = 0.0) -> tuple[float, float]:
    """Step time at this batch and prefill, and its standard deviation, in seconds."""
    alpha, beta, gamma = estimate(fit)
    x = (1.0, decode_batch, prefill_tokens)
    covariance_x = _solve(fit.posterior()[0], x)
    variance = sum(x[i] * covariance_x[i] for i in range(3))
    return alpha + beta * decode_batch + gamma * prefill_tokens, math.sqrt(max(0.0, variance))


def confidence(fit: Fit, decode_batch: float) -> float:
    """1 - relative standard deviation of the step time at `decode_batch` (the SLO batch), in [0, 1]."""
    mean, std = predict(fit, decode_batch)
    return max(0.0, min(1.0, 1.0 - std / mean)) if mean > 0 else 0.0


def curve(fit: Fit, base: CapacityProfile) -> CapacityProfile:
    """`base` (the plan's prior profile: batch and chunk limits, KV) with the fitted step constants."""
    alpha, beta, gamma = estimate(fit)
    return dataclasses.replace(base, alpha=alpha, beta=beta, gamma=gamma)


def queries(
    namespace: str, name: str, config: promql.QueryConfig | None = None, *, window: str = "1m"
) -> dict[str, str]:
    """Per-replica (`by (instance)`) increases over `window`, keyed as `observations` expects."""
    config = config or promql.QueryConfig()
    matchers = promql.selector(namespace, name, config)

    def increase(metric: str) -> str:
        return f'sum by (instance) (increase({{__name__=~"{config.metric_prefix}{metric}",{matchers}}}[{window}]))'

    return {key: increase(metric) for key, metric in _SERIES.items()}


def observations(
    results: Mapping[str, QueryResult | None], *, window_seconds: float, interval_seconds: float, chunk: int
) -> list[Observation]:
    """Per replica (`instance`) that ran at least `MIN_STEPS` steps in the window: its step-time equation,
    weighted by its share of decode tokens, and its prefill equation when requests finished there.

    `chunk` is the replica's per-step token budget (the plan's --max-num-batched-tokens).
    """
    by_instance: dict[str, dict[str, float]] = {}
    for key in _SERIES:
        result = results.get(key)
        if result is None:
            continue
        for sample in result.samples:
            by_instance.setdefault(sample.labels.get("instance", ""), {})[key] = sample.value
    weight = min(1.0, interval_seconds / window_seconds) if window_seconds > 0 else 1.0
    out = []
    for values in by_instance.values():
        steps = values.get("steps", 0.0)
        if steps < MIN_STEPS or any(k not in values for k in ("generation_tokens", "prompt_tokens")):
            continue
        generated = max(0.0, values["generation_tokens"])
        prompted = max(0.0, values["prompt_tokens"])
        batch = generated / steps
        itl_count = values.get("itl_count", 0.0)
        if itl_count > 0 and "itl_sum" in values:
            decode_share = generated / (generated + prompted) if generated + prompted > 0 else 0.0
            out.append(step_observation(batch, prompted / steps, values["itl_sum"] / itl_count, weight * decode_share))
        tokens = values.get("prefill_prompt_tokens", 0.0)
        if tokens > 0 and values.get("prefill_count", 0.0) > 0 and "prefill_sum" in values:
            out.append(
                prefill_observation(
                    values["prefill_sum"],
                    tokens,
                    values["prefill_count"],
                    decode_batch=batch,
                    chunk=chunk,
                    weight=weight,
                )
            )
    return out


def status(fit: Fit, base: CapacityProfile, *, slo_batch: int) -> dict[str, object]:
    """`status.capacityCurve` as plain data (camelCase keys)."""
    alpha, beta, gamma = estimate(fit)
    return {
        "alphaSeconds": alpha,
        "betaSeconds": beta,
        "gammaSeconds": gamma,
        "source": "fitted" if fit.observations else fit.source,
        "confidence": confidence(fit, max(1, slo_batch)),
        "samples": fit.observations,
        "sloBatch": slo_batch,
    }


def _solve(matrix: tuple[tuple[float, ...], ...], rhs: Sequence[float]) -> tuple[float, float, float]:
    """matrix^-1 @ rhs for a 3x3 symmetric positive definite matrix (Gaussian elimination, pivoting)."""
    a = [[*matrix[i], rhs[i]] for i in range(3)]
    for col in range(3):
        pivot = max(range(col, 3), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        if a[col][col] == 0:
            raise ValueError("singular information matrix")
        for r in range(3):
            if r != col:
                factor = a[r][col] / a[col][col]
                for c in range(col, 4):
                    a[r][c] -= factor * a[col][c]
    return (a[0][3] / a[0][0], a[1][3] / a[1][1], a[2][3] / a[2][2])

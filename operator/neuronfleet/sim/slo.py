"""The per-request service level the simulator scores every policy against.

Defaults, and why:
- TTFT budget `ttft_base + prompt_tokens / ttft_tokens_per_second` = 1 s + p / 4000 tok/s. A flat
  budget would punish long prompts for prefill work no policy can avoid (reference section 3.2);
  4000 tok/s is half the prefill speed of the slowest profile, so an idle replica always meets it
  and queueing behind other requests gets about one second of slack (1155-token median chat
  prompt: 1.29 s; 7436-token p99 code prompt: 2.9 s).
- Per-user rate 1/TPOT >= 10 tok/s (TPOT <= 100 ms, averaged over the request's decode): above
  human reading speed (a few words per second), and reachable by both profiles at their full batch
  when prefill does not crowd the steps (8B batch 32: 31 ms; 70B batch 32: 48 ms). The engine, not
  the fleet size, is what breaks it first: a step carrying a full 2048-token prefill chunk takes
  270 ms on the 8B profile with 32 decodes, so a short answer that shares a few steps with long
  prompts misses it on an idle fleet too. `neuronfleet.autoscale.slo_targets` derives the chunk
  budget that keeps every step within the budget (592 tokens here); bench/autoscaler.py
  `--max-num-batched-tokens` measures it. (An earlier version of this docstring said 20 tok/s;
  the value has always been 10.)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Slo"]


@dataclass(frozen=True)
class Slo:
    """A request meets the SLO iff TTFT <= budget(prompt) and its per-user rate >= the minimum."""

    ttft_base: float = 1.0
    ttft_tokens_per_second: float = 4000.0  # kappa; 0 or inf: flat TTFT budget
    min_tokens_per_second: float = 10.0

    def ttft_budget(self, prompt_tokens: int) -> float:
        """Seconds allowed from arrival to first token."""
        if self.ttft_tokens_per_second <= 0:
            return self.ttft_base
        return self.ttft_base + prompt_tokens / self.ttft_tokens_per_second

    def met(self, prompt_tokens: int, output_tokens: int, ttft: float, decode_seconds: float) -> bool:
        """Whether one finished request met both halves of the SLO."""
        if ttft > self.ttft_budget(prompt_tokens) + 1e-9:
            return False
        if output_tokens <= 1:
            return True
        return decode_seconds / (output_tokens - 1) <= 1.0 / self.min_tokens_per_second + 1e-9

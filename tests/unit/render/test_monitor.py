"""The PodMonitor: checked by hand, since kubernetes-validate has no schema for monitoring.coreos.com.

The relabeling check applies the rendered `replace` rules the way Prometheus does to a target's
discovery labels (a mock of Prometheus service discovery: no Prometheus Operator runs here) and
asserts the series end up with the labels the autoscaler's PromQL selects on.
"""

from __future__ import annotations

import re
from typing import Any

from neuronfleet.autoscale import promql
from neuronfleet.render import deployment, labels, monitor
from neuronfleet.render.options import RenderOptions

from .builders import make_md, make_plan


def relabel(rules: list[dict[str, Any]], target: dict[str, str]) -> dict[str, str]:
    """Prometheus `replace` semantics: join source labels with ';', full-match regex, write replacement."""
    out = dict(target)
    for rule in rules:
        assert rule.get("action", "replace") == "replace"
        value = rule.get("separator", ";").join(out.get(s, "") for s in rule["sourceLabels"])
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if match:
            out[rule["targetLabel"]] = match.expand(rule.get("replacement", "$1").replace("$", "\\"))
    return {k: v for k, v in out.items() if not k.startswith("__")}


def discovery_labels(namespace: str, pod: str, pod_labels: dict[str, str]) -> dict[str, str]:
    labels_ = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_name": pod}
    for key, value in pod_labels.items():
        labels_["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return labels_


def test_the_pod_monitor_has_the_prometheus_operator_shape():
    obj = monitor.expected(make_md())
    assert (obj["apiVersion"], obj["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    assert set(obj["spec"]) == {"selector", "podMetricsEndpoints"}, "no namespaceSelector: its own namespace only"
    (endpoint,) = obj["spec"]["podMetricsEndpoints"]
    assert set(endpoint) <= {"port", "path", "interval", "relabelings", "scrapeTimeout", "honorLabels"}
    for rule in endpoint["relabelings"]:
        assert set(rule) <= {"action", "sourceLabels", "targetLabel", "regex", "replacement", "separator"}
        assert all(isinstance(s, str) for s in rule["sourceLabels"])


def test_it_scrapes_metrics_on_the_containers_http_port_at_the_spec_interval():
    md = make_md(monitoring={"podMonitor": True, "scrapeInterval": "30s"})
    (endpoint,) = monitor.expected(md)["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("http", "/metrics", "30s")
    pod = deployment.expected(md, make_plan(), replicas=1, options=RenderOptions())["spec"]["template"]
    assert endpoint["port"] in {p["name"] for p in pod["spec"]["containers"][0]["ports"]}


def test_it_lives_next_to_and_selects_the_fleets_pods():
    md = make_md(namespace="team-a")
    obj = monitor.expected(md)
    assert obj["metadata"]["namespace"] == "team-a"
    assert obj["spec"]["selector"]["matchLabels"] == labels.selector(md)


def test_scraped_series_carry_the_labels_the_autoscaler_selects_on():
    md = make_md("llama3-8b", namespace="ml")
    pod = deployment.expected(md, make_plan(), replicas=1, options=RenderOptions())["spec"]["template"]
    (endpoint,) = monitor.expected(md)["spec"]["podMetricsEndpoints"]
    series = relabel(endpoint["relabelings"], discovery_labels("ml", "llama3-8b-abc-1", pod["metadata"]["labels"]))
    selector = promql.DEFAULT_SELECTOR_TEMPLATE.format(namespace="ml", name="llama3-8b")
    wanted = dict(re.findall(r'(\w+)="([^"]*)"', selector))
    assert wanted.items() <= series.items(), f"{selector} would not match {series}"
    assert series["pod"] == "llama3-8b-abc-1"

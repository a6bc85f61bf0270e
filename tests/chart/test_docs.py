"""docs/install.md stays true to the code it describes: RBAC rules, alerts, values and commands."""

from __future__ import annotations

import re

import pytest
import yaml

from chart.chart_files import CHART, ROOT
from chart.conftest import Render, one
from neuronfleet.controller import rbac

INSTALL = (ROOT / "docs" / "install.md").read_text()


def _rbac_rows() -> list[list[str]]:
    section = INSTALL.split("### What the operator is allowed to do", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| `")]


@pytest.mark.parametrize(
    "rule", rbac.RULES, ids=[f"{r.api_group or 'core'} {' '.join(r.resources)}" for r in rbac.RULES]
)
def test_install_guide_lists_every_rbac_rule_with_its_verbs(rule):
    group_cell = f"`{rule.api_group}`" if rule.api_group else '`""`'
    rows = [row for row in _rbac_rows() if row[0] == group_cell]
    for resource in rule.resources:
        matching = [row for row in rows if f"`{resource}`" in row[1]]
        assert matching, f"docs/install.md has no RBAC row for {rule.api_group}/{resource}"
        verbs = {v.strip() for v in matching[0][2].split(",")}
        assert verbs == set(rule.verbs), (resource, verbs)


def test_install_guide_lists_every_alert_the_chart_renders(render: Render):
    rule = one(render({"prometheusRule": {"enabled": True}}), "PrometheusRule")
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    documented = set(re.findall(r"\| `(Neuronfleet\w+)` \|", INSTALL))
    assert documented == alerts


def test_install_guide_values_exist_in_values_yaml():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    pattern = r"`((?:operator|serviceMonitor|prometheusRule|dashboard|peering|image|rbac)\.[\w.]+)`"
    for dotted in re.findall(pattern, INSTALL):
        node = values
        for key in dotted.split("."):
            assert isinstance(node, dict) and key in node, f"docs/install.md names {dotted}, not in values.yaml"
            node = node[key]


def test_install_guide_documents_the_crd_upgrade_helm_cannot_do():
    assert "kubectl apply --server-side -f charts/neuronfleet/crds/" in INSTALL
    assert "helm upgrade" in INSTALL and "never upgrades CRDs" in INSTALL

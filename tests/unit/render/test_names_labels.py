"""Child names and labels are deterministic and valid for every ModelDeployment name."""

from __future__ import annotations

import re

import pytest

from neuronfleet.render import labels, names

from .builders import make_md

DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

NAMES = ["llama3-8b", "a" * 63, "m" * 64, "9b-model", "org.team.llama", "x" * 200 + "-model"]
IDS = ["plain", "63 chars", "64 chars", "starts with a digit", "dotted subdomain", "200 chars"]


@pytest.mark.parametrize("name", NAMES, ids=IDS)
def test_the_service_name_is_a_dns_1035_label(name: str):
    svc = names.service_name(make_md(name))
    assert len(svc) <= 63
    assert DNS_1035.fullmatch(svc)


@pytest.mark.parametrize("name", NAMES, ids=IDS)
def test_the_instance_label_is_a_valid_label_value(name: str):
    value = labels.instance_value(make_md(name))
    assert len(value) <= 63
    assert LABEL_VALUE.fullmatch(value)


def test_short_names_are_used_unchanged():
    md = make_md("llama3-8b")
    assert {names.deployment_name(md), names.service_name(md), names.pdb_name(md), names.pod_monitor_name(md)} == {
        "llama3-8b"
    }
    assert labels.instance_value(md) == "llama3-8b"


def test_shortened_names_are_stable_and_distinct():
    a, b = "m" * 70 + "-a", "m" * 70 + "-b"
    assert names.service_name(make_md(a)) == names.service_name(make_md(a))
    assert names.service_name(make_md(a)) != names.service_name(make_md(b))
    assert labels.instance_value(make_md(a)) != labels.instance_value(make_md(b))


def test_the_selector_string_is_the_selector_for_the_scale_subresource():
    md = make_md("llama3-8b")
    parsed = dict(part.split("=", 1) for part in labels.selector_string(md).split(","))
    assert parsed == labels.selector(md)
    assert parsed[labels.INSTANCE] == "llama3-8b"


def test_the_selector_uses_only_stable_labels():
    assert set(labels.selector(make_md())) == {labels.NAME, labels.INSTANCE, labels.COMPONENT}

"""Label and field selectors match the objects the API server would return."""

from __future__ import annotations

import pytest

from neuronfleet.kube_emulator.selectors import FieldSelector, LabelSelector, SelectorError, label_selector_string


def obj(labels: dict[str, str] | None = None, name: str = "a", namespace: str = "ns1") -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {}}}


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "api"}, False),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier in (a,b)", {"tier": "c"}, False),
        ("tier notin (a,b)", {}, True),
        ("tier notin (a,b)", {"tier": "a"}, False),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "a"}, True),
        ("app=web,tier in (a,b),!legacy", {"app": "web", "tier": "a", "legacy": "1"}, False),
        ("example.com/part-of=fleet", {"example.com/part-of": "fleet"}, True),
    ],
    ids=[
        "equality matches",
        "double equals compares values",
        "inequality matches a missing label",
        "inequality rejects the value",
        "set membership matches",
        "set membership rejects others",
        "notin matches a missing label",
        "notin rejects a member",
        "existence matches an empty value",
        "non-existence rejects a present label",
        "several requirements all hold",
        "one failing requirement rejects",
        "prefixed keys are allowed",
    ],
)
def test_label_selectors_match_like_the_api_server(selector: str, labels: dict, expected: bool):
    assert LabelSelector.parse(selector).matches(obj(labels)) is expected


@pytest.mark.parametrize("bad", ["a in b", "=x", "!a in (b)"], ids=["set without parens", "no key", "negated set"])
def test_malformed_label_selectors_are_rejected(bad: str):
    with pytest.raises(SelectorError):
        LabelSelector.parse(bad)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("metadata.name=a", True),
        ("metadata.name=b", False),
        ("metadata.namespace!=ns1", False),
        ("metadata.name=a,metadata.namespace=ns1", True),
    ],
    ids=["name equality", "name mismatch", "namespace inequality", "both fields"],
)
def test_field_selectors_compare_dotted_paths(selector: str, expected: bool):
    assert FieldSelector.parse(selector).matches(obj()) is expected


def test_a_label_selector_object_renders_as_the_scale_selector_string():
    selector = {
        "matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [
            {"key": "t", "operator": "In", "values": ["x", "y"]},
            {"key": "gone", "operator": "DoesNotExist"},
        ],
    }
    text = label_selector_string(selector)
    assert text == "a=1,b=2,t in (x,y),!gone"
    assert LabelSelector.parse(text).matches(obj({"a": "1", "b": "2", "t": "y"}))

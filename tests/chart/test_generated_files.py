"""Chart files that are copies of code-owned facts stay identical to their source."""

from __future__ import annotations

import filecmp

import yaml

from chart import chart_files


def test_chart_crd_is_identical_to_the_generated_crd_at_the_root():
    chart_crd = chart_files.CHART / "crds" / chart_files.CRD_NAME
    root_crd = chart_files.ROOT / "crds" / chart_files.CRD_NAME
    assert filecmp.cmp(chart_crd, root_crd, shallow=False), (
        "charts/neuronfleet/crds differs from crds/: run `.venv/bin/python tests/chart/chart_files.py --write`"
    )


def test_generated_chart_files_are_fresh():
    stale = [str(p.relative_to(chart_files.ROOT)) for p in chart_files.stale_files()]
    assert not stale, f"stale: {stale}; run `.venv/bin/python tests/chart/chart_files.py --write`"


def test_rbac_rules_file_lists_every_resource_of_the_operators_table_once():
    rules = yaml.safe_load(chart_files.RULES_FILE.read_text())["rules"]
    listed = [(r["apiGroups"][0], r["resources"][0]) for r in rules]
    from neuronfleet.controller import rbac

    assert sorted(listed) == sorted((r.api_group, res) for r in rbac.RULES for res in r.resources)
    assert len(listed) == len(set(listed))
    assert all(r["why"] for r in rules)


def test_stale_files_notices_an_edited_copy(tmp_path, monkeypatch):
    """The freshness check itself: a hand edit of the generated rules is reported."""
    copy = tmp_path / "rbac-rules.yaml"
    copy.write_text(chart_files.RULES_FILE.read_text().replace("verbs: [get, patch]", "verbs: [get, patch, update]"))
    expected = chart_files.expected_files()
    monkeypatch.setattr(chart_files, "expected_files", lambda: {copy: expected[chart_files.RULES_FILE]})
    assert chart_files.stale_files() == [copy]


def test_peering_crds_preserve_the_status_kopf_writes():
    """kopf keeps one key per operator replica under `status` of the peering object (no subresource)."""
    docs = [d for d in yaml.safe_load_all((chart_files.CHART / "crds" / "kopf.dev_peerings.yaml").read_text()) if d]
    assert {d["spec"]["names"]["plural"]: d["spec"]["scope"] for d in docs} == {
        "clusterkopfpeerings": "Cluster",
        "kopfpeerings": "Namespaced",
    }
    for doc in docs:
        (version,) = doc["spec"]["versions"]
        assert version["name"] == "v1" and doc["spec"]["group"] == "kopf.dev"
        assert version["schema"]["openAPIV3Schema"]["x-kubernetes-preserve-unknown-fields"] is True
        assert "subresources" not in version

"""The instance catalog: per-node arithmetic and lookups behave as the Neuron docs describe."""

from __future__ import annotations

import pytest

from neuronfleet.errors import PlanError
from neuronfleet.neuron.catalog import CATALOG, GIB, lookup


@pytest.mark.parametrize(
    ("name", "lnc", "cores", "per_core_gib"),
    [
        ("inf2.xlarge", None, 2, 16),
        ("inf2.48xlarge", None, 24, 16),
        ("trn1.32xlarge", None, 32, 16),
        ("trn2.48xlarge", None, 64, 24),
        ("trn2.48xlarge", 1, 128, 12),
    ],
    ids=[
        "inf2.xlarge has two 16 GiB cores",
        "inf2.48xlarge has 24 cores",
        "trn1.32xlarge has 32 cores",
        "trn2.48xlarge has 64 logical cores of 24 GiB at LNC 2",
        "trn2.48xlarge has 128 cores of 12 GiB at LNC 1",
    ],
)
def test_logical_cores_and_memory_per_core_follow_the_chip_layout(name, lnc, cores, per_core_gib):
    instance = lookup(name)
    assert instance.logical_cores(lnc) == cores
    assert instance.memory_per_core_bytes(lnc) == per_core_gib * GIB
    # The node's HBM is the sum over its cores, whatever the LNC.
    assert instance.logical_cores(lnc) * instance.memory_per_core_bytes(lnc) == instance.hbm_total_bytes


@pytest.mark.parametrize("instance", CATALOG, ids=[i.name for i in CATALOG])
def test_every_catalog_entry_is_self_consistent(instance):
    assert instance.default_lnc in instance.legal_lncs
    for lnc in instance.legal_lncs:
        degrees = instance.tp_degrees(lnc)
        assert degrees, "every legal LNC has legal TP degrees"
        assert list(degrees) == sorted(set(degrees))
        assert max(degrees) <= instance.logical_cores(lnc), "no legal degree spans more than one node"
    assert instance.legal_device_counts()[-1] <= instance.chips
    assert instance.variant_of is None or lookup(instance.variant_of).chips == instance.chips


def test_trn1_allocates_only_the_documented_device_sets_and_inf2_any_run():
    assert lookup("trn1.32xlarge").legal_device_counts() == (1, 4, 8, 16)
    assert lookup("inf2.48xlarge").legal_device_counts() == tuple(range(1, 13))


def test_lookup_ignores_case_and_rejects_unknown_types_listing_the_known_ones():
    assert lookup(" TRN2.48xlarge ").name == "trn2.48xlarge"
    with pytest.raises(PlanError) as err:
        lookup("p5.48xlarge")
    assert "p5.48xlarge" in str(err.value)
    assert "inf2.48xlarge" in str(err.value) and "trn2.48xlarge" in str(err.value)

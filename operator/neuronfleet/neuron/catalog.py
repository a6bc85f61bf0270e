"""The Neuron instance catalog: what each EC2 instance type offers a vLLM replica, as data.

The planner needs the accelerator layout of a node (chips, NeuronCores, logical-core size,
HBM), its host resources, the tensor-parallel degrees the Neuron stack accepts there and the
device sets the Neuron scheduler extension can allocate. Keeping that as one table of frozen
records means a new instance type is one entry, and every number has a source.

Sources (aws-neuron/aws-neuron-sdk docs, SDK 2.32 snapshot):
- chips, cores, HBM, vCPU, host memory: about-neuron/arch/neuron-hardware/{inf2,trn1,trn2}-arch.rst
  and {inferentia2,trainium,trainium2}.rst.
- logical NeuronCore config (LNC 1 or 2, trn2/trn3 only, default 2):
  about-neuron/arch/neuron-features/logical-neuroncore-config.rst.
- tensor-parallel degrees and memory per core (16 GiB inf2/trn1, 24 GiB trn2 at LNC 2):
  libraries/nxd-inference/developer_guides/feature-guide.rst.
- device sets: trn1.32xlarge/trn1n 2D torus accepts only 1, 4, 8 or 16 devices, inf2's ring any
  contiguous run (deploy/infrastructure/scheduler.rst); trn2 connected sets of 1/4/8/16 devices
  (deploy/eks/dra.rst).
- hourly prices: RI-effective $/h from about-neuron/benchmarks/{inf2,trn1}/*_instance_prices.csv
  (none published there for trn1n or trn2).
- per-chip HBM bandwidth and dense BF16 peak (for the capacity roofline, `capacity.roofline`):
  Inferentia2 and Trainium 820 GiB/s and 190 BF16 TFLOPS (about-neuron/arch/neuron-hardware/
  inferentia2.rst, trainium.rst); Trainium2 2.9 TB/s and 667 BF16 TFLOPS, 1299 FP8 TFLOPS
  (trainium2.rst; the NKI Trainium2 architecture guide gives the same 2.9 TB/s).
- EFA devices per node: 8 on trn1.32xlarge (the AWS Llama-3.1-405B LeaderWorkerSet recipe requests
  vpc.amazonaws.com/efa: 8 with 16 Neuron devices, awslabs/ai-on-eks blueprints/inference/
  vllm-llama3.1-405b-trn1, reference neuron-vllm.md section 2); 16 on trn2.48xlarge, one per device
  (ai-dynamo/nixl PR 1994; AIBrix's DRA sample pairs 16 devices with 16 EFA devices). trn1n (twice
  trn1's EFA bandwidth) and trn2u are taken as 16 [INFERRED].
- UltraServer: a Trn2 UltraServer is 4 trn2u.48xlarge nodes joined by NeuronLink, allocated in
  node configs of 1, 2 or 4 (deploy/eks/ultraserver.rst, deploy/eks/dra.rst).

Entries marked `inferred=True` carry numbers that are not all in those sources (trn2.3xlarge host
size, its TP list); the planner never picks them on its own, only when asked by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from neuronfleet.errors import PlanError

__all__ = ["CATALOG", "GIB", "InstanceType", "lookup"]

GIB = 1024**3


@dataclass(frozen=True)
class InstanceType:
    """One EC2 instance type with Neuron accelerators, as the planner sees it."""

    name: str
    family: str  # inf2 | trn1 | trn2 | trn3
    chips: int  # Neuron devices (Inferentia2 / Trainium chips) on the node
    physical_cores_per_chip: int
    default_lnc: int  # logical NeuronCore size the node boots with
    legal_lncs: tuple[int, ...]
    hbm_per_chip_gib: int
    vcpus: int
    host_memory_gib: int
    # Legal TP degrees per LNC, as (lnc, degrees) pairs; degrees count logical cores.
    tp_degrees_by_lnc: tuple[tuple[int, tuple[int, ...]], ...]
    # Device counts one pod may be given; None: any contiguous run of devices (inf2 ring).
    device_sets: tuple[int, ...] | None
    hourly_price_usd: float | None = None
    efa: bool = False
    efa_devices: int = 0  # EFA devices on the node (vpc.amazonaws.com/efa), for collectives between nodes
    ultraserver_nodes: int = 0  # >0: nodes of the UltraServer this instance type is one node of
    inferred: bool = False
    # trn1n/trn2u share the accelerator layout of their base type (network/UltraServer variants);
    # the planner prefers the base type when it picks an instance on its own.
    variant_of: str | None = None
    # Per chip: HBM bandwidth (bytes/s) and dense peak FLOP/s in BF16 and FP8 (None: as BF16).
    hbm_bandwidth_per_chip: float = 0.0
    bf16_flops_per_chip: float = 0.0
    fp8_flops_per_chip: float | None = None

    def logical_cores_per_chip(self, lnc: int | None = None) -> int:
        return self.physical_cores_per_chip // (lnc or self.default_lnc)

    def logical_cores(self, lnc: int | None = None) -> int:
        """NeuronCores the runtime (and the device plugin) count on the node at this LNC."""
        return self.chips * self.logical_cores_per_chip(lnc)

    def memory_per_core_bytes(self, lnc: int | None = None) -> int:
        """HBM one logical core owns: the chip's HBM split evenly over its logical cores."""
        return self.hbm_per_chip_gib * GIB // self.logical_cores_per_chip(lnc)

    @property
    def logical_cores_default(self) -> int:
        return self.logical_cores(self.default_lnc)

    @property
    def memory_per_core_default_bytes(self) -> int:
        return self.memory_per_core_bytes(self.default_lnc)

    @property
    def hbm_total_bytes(self) -> int:
        return self.chips * self.hbm_per_chip_gib * GIB

    def tp_degrees(self, lnc: int | None = None) -> tuple[int, ...]:
        """Legal tensor-parallel degrees at an LNC; empty when that LNC is not legal here."""
        wanted = lnc or self.default_lnc
        for key, degrees in self.tp_degrees_by_lnc:
            if key == wanted:
                return degrees
        return ()

    def legal_device_counts(self) -> tuple[int, ...]:
        """Device counts one pod may be allocated on this node."""
        if self.device_sets is None:
            return tuple(range(1, self.chips + 1))
        return tuple(n for n in self.device_sets if n <= self.chips)


_V2_HBM_BANDWIDTH = 820 * 1024**3  # Inferentia2 / Trainium: 820 GiB/s per chip
_V2_BF16_FLOPS = 190e12  # 190 BF16 TFLOPS per chip (two NeuronCore-v2)
_TRN2_HBM_BANDWIDTH = 2.9e12  # Trainium2: 2.9 TB/s per chip (four HBM stacks)
_TRN2_BF16_FLOPS = 667e12  # 667 dense BF16 TFLOPS per chip (eight NeuronCore-v3)
_TRN2_FP8_FLOPS = 1299e12  # 1299 dense FP8 TFLOPS per chip

_INF2_TP_SMALL = ((1, (1, 2)),)
_TRN2_TP = (
    (2, (1, 2, 4, 8, 16, 32, 64)),
    # LNC 1 doubles the core count; the same power-of-two ladder one step further [INFERRED].
    (1, (1, 2, 4, 8, 16, 32, 64, 128)),
)

CATALOG: tuple[InstanceType, ...] = (
    InstanceType(
        name="inf2.xlarge",
        family="inf2",
        chips=1,
        physical_cores_per_chip=2,
        default_lnc=1,
        legal_lncs=(1,),
        hbm_per_chip_gib=32,
        vcpus=4,
        host_memory_gib=16,
        tp_degrees_by_lnc=_INF2_TP_SMALL,
        hbm_bandwidth_per_chip=_V2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_V2_BF16_FLOPS,
        device_sets=None,
        hourly_price_usd=0.328,
    ),
    InstanceType(
        name="inf2.8xlarge",
        family="inf2",
        chips=1,
        physical_cores_per_chip=2,
        default_lnc=1,
        legal_lncs=(1,),
        hbm_per_chip_gib=32,
        vcpus=32,
        host_memory_gib=128,
        tp_degrees_by_lnc=_INF2_TP_SMALL,
        hbm_bandwidth_per_chip=_V2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_V2_BF16_FLOPS,
        device_sets=None,
        hourly_price_usd=0.850,
    ),
    InstanceType(
        name="inf2.24xlarge",
        family="inf2",
        chips=6,
        physical_cores_per_chip=2,
        default_lnc=1,
        legal_lncs=(1,),
        hbm_per_chip_gib=32,
        vcpus=96,
        host_memory_gib=384,
        tp_degrees_by_lnc=((1, (1, 2, 4, 8)),),
        hbm_bandwidth_per_chip=_V2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_V2_BF16_FLOPS,
        device_sets=None,
        hourly_price_usd=2.804,
    ),
    InstanceType(
        name="inf2.48xlarge",
        family="inf2",
        chips=12,
        physical_cores_per_chip=2,
        default_lnc=1,
        legal_lncs=(1,),
        hbm_per_chip_gib=32,
        vcpus=192,
        host_memory_gib=768,
        tp_degrees_by_lnc=((1, (1, 2, 4, 8, 24)),),
        hbm_bandwidth_per_chip=_V2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_V2_BF16_FLOPS,
        device_sets=None,
        hourly_price_usd=5.608,
    ),
    InstanceType(
        name="trn1.2xlarge",
        family="trn1",
        chips=1,
        physical_cores_per_chip=2,
        default_lnc=1,
        legal_lncs=(1,),
        hbm_per_chip_gib=32,
        vcpus=8,
        host_memory_gib=32,
        tp_degrees_by_lnc=((1, (1, 2)),),
        hbm_bandwidth_per_chip=_V2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_V2_BF16_FLOPS,
        device_sets=(1,),
        hourly_price_usd=0.512,
    ),
    InstanceType(
        name="trn1.32xlarge",
        family="trn1",
        chips=16,
        physical_cores_per_chip=2,
        default_lnc=1,
        legal_lncs=(1,),
        hbm_per_chip_gib=32,
        vcpus=128,
        host_memory_gib=512,
        tp_degrees_by_lnc=((1, (1, 2, 8, 16, 32)),),
        hbm_bandwidth_per_chip=_V2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_V2_BF16_FLOPS,
        device_sets=(1, 4, 8, 16),
        hourly_price_usd=8.197,
        efa=True,
        efa_devices=8,
    ),
    InstanceType(
        name="trn1n.32xlarge",
        family="trn1",
        chips=16,
        physical_cores_per_chip=2,
        default_lnc=1,
        legal_lncs=(1,),
        hbm_per_chip_gib=32,
        vcpus=128,
        host_memory_gib=512,
        tp_degrees_by_lnc=((1, (1, 2, 8, 16, 32)),),
        hbm_bandwidth_per_chip=_V2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_V2_BF16_FLOPS,
        device_sets=(1, 4, 8, 16),
        efa=True,
        efa_devices=16,
        variant_of="trn1.32xlarge",
    ),
    InstanceType(
        name="trn2.48xlarge",
        family="trn2",
        chips=16,
        physical_cores_per_chip=8,
        default_lnc=2,
        legal_lncs=(1, 2),
        hbm_per_chip_gib=96,
        vcpus=192,
        host_memory_gib=2048,
        tp_degrees_by_lnc=_TRN2_TP,
        hbm_bandwidth_per_chip=_TRN2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_TRN2_BF16_FLOPS,
        fp8_flops_per_chip=_TRN2_FP8_FLOPS,
        device_sets=(1, 4, 8, 16),
        efa=True,
        efa_devices=16,
    ),
    InstanceType(
        name="trn2u.48xlarge",
        family="trn2",
        chips=16,
        physical_cores_per_chip=8,
        default_lnc=2,
        legal_lncs=(1, 2),
        hbm_per_chip_gib=96,
        vcpus=192,
        host_memory_gib=2048,
        tp_degrees_by_lnc=_TRN2_TP,
        hbm_bandwidth_per_chip=_TRN2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_TRN2_BF16_FLOPS,
        fp8_flops_per_chip=_TRN2_FP8_FLOPS,
        device_sets=(1, 4, 8, 16),
        efa=True,
        efa_devices=16,
        ultraserver_nodes=4,
        variant_of="trn2.48xlarge",
    ),
    # One Trainium2 chip (listed by the DRA driver). vCPU/host memory from the EC2 launch
    # announcement, not the Neuron docs [INFERRED]; TP up to the chip's 4 logical cores at LNC 2.
    InstanceType(
        name="trn2.3xlarge",
        family="trn2",
        chips=1,
        physical_cores_per_chip=8,
        default_lnc=2,
        legal_lncs=(1, 2),
        hbm_per_chip_gib=96,
        vcpus=12,
        host_memory_gib=128,
        tp_degrees_by_lnc=((2, (1, 2, 4)), (1, (1, 2, 4, 8))),
        hbm_bandwidth_per_chip=_TRN2_HBM_BANDWIDTH,
        bf16_flops_per_chip=_TRN2_BF16_FLOPS,
        fp8_flops_per_chip=_TRN2_FP8_FLOPS,
        device_sets=(1,),
        inferred=True,
    ),
)


def lookup(name: str, catalog: tuple[InstanceType, ...] = CATALOG) -> InstanceType:
    """The catalog entry for an instance type name; a PlanError lists the known names otherwise."""
    wanted = name.strip().lower()
    for instance in catalog:
        if instance.name == wanted:
            return instance
    known = ", ".join(i.name for i in catalog)
    raise PlanError(f"unknown instance type {name!r}; known Neuron instance types: {known}")

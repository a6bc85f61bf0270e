"""Replicas larger than one node: a group of whole nodes with tensor parallelism across them.

The planner (`planner.py`) sizes memory and picks a shape; this module holds what is specific to
groups: which runtime can span nodes and how, which group sizes are legal on an instance type, the
environment every pod of a group needs, and the per-rank launch command. All pure.

Which runtime spans nodes, and how (sources):
- nxdi (vLLM + NxD Inference): NxDI shards one model over several nodes with TENSOR parallelism
  across them. Each node runs `local_ranks_size` ranks starting at `start_rank_id` (a multiple of
  `local_ranks_size`), the TP degree is the global one, and every rank reaches the collective root
  at `NEURON_RT_ROOT_COMM_ID=<rank-0 host>:<port>` (aws-neuron/neuronx-distributed-inference
  examples/multi_node.md: TP 64 over two trn1 nodes, 32 ranks each). The vLLM Neuron multi-node
  launcher sets the same per node: NEURON_RT_ROOT_COMM_ID, NEURON_RANK_ID, NEURON_LOCAL_TP,
  WORLD_SIZE, ENABLE_NEURON_MULTI_NODE=true and `start_rank_id = rank x local_ranks_size` in the
  Neuron config. AWS serves Llama-3.1-405B on four trn1.32xlarge that way under a LeaderWorkerSet
  of size 4: TP 128 = 4 x 32, `NEURON_RT_ROOT_COMM_ID=$LWS_LEADER_ADDRESS:8990`, 16 Neuron devices
  and 8 EFA devices per pod, FI_PROVIDER=efa, FI_EFA_USE_DEVICE_RDMA=1, FI_EFA_FORK_SAFE=1
  (awslabs/ai-on-eks blueprints/inference/vllm-llama3.1-405b-trn1; reference neuron-vllm.md 2).
- vllm-neuron (the vLLM Neuron plugin, trn2/trn3): its docs describe tensor, data and expert
  parallelism inside one instance and disaggregated prefill/decode between instances; nothing runs
  one replica across nodes [negative finding, vllm-neuron docs SDK 2.32]. It is never planned
  across nodes; when the runtime is not given the planner switches to nxdi and says why.
- Pipeline parallelism (TP inside a node x nodes) is NOT planned: no Neuron runtime documents vLLM
  serving with pipeline stages on different nodes [negative finding]. A group is TP across nodes.

Group shapes:
- whole nodes only: every pod takes all of its node's cores at the LNC (local TP = node cores), as
  every recipe above does; a partial node would strand the rest of the node [INFERRED];
- 2, 4, 8 or 16 nodes: the documented groups are 2 and 4 nodes; powers of two keep the global TP
  on the power-of-two ladder the runtime accepts within a node [INFERRED extension];
- the nodes talk over EFA (the instance must have it);
- trn2u.48xlarge is one node of a Trn2 UltraServer (4 nodes over NeuronLink), allocated in node
  configs of 1, 2 or 4 (deploy/eks/ultraserver.rst; aws-neuron-sdk src/k8/k8s-ultraserver-init-
  script.sh: "Must be 1, 2, or 4"); a group there is 2 or 4 nodes and is placed inside one
  UltraServer through the node label `neuron.amazonaws.com/ultraserver-server-id-<N>`.

The pods of a group: LeaderWorkerSet injects `LWS_LEADER_ADDRESS` (`<lws>-<group>.<lws>.<ns>`),
`LWS_GROUP_SIZE` and `LWS_WORKER_INDEX` (0 for the leader) at the FRONT of every container's env
(kubernetes-sigs/lws pkg/webhooks/pod_webhook.go, pkg/utils/pod), so later variables can refer to
them with Kubernetes' `$(VAR)` expansion. That is how the collective root, the rank and the world
size are wired below without a wrapper. `start_rank_id` needs arithmetic (rank x local TP), which
`$(VAR)` cannot do, so the container runs a POSIX shell line that computes it (`serve_script`).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence

from neuronfleet.neuron import vllm_args
from neuronfleet.neuron.catalog import InstanceType

__all__ = [
    "ALLOCATIONS",
    "DEVICE_PLUGIN",
    "DRA",
    "EFA_ENV",
    "GROUP_NODE_COUNTS",
    "LWS_GROUP_SIZE",
    "LWS_LEADER_ADDRESS",
    "LWS_WORKER_INDEX",
    "MULTI_NODE_PARALLELISM",
    "ROOT_COMM_PORT",
    "START_RANK_KEY",
    "TENSOR",
    "TENSOR_ACROSS_NODES",
    "multi_node_env",
    "node_counts",
    "serve_script",
    "ultraserver_topology_key",
]

DEVICE_PLUGIN = "devicePlugin"
DRA = "dra"
ALLOCATIONS: tuple[str, ...] = (DEVICE_PLUGIN, DRA)

TENSOR = "tensor"
TENSOR_ACROSS_NODES = "tensorAcrossNodes"
# runtime -> how it runs one replica over several nodes (see the module docstring).
MULTI_NODE_PARALLELISM: Mapping[str, str] = {vllm_args.RUNTIME_NXDI: TENSOR_ACROSS_NODES}

GROUP_NODE_COUNTS: tuple[int, ...] = (2, 4, 8, 16)
# Node configs of a Trn2 UltraServer larger than one node (deploy/eks/ultraserver.rst).
ULTRASERVER_NODE_CONFIGS: tuple[int, ...] = (2, 4)

ROOT_COMM_PORT = 8990  # the AWS 405B LeaderWorkerSet recipe's NEURON_RT_ROOT_COMM_ID port
START_RANK_KEY = "start_rank_id"  # NxDI NeuronConfig: first global rank of this node's ranks

# Environment LeaderWorkerSet injects into every container of a group (lws api/leaderworkerset/v1).
LWS_LEADER_ADDRESS = "LWS_LEADER_ADDRESS"
LWS_GROUP_SIZE = "LWS_GROUP_SIZE"
LWS_WORKER_INDEX = "LWS_WORKER_INDEX"

# libfabric over EFA, as the AWS 405B LeaderWorkerSet recipe sets it.
EFA_ENV: Mapping[str, str] = {"FI_PROVIDER": "efa", "FI_EFA_USE_DEVICE_RDMA": "1", "FI_EFA_FORK_SAFE": "1"}

_TOPOLOGY_LABEL = "neuron.amazonaws.com/ultraserver-server-id-{nodes}"


def node_counts(instance: InstanceType) -> tuple[int, ...]:
    """Legal group sizes (nodes per replica above 1) on this instance type."""
    if instance.ultraserver_nodes:
        return tuple(n for n in ULTRASERVER_NODE_CONFIGS if n <= instance.ultraserver_nodes)
    return GROUP_NODE_COUNTS


def ultraserver_topology_key(nodes: int) -> str:
    """The node label whose value is shared by the nodes of one UltraServer node config of `nodes`."""
    return _TOPOLOGY_LABEL.format(nodes=nodes)


def _ref(name: str) -> str:
    return f"$({name})"


def multi_node_env(*, local_tensor_parallel_size: int, efa: bool) -> dict[str, str]:
    """What every pod of a group needs, wired to the LeaderWorkerSet's own variables."""
    env = {
        "NEURON_RT_ROOT_COMM_ID": f"{_ref(LWS_LEADER_ADDRESS)}:{ROOT_COMM_PORT}",
        "MASTER_ADDR": _ref(LWS_LEADER_ADDRESS),
        "NEURON_RANK_ID": _ref(LWS_WORKER_INDEX),
        "WORLD_SIZE": _ref(LWS_GROUP_SIZE),
        "NEURON_LOCAL_TP": str(local_tensor_parallel_size),
        "ENABLE_NEURON_MULTI_NODE": "true",
    }
    if efa:
        env.update(EFA_ENV)
    return env


def serve_script(argv: Sequence[str], *, local_tensor_parallel_size: int) -> str:
    """A POSIX sh line that execs `argv` with this rank's `start_rank_id` in --additional-config.

    The rank is LWS_WORKER_INDEX (0 on the leader); the node's first global rank is rank x local
    TP (NxDI's rule, examples/multi_node.md). Every other argument is passed exactly as given
    (shell-quoted), so the line is the argv of a single-node replica plus that one key.
    """
    argv = list(argv)
    flag = "--additional-config"
    if flag in argv:
        i = argv.index(flag)
        config = json.loads(argv[i + 1])
        rest = argv[:i] + argv[i + 2 :]
    else:
        config, rest = {}, argv
    section_key = vllm_args.ADDITIONAL_CONFIG_SECTION[vllm_args.RUNTIME_NXDI]
    marker = "__NEURONFLEET_START_RANK__"
    section = dict(config.get(section_key) or {})
    section[START_RANK_KEY] = marker
    text = json.dumps({**config, section_key: section}, sort_keys=True, separators=(",", ":"))
    before, after = text.split(json.dumps(marker), 1)
    rank = f"$(({LWS_WORKER_INDEX} * {int(local_tensor_parallel_size)}))"
    config_arg = f'"$(printf %s%s%s {shlex.quote(before)} "{rank}" {shlex.quote(after)})"'
    return "exec " + " ".join(shlex.quote(a) for a in rest) + f" {flag} {config_arg}"

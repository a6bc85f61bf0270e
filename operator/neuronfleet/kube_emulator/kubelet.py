"""A pod's status as its kubelet reports it once it runs: one container, Running, Ready or not yet.

Shared by the emulator's pod-creating Deployment controller and the demo's node pool, which both
stand in for the kubelet of a node the scheduler chose. The scheduler's ``PodScheduled`` condition
is kept as it was; ``Initialized``, ``ContainersReady`` and ``Ready`` follow the container.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["running_status"]


def running_status(
    *, ready: bool, started_at: str, now: str, image: str, pod: Mapping[str, Any] | None = None, container: str = "vllm"
) -> dict[str, Any]:
    """status of a running pod with one container; `pod`'s PodScheduled condition is carried over."""
    flag = "True" if ready else "False"
    scheduled = [
        c for c in ((pod or {}).get("status") or {}).get("conditions") or () if c.get("type") == "PodScheduled"
    ]
    if not scheduled:
        scheduled = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": started_at}]
    return {
        "phase": "Running",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "hostIP": "127.0.0.1",
        "startTime": started_at,
        "conditions": [
            *scheduled,
            {"type": "Initialized", "status": "True", "lastTransitionTime": started_at},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
        ],
        "containerStatuses": [
            {
                "name": container,
                "ready": ready,
                "started": ready,
                "restartCount": 0,
                "image": image,
                "imageID": "",
                "state": {"running": {"startedAt": started_at}},
            }
        ],
    }

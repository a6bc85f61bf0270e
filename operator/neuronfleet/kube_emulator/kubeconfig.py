"""Kubeconfig files pointing at an emulator, for kubectl, the kubernetes client and kopf."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["kubeconfig", "write_kubeconfig"]


def kubeconfig(
    url: str, *, namespace: str = "default", context: str = "neuronfleet-emulator", token: str = "emulator"
) -> dict[str, Any]:
    """A kubeconfig with one plain-HTTP cluster; the emulator authorizes every token and logs its user.

    Give each client its own ``token`` (mapped to a user in ``Emulator.tokens``) to tell their
    requests apart in the request log.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url}}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }


def write_kubeconfig(
    path: str | os.PathLike[str],
    url: str,
    *,
    namespace: str = "default",
    context: str = "neuronfleet-emulator",
    token: str = "emulator",
) -> Path:
    """Write the kubeconfig (mode 0600, as kubectl expects) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = kubeconfig(url, namespace=namespace, context=context, token=token)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    target.chmod(0o600)
    return target

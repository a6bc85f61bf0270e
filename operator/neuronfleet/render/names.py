"""Deterministic names of a ModelDeployment's children.

Names derive only from the ModelDeployment's name, never from the spec or a random suffix, so a
re-run of reconcile finds the child it created before instead of creating a second one, and a
`kubectl diff` of `neuronfleet render` output lines up with the live objects.

Every child is named after its ModelDeployment (`llama3-8b` -> Deployment, Service, PDB and
PodMonitor `llama3-8b`): clients reach the model at `http://<name>.<namespace>:8000`. A Service
name must be a DNS-1035 label (<= 63 chars, starts with a letter, no dots), stricter than the
DNS-1123 subdomain a ModelDeployment may use; such names are shortened with a stable hash suffix.
"""

from __future__ import annotations

import hashlib
import re

from neuronfleet.api.resource import ModelDeployment

__all__ = [
    "claim_template_name",
    "deployment_name",
    "dns_label",
    "leader_worker_set_name",
    "pdb_name",
    "pod_monitor_name",
    "service_name",
]

_MAX_LABEL = 63
# LeaderWorkerSet names its leader StatefulSet and its headless Service after itself, each group's
# worker StatefulSet `<lws>-<group>`, and pods `<lws>-<group>` and `<lws>-<group>-<worker>`, which are
# also the pods' hostnames (lws pkg/webhooks/pod_webhook.go). A StatefulSet's pods carry the label
# controller-revision-hash=<statefulset>-<10-char hash>, and label values stop at 63 characters: 40
# leaves room for a 3-digit group index and that suffix [INFERRED from those naming rules].
_MAX_LWS = 40


def dns_label(name: str) -> str:
    """`name` as a DNS-1035 label; unchanged when it already is one, else sanitised plus a hash of the original."""
    if len(name) <= _MAX_LABEL and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    base = re.sub(r"[^-a-z0-9]", "-", name.lower())
    if not base[:1].isalpha():
        base = "md-" + base
    base = base[: _MAX_LABEL - len(digest) - 1].strip("-")
    return f"{base}-{digest}"


def deployment_name(md: ModelDeployment) -> str:
    # Pod names append "-<10 char hash>-<5 char suffix>" (17 chars) and must stay within 253.
    return md.name if len(md.name) <= 253 - 17 else dns_label(md.name)


def service_name(md: ModelDeployment) -> str:
    return dns_label(md.name)


def pdb_name(md: ModelDeployment) -> str:
    return md.name


def pod_monitor_name(md: ModelDeployment) -> str:
    return md.name


def leader_worker_set_name(md: ModelDeployment) -> str:
    """`<name>-lws`: never the Service's name, because LWS creates a headless Service named after itself."""
    name = f"{md.name}-lws"
    if len(name) <= _MAX_LWS and dns_label(name) == name:
        return name
    digest = hashlib.sha256(md.name.encode()).hexdigest()[:8]
    base = re.sub(r"[^-a-z0-9]", "-", md.name.lower())
    if not base[:1].isalpha():
        base = "md-" + base
    base = base[: _MAX_LWS - len(digest) - len("--lws")].strip("-")
    return f"{base}-{digest}-lws"


def claim_template_name(md: ModelDeployment, digest: str) -> str:
    """`<name>-neuron-<digest>`: a ResourceClaimTemplate's spec is immutable, so a changed claim is a new object."""
    return f"{md.name[: 253 - len(digest) - len('-neuron-')]}-neuron-{digest}"

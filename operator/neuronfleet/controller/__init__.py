"""The operator: kopf handlers around a pure reconcile core. The only package that imports kopf.

The shell: `runner` (embed kopf), `handlers` (watch, cache, queue; nothing else), `startup` (the
memo), `workqueue` (one pending pass per fleet, retried with backoff), `reconciler` (the pass: a
flat list of named steps), `apply` (the one writer of children), `autoscaling` (decides, writes
nothing), `kube` (API client), `cache` (what the watches saw), `state` (what lives in memory),
`events`, `metrics`, `rbac` (every permission used), `settings`.

The pure core: `diff` (create, patch, leave or refuse one child; drift vs update), `desired` (what
a pass applies), `status` (the whole status from what the pass observed), `artifacts` (the
compiled-artifact gate), `replica_phases` (where starting replicas are), `kinds` (every child kind).
"""

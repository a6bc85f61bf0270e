"""The operator: kopf handlers around a pure reconcile core. The only package that imports kopf.

Modules: `runner` (embed kopf), `handlers` (thin, level-based), `sync` (one reconcile pass and
the work queue), `reconcile` and `status` (pure decisions), `apply` (the one I/O path for
children), `kube` (API client), `events`, `metrics`, `rbac` (every permission used), `settings`.
"""

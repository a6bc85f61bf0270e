"""The ModelDeployment API (neuronfleet.io/v1alpha1): pydantic models are the one source of truth.

The CRD in crds/ is generated from these models (`neuronfleet crd`); conditions and reasons are
declared once in `conditions`. This package never imports kopf or a Kubernetes client.
"""

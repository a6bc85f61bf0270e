"""Contract tests: the CRD as a real Kubernetes 1.36 API server sees it (marker `realapi`)."""

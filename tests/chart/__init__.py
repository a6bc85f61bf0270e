"""Tests of the Helm chart, the Argo CD health check, the alerts, the dashboard and the Dockerfiles."""

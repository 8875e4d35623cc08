# nonstop developer commands. Everything installs what it needs on first use:
# a virtualenv in .venv (from PyPI) and the test control plane (built from the Go module
# proxy, cached in $(NONSTOP_CACHE)).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export NONSTOP_CACHE ?= $(HOME)/.cache/nonstop
export GOTOOLCHAIN := local

.PHONY: demo test unit e2e deps-e2e image lint crd cluster-up cluster-down bench bench-cluster clean

# Bring up the local cluster, install nonstop with Helm, roll out an example and show it.
demo: $(VENV)/.installed
	bash e2e/demo.sh

# The whole test suite: lint and types, unit and property tests, end-to-end on the real
# local control plane. This is what .ci/run runs.
test: $(VENV)/.installed lint deps-e2e
	$(PY) -m pytest tests e2e -p no:cacheprovider

unit: $(VENV)/.installed
	$(PY) -m pytest tests -p no:cacheprovider

e2e: $(VENV)/.installed deps-e2e
	$(PY) -m pytest e2e -p no:cacheprovider

# What the end-to-end tests run on, built once and cached in $(NONSTOP_CACHE): the control
# plane and the real node's binaries, Traefik, Prometheus, and the container images (pause,
# the test application, the operator image from the Dockerfile).
deps-e2e:
	bash e2e/cluster/build.sh
	bash e2e/gateway/build.sh
	bash e2e/prometheus/install.sh
	bash e2e/images/build.sh >/dev/null

# The operator image from the Dockerfile, built here without a registry (see docs/install.md).
image:
	bash e2e/images/build.sh operator

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check operator tests e2e bench
	$(VENV)/bin/ruff format --check operator tests e2e bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Regenerate the CRD (crds/ and the Helm chart's copy) from the pydantic models.
crd: $(VENV)/.installed
	$(VENV)/bin/nonstop crd rollouts > crds/rollouts.nonstop.dev.yaml
	$(VENV)/bin/nonstop crd rolloutactions > crds/rolloutactions.nonstop.dev.yaml
	$(VENV)/bin/nonstop crd analysistemplates > crds/analysistemplates.nonstop.dev.yaml
	cp crds/*.yaml helm/nonstop/crds/

cluster-up:
	bash e2e/cluster/up.sh

cluster-down:
	bash e2e/cluster/down.sh

bench: $(VENV)/.installed
	$(PY) bench/planner.py

# Rollout durations on a real local control plane (cluster "nonstop-bench", removed after).
bench-cluster: $(VENV)/.installed
	$(PY) bench/rollout.py

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

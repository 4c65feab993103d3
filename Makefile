# Two commands on a fresh machine with Python 3.11:
#   make run    set up (pinned lock file uv.lock) and run the whole pipeline (`dvc repro`) on the defaults
#   make test   set up and run the tests
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(PYTHON) -m uv
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := true

.PHONY: setup run test lint bench

setup:
	@$(PYTHON) -m uv --version 2>/dev/null | grep -q "$(UV_VERSION)" || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen

run: setup
	$(UV) run --frozen dvc repro

test: setup
	$(UV) run --frozen pytest

lint: setup
	$(UV) run --frozen ruff check src tests benchmarks
	$(UV) run --frozen ruff format --check src tests benchmarks
	$(UV) run --frozen lint-imports

bench: setup
	$(UV) run --frozen python benchmarks/bench_features.py

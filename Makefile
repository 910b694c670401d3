# `make run` and `make test` bootstrap their own virtualenv on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Parallel test processes (the suite mostly waits). On 2 cores a 4th made the multi-worker group tests
# (scaling, exactness) CPU-starved and flaky; 3 passed.
TEST_WORKERS ?= 3

.PHONY: run test test-fast test-tools lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/ticktide dev

test: $(BIN)/.installed test-tools  # the whole suite; pytest's addopts print the 15 slowest tests
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-tools:  # chromium, chromium-driver, docker-compose: installed with apt-get when missing
	@sh tests/install_tools.sh

test-fast: $(BIN)/.installed  # pure unit tests: no broker, under a minute
	$(BIN)/python -m pytest tests/unit -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers contracts in pyproject.toml

bench: $(BIN)/.installed
	$(BIN)/python -m bench.codec
	$(BIN)/python -m bench.produce
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.pipeline

clean:
	rm -rf $(VENV) .ticktide .pytest_cache

# `make run` and `make test` bootstrap their own virtualenv on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUIX_VENV ?= .venv-quix
QUIX := $(QUIX_VENV)/bin

.PHONY: run test test-fast test-tools lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/ticktide dev

test: $(BIN)/.installed test-tools
	$(BIN)/python -m pytest

test-tools:  # chromium, chromium-driver, docker-compose: installed with apt-get when missing
	@sh tests/install_tools.sh

test-fast: $(BIN)/.installed  # pure unit tests: no broker, under a minute
	$(BIN)/python -m pytest tests/unit -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers contracts in pyproject.toml

# Quix Streams pins an older confluent-kafka (and pydantic): it gets its own venv.
$(QUIX)/.installed: pyproject.toml
	$(PYTHON) -m venv $(QUIX_VENV)
	$(QUIX)/python -m pip install --quiet --upgrade pip
	$(QUIX)/python -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(BIN)/.installed $(QUIX)/.installed
	$(BIN)/python -m bench.codec
	$(BIN)/python -m bench.produce
	$(BIN)/python -m bench.pipeline --quix-python $(QUIX)/python

clean:
	rm -rf $(VENV) $(QUIX_VENV) .ticktide .pytest_cache

# `make run` and `make test` bootstrap their own virtualenv on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUIX_VENV ?= .venv-quix
QUIX := $(QUIX_VENV)/bin
# Parallel test processes (the suite mostly waits). On 2 cores a 4th made the multi-worker group tests
# (scaling, exactness) CPU-starved and flaky; 3 passed.
TEST_WORKERS ?= 3
# Each xdist_group (a unit module, a module sharing one worker) runs in one process; groups start
# in tests/conftest.py's order (longest first), not xdist's default of the biggest group first.
DIST := --dist loadgroup --no-loadscope-reorder
# The Apache Kafka run: each test starts its own Kafka node (a JVM), so fewer at once (2: the clean run measured).
KAFKA_TEST_WORKERS ?= 2

# The locks: every package pinned with its hashes, resolved for Linux x86_64 and CPython 3.11 (`make lock`).
RUNTIME_LOCK := requirements/runtime.txt
DEV_LOCK := requirements/dev.txt
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --quiet

.PHONY: run test test-kafka kafka-jars test-fast test-tools lint lock bench clean

# The dev lock (runtime + embedded broker + dev tools), then ticktide itself without resolving anything.
$(BIN)/.installed: pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Regenerate both locks from pyproject.toml, keeping the versions pinned unless pyproject excludes
# them (`make lock LOCK_UPGRADE=--upgrade`: the newest within pyproject's bounds). The dev lock keeps
# the runtime lock's versions.
LOCK_UPGRADE ?=
lock: $(BIN)/.installed
	$(BIN)/uv pip compile pyproject.toml requirements/build.in $(LOCK_FLAGS) $(LOCK_UPGRADE) -o $(RUNTIME_LOCK)
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra dev -c $(RUNTIME_LOCK) $(LOCK_FLAGS) \
		$(LOCK_UPGRADE) -o $(DEV_LOCK)

run: $(BIN)/.installed
	$(BIN)/ticktide dev

test: $(BIN)/.installed test-tools  # the whole suite on the embedded broker; pytest's addopts print the 15 slowest tests
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(DIST) --ignore=tests/kafka

kafka-jars: $(BIN)/.installed  # Apache Kafka's jars (deploy/kafka/pom.xml) through Maven, once; needs Java 17 + Maven
	$(BIN)/python -c "from streams.devstack.kafka_jars import jars_dir, java_binary; java_binary(); print('kafka jars in', jars_dir())"

# The integration tests on Apache Kafka in parallel, then the Kafka-only tests (compaction, broker
# failures: 3-node clusters, timed failovers) one at a time, so that they do not starve each other.
test-kafka: $(BIN)/.installed kafka-jars
	TICKTIDE_TEST_ENGINE=kafka $(BIN)/python -m pytest tests/integration -n $(KAFKA_TEST_WORKERS) $(DIST)
	TICKTIDE_TEST_ENGINE=kafka $(BIN)/python -m pytest tests/kafka -n 0

test-tools:  # chromium, chromium-driver, docker-compose: installed with apt-get when missing
	@sh tests/install_tools.sh

test-fast: $(BIN)/.installed  # pure unit tests: no broker, two processes, under a minute
	$(BIN)/python -m pytest tests/unit -q -n 2 $(DIST)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers contracts in pyproject.toml
	$(BIN)/deptry .  # production code: every import declared in [project] dependencies, every one used
	$(BIN)/deptry . --exclude "\.venv|venv|build|\.git|schemas|domain|streams|tables|agents" --ignore DEP002,DEP004  # tests, bench: imports declared (dev, bench extras count)

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

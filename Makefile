# The two commands: `make run` and `make test`. Each creates .venv when it is missing and installs from the
# lock files, exact versions with their hashes: `make run` only what running needs (requirements.lock),
# `make test` that and the test tools (requirements-test.lock). `make lock` refreshes both.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
LOCK_TOOL := build/lock-tool
COMPILE := $(LOCK_TOOL)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links

.PHONY: run test lint bench demo lock clean

$(RUNTIME): requirements.lock pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r requirements.lock
	$(PIP) install --no-deps -e .
	touch $@

$(STAMP): $(RUNTIME) requirements-test.lock
	$(PIP) install --require-hashes --no-deps -r requirements-test.lock
	touch $@

run: $(RUNTIME)
	$(BIN)/ggzy db upgrade
	$(BIN)/ggzy demo --seed-only
	$(BIN)/ggzy serve

# The suite runs on every core (pytest-xdist); TEST_JOBS=0 runs it in one process. Tests marked with one
# `xdist_group` run on one worker (they read a state built once per worker).
TEST_JOBS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

demo: $(RUNTIME)
	$(BIN)/ggzy demo

bench: $(STAMP)
	$(BIN)/ggzy bench notices

# Resolve pyproject.toml's dependencies afresh into both lock files (the test one constrained to the
# runtime one, so both install the same versions); commit the result.
lock:
	test -d $(LOCK_TOOL) || $(PYTHON) -m venv $(LOCK_TOOL)
	$(LOCK_TOOL)/bin/python -m pip install --quiet --upgrade pip-tools
	$(COMPILE) --upgrade -o requirements.lock pyproject.toml
	$(COMPILE) --upgrade --extra test --constraint requirements.lock -o requirements-test.lock pyproject.toml

clean:
	rm -rf $(VENV) var build *.egg-info

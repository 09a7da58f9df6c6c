# The two commands: `make run` and `make test`. Each creates .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench demo clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ggzy db upgrade
	$(BIN)/ggzy demo --seed-only
	$(BIN)/ggzy serve

# The suite runs on every core (pytest-xdist); TEST_JOBS=0 runs it in one process.
TEST_JOBS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_JOBS) --durations=25 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

demo: $(STAMP)
	$(BIN)/ggzy demo

bench: $(STAMP)
	$(BIN)/ggzy bench notices

clean:
	rm -rf $(VENV) var build *.egg-info

# The two commands: `make run` starts the whole system, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test chromium check lint typecheck imports fmt schemas bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local]'
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[local,test]'
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/closeloop up $(ARGS)

test: $(TEST_STAMP) chromium check
	$(BIN)/pytest

# The console's browser tests drive Debian's Chromium through Playwright (no browser download).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

check: lint typecheck imports

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

imports: $(TEST_STAMP)
	$(BIN)/lint-imports

fmt: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: $(TEST_STAMP)
	$(BIN)/python -m shared.events.generate

bench: $(TEST_STAMP)
	$(BIN)/python -m bench.intake

clean:
	rm -rf $(VENV) .closeloop .pytest_cache .mypy_cache .ruff_cache

# Short verbs; every target sets up what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast test-localstack test-scale demo lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml functions/shared/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' -r functions/shared/requirements.txt
	$(BIN)/baton setup
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not e2e"

# A real LocalStack in host mode (installed once under ~/.baton/localstack, about 3 minutes),
# then the deploy / describe / update / no-change / destroy suite and each engine's run against it.
test-localstack: setup
	$(BIN)/python scripts/localstack_harness.py setup
	BATON_TEST_LOCALSTACK=1 $(BIN)/python -m pytest tests/localstack

# The at-size e2e at the issue's figure: 2,000 distinct URLs per engine (make test runs 500).
test-scale: setup
	BATON_SCALE_N=2000 $(BIN)/python -m pytest tests/e2e/test_scale.py -q

demo: setup
	$(BIN)/python scripts/demo.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache

# Quick start: `make run` starts the bot on SQLite, `make test` runs lint, types and the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint types pytest migrate prompts-check prompts-preview bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot run

test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest

# Everything but the slow tests (real processes, crash tests, large journals); CI runs them all.
test-fast: lint types $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

migrate: $(STAMP)
	$(BIN)/python -m bot migrate

prompts-check: $(STAMP)
	$(BIN)/python -m bot prompts check

prompts-preview: $(STAMP)
	$(BIN)/python -m bot prompts preview

bench: $(STAMP)
	$(BIN)/python bench/claim_scaling.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info

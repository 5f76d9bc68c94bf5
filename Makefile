# Quick start: `make run` starts the bot on SQLite, `make test` runs lint, types and the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run webhook test test-fast lint types pytest pytest-postgres migrate prompts-check prompts-preview bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot run

webhook: $(STAMP)
	$(BIN)/python -m bot webhook

test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# The SQLite pass runs in parallel, a worker per core (WORKERS=0: in this one process). The
# PostgreSQL pass holds the tests that start several instances at once, which a second worker
# starves on two cores: it runs in one process unless PG_WORKERS says otherwise (each worker
# then gets a database of its own).
WORKERS ?= auto
PG_WORKERS ?= 0
PYTEST := $(BIN)/python -m pytest --dist worksteal

# First on SQLite (whatever TEST_DATABASE_URL says), then on PostgreSQL.
pytest: $(STAMP)
	env -u TEST_DATABASE_URL $(PYTEST) -n $(WORKERS)
	@$(MAKE) --no-print-directory pytest-postgres

# The tests that reach the database again, on PostgreSQL: TEST_DATABASE_URL, or this default
# if a server answers there. The tests wipe its public schema (with PG_WORKERS, that of a
# database each worker creates beside it: test_gw0, test_gw1, ...). Tests that start their
# own SQLite processes or time benchmarks have run above and are left out here.
PG_DEFAULT := postgresql+psycopg://postgres@127.0.0.1:5432/test
pytest-postgres: $(STAMP)
	@url="$${TEST_DATABASE_URL:-$(PG_DEFAULT)}"; \
	if $(BIN)/python -m tests.postgres "$$url"; then \
		echo "== the suite on PostgreSQL ($$url)"; \
		TEST_DATABASE_URL="$$url" $(PYTEST) -n $(PG_WORKERS) \
			--deselect tests/test_process.py \
			--deselect tests/test_bench.py::test_every_benchmark_runs_in_quick_mode; \
	else \
		echo "PostgreSQL run skipped: no server answers at $$url. To run it, point"; \
		echo "TEST_DATABASE_URL at an empty PostgreSQL database the tests may wipe, e.g."; \
		echo "TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test make test"; \
	fi

# Everything but the slow tests (real processes, crash tests, large journals); CI runs them all.
test-fast: lint types $(STAMP)
	env -u TEST_DATABASE_URL $(PYTEST) -n $(WORKERS) -m "not slow"

migrate: $(STAMP)
	$(BIN)/python -m bot migrate

prompts-check: $(STAMP)
	$(BIN)/python -m bot prompts check

prompts-preview: $(STAMP)
	$(BIN)/python -m bot prompts preview

# Benchmarks against baselines measured in the same run; writes bench/RESULTS.md (minutes).
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info

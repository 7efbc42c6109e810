# The two commands of the README: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint format install clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/notifier dev

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# The inner loop: every test that needs no PostgreSQL, Redis, Celery worker, emulator process,
# browser or server process (tests/conftest.py marks those `services`). Passes with all of them
# stopped; a test that hangs is a bug here, hence the short timeout. `make test` stays the suite.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not services" --timeout 60 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# chatsvc developer tasks. `make` (or `make help`) lists them.

VENV ?= .venv
PYTHON ?= python3
PY = $(VENV)/bin/python
STAMP = $(VENV)/.installed

# Test servers. The database URL is the *admin* URL: the test suite creates and drops its
# own database (chatsvc_test) through it.
CHATSVC_TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
CHATSVC_TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
export CHATSVC_TEST_DATABASE_URL CHATSVC_TEST_REDIS_URL

# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k sse -x"`.
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help install run test lint format typecheck migrate openapi worker bench clean distclean

help: ## List the targets
	@echo "Usage: make <target>   (VENV=$(VENV))"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create the virtualenv and install chatsvc with dev extras

# Re-runs pip whenever pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then \
	  if ! $(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then \
	    echo "error: chatsvc needs Python >= 3.11, but '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)." >&2; \
	    echo "       Install Python 3.11+ or run: make PYTHON=/path/to/python3.11 <target>" >&2; \
	    exit 1; \
	  fi; \
	  echo "$(PYTHON) -m venv $(VENV)"; \
	  $(PYTHON) -m venv $(VENV) || { \
	    echo "error: '$(PYTHON) -m venv' failed (Debian/Ubuntu: apt-get install python3-venv)." >&2; \
	    exit 1; }; \
	fi
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
	  echo "error: $(VENV) uses $$($(PY) --version 2>&1); chatsvc needs Python >= 3.11." >&2; \
	  echo "       Remove it (make distclean) and run make again with a newer python3." >&2; \
	  exit 1; }
	$(PY) -m pip install -e '.[dev]'
	@touch $@

run: $(STAMP) ## Migrate, then serve http://127.0.0.1:8000 (embedded SQLite by default)
	$(VENV)/bin/chatsvc migrate
	$(VENV)/bin/chatsvc serve

test: $(STAMP) ## Start PostgreSQL/Redis if needed, then run pytest
	$(PY) scripts/ensure_services.py
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## ruff format + ruff check --fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP) ## mypy (strict, configured in pyproject.toml)
	$(VENV)/bin/mypy

migrate: $(STAMP) ## Apply database migrations (alembic upgrade head)
	$(VENV)/bin/chatsvc migrate

openapi: $(STAMP) ## Write openapi.json
	$(VENV)/bin/chatsvc openapi --output openapi.json

worker: $(STAMP) ## Run the background worker
	$(VENV)/bin/chatsvc worker

bench: $(STAMP) ## Run every bench/*.py (files starting with _ are helpers, skipped)
	@set -e; for f in bench/*.py; do \
	  [ -e "$$f" ] || { echo "no bench/*.py files"; break; }; \
	  case "$$(basename "$$f")" in _*) continue;; esac; \
	  echo "==> $(PY) $$f"; \
	  $(PY) "$$f"; \
	done

clean: ## Remove caches and build/generated files (keeps .venv and local databases)
	rm -rf .mypy_cache .ruff_cache .pytest_cache build dist test-artifacts openapi.json
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 \
	  | xargs -0 rm -rf

distclean: clean ## clean, and also remove the virtualenv
	rm -rf $(VENV)

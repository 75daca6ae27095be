# leadkit: one command per task, the same locally and in CI.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.DEFAULT_GOAL := help
.PHONY: help run test test-fast mutation lint fmt bench install install-test sysdeps i18n clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "leadkit needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(VENV)/.installed ## create .venv and install leadkit

install-test: $(VENV)/.installed-test ## install leadkit with the test tools

sysdeps: ## check (and as root install) the system fonts and libraries
	@.ci/system-deps run

run: sysdeps install ## migrate, seed demo content, print the admin login, serve on 127.0.0.1:$PORT
	$(BIN)/leadkit db upgrade
	@$(BIN)/leadkit demo
	$(BIN)/leadkit serve

lint: install-test ## ruff (lint + format check) and mypy
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy

fmt: install-test ## format and autofix
	$(BIN)/ruff format app tests bench
	$(BIN)/ruff check --fix app tests bench

test: install-test ## lint, then the whole suite (SQLite, and PostgreSQL + Redis when they answer)
	@.ci/system-deps test
	@$(MAKE) --no-print-directory lint
	$(BIN)/pytest -n 2 --dist loadscope --durations=15

test-fast: install-test ## the quick loop: SQLite only, no browser, no served processes, 2 workers
	LEADKIT_TEST_BACKENDS=sqlite $(BIN)/pytest -q -n 2 -m "not e2e and not served" $(ARGS)

mutation: install-test ## mutation scores of the critical modules, on demand; MODULES="formula gate" for some
	$(BIN)/python tests/mutation.py $(MODULES)

bench: install-test ## performance figures with same-run baselines
	$(BIN)/python bench/run.py
	$(BIN)/python bench/pdf.py
	$(BIN)/python bench/calc.py
	$(BIN)/python bench/grabs.py
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/draws.py

i18n: install-test ## re-extract messages and update the catalogs
	$(BIN)/pybabel extract -F app/locales/babel.cfg -k _ -k gettext -k N_ -k ngettext:1,2 \
	  --no-location --sort-output --omit-header -o app/locales/messages.pot .
	$(BIN)/pybabel update -i app/locales/messages.pot -d app/locales --no-fuzzy-matching

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

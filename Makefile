# Two commands do all set-up on a fresh machine with Python 3.11+ and make:
#   make demo   creates .venv, installs tradebot, runs the offline end-to-end demo
#   make test   installs with dev extras and runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch first, pinned, so pip takes the CPU wheel instead of the newest CUDA build.
TORCH_PIN ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test install install-dev lint clean-home help

help:
	@echo "make demo   - install and run the offline demo (SQLite, local MLflow + Prefect)"
	@echo "make test   - install dev extras and run the tests (PostgreSQL tests need 127.0.0.1:5432)"
	@echo "make lint   - ruff"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_PIN)"
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/tradebot demo

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check tradebot tests bench

clean-home:
	rm -rf .tradebot

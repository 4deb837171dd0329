# Two entry points, each doing all set-up on a fresh Linux machine with Python 3.11:
#   make demo   installs into .venv and runs a short CPU demo
#   make test   installs into .venv and runs the test suite
# TORCH pins the PyTorch release pip installs first (override with TORCH="torch==2.11.0" etc.).

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: demo test lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,plot]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/sparse-rnn demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

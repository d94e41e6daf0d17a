# Two commands matter (see README): `make demo` runs trinet locally, `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo lint typecheck controlplane oldkernel test

$(VENV)/.installed: pyproject.toml
	bash tests/setup-host.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: controlplane
	$(BIN)/python -m e2e demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# Builds kube-apiserver and etcd once (minutes, with progress), then answers from the cache in seconds.
controlplane: setup
	$(BIN)/python -m e2e.controlplane build

# The kernel subset in tests/oldkernel/subset on Debian 12's kernel 6.1 in a VM (minutes; README "Older kernels").
oldkernel: setup
	bash tests/setup-host.sh
	bash tests/oldkernel/run.sh

test: lint typecheck controlplane
	$(BIN)/pytest $(PYTEST_ARGS)
	bash tests/check-no-leaks.sh
	$(MAKE) --no-print-directory oldkernel

# digitpass: the two commands a user needs are `make serve` and `make test`.
# Installs are idempotent: a stamp file records what was installed and is only
# rebuilt when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 0.0.0.0
PORT ?= 8000
MNIST_DIR ?= $(if $(wildcard ../shared/datasets/MNIST/raw),../shared/datasets,data)
export MNIST_DIR

.PHONY: serve test lint format train bench browser readme clean help

help:
	@echo "make serve   install (first use) and serve the models on $(HOST):$(PORT)"
	@echo "make test    install dev tools, lint, and run every test"
	@echo "make train   retrain both models and publish new versions to models/"
	@echo "make bench   run the serving, inference and training benchmarks"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Serving only: no torch.
$(VENV)/.stamp-serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Everything: training, the TorchScript backend, tests and linters.
$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[train,torch,dev]'
	touch $@ $(VENV)/.stamp-serve

serve: $(VENV)/.stamp-serve
	$(BIN)/digitpass-serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

format: $(VENV)/.stamp-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Headless Chromium for the browser tests (tests/test_web_browser.py) comes from
# Debian's packages, driven by Playwright (a dev extra); installed here if missing.
browser:
	@[ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || { \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update && $$sudo apt-get install -y chromium fonts-liberation; }

test: lint browser
	$(BIN)/python -m pytest -q

# After a retrain: rewrite README's example responses with the real ones.
readme: $(VENV)/.stamp-dev
	$(BIN)/python -m tests.readme_examples

train: $(VENV)/.stamp-dev
	$(BIN)/python -m training all

# wrk (the load generator) comes from Debian's packages; installed here if missing.
# BENCH_ARGS passes options through, e.g. make bench BENCH_ARGS="--only serving --duration 5".
bench: $(VENV)/.stamp-dev
	@command -v wrk >/dev/null 2>&1 || { \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update && $$sudo apt-get install -y wrk; }
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache runs

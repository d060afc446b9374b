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

.PHONY: serve serve-ray test lint format train bench browser readme lock clean help

help:
	@echo "make serve    install (first use) and serve the models on $(HOST):$(PORT)"
	@echo "              (POST /admin/reload is off unless DIGITPASS_ADMIN_TOKEN is set:"
	@echo "               DIGITPASS_ADMIN_TOKEN=\$$(openssl rand -hex 32) make serve)"
	@echo "make serve-ray  install the ray extra (first use) and serve on Ray Serve on $(HOST):$(PORT)"
	@echo "               (a local loopback Ray cluster, or RAY_ADDRESS=<address> to deploy to one)"
	@echo "make test     install everything, lint, and run every test"
	@echo "make lint     ruff check, ruff format --check, hadolint"
	@echo "make format   ruff format and ruff check --fix"
	@echo "make train    retrain pass, points and digit and publish new versions to models/"
	@echo "make bench    run the benchmarks and regenerate docs/benchmarks.md"
	@echo "make browser  install Debian's chromium for the browser tests (if missing)"
	@echo "make readme   rewrite README's example responses with the real ones"
	@echo "make lock     re-resolve the dependencies and pin them in constraints.txt"
	@echo "make clean    remove the venv and caches"
	@echo "make help     this list"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Every dependency is pinned by constraints.txt (make lock rewrites it).
# Serving only: no torch.
$(VENV)/.stamp-serve: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

# Everything: training, the TorchScript backend, tests and linters.
$(VENV)/.stamp-dev: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train,torch,dev]'
	touch $@ $(VENV)/.stamp-serve $(VENV)/.stamp-ray

# Serving on Ray Serve: the ray extra.
$(VENV)/.stamp-ray: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[ray]'
	touch $@ $(VENV)/.stamp-serve

# Re-resolve every dependency from pyproject.toml's ranges in a fresh venv and pin
# what it got in constraints.txt.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/pip install --quiet -e '.[train,torch,dev]'
	{ echo "# pip constraints: every dependency of make serve and make test, pinned. make lock rewrites it."; \
	  .venv-lock/bin/pip freeze --exclude-editable | LC_ALL=C sort; } > constraints.txt
	rm -rf .venv-lock

# Listens on $(HOST) (all interfaces): /admin/reload needs DIGITPASS_ADMIN_TOKEN.
serve: $(VENV)/.stamp-serve
	$(BIN)/digitpass-serve --host $(HOST) --port $(PORT)

# A local Ray cluster on loopback (or RAY_ADDRESS's), Serve's proxy on HOST:PORT;
# SIGTERM or Ctrl-C stops the application and the cluster it started, and exits 0.
serve-ray: $(VENV)/.stamp-ray
	RAY_USAGE_STATS_ENABLED=0 $(BIN)/python -m service.rayserve --host $(HOST) --port $(PORT)

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

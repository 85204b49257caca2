# Straits: every target sets up what it needs, so a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(shell find proto -name '*.proto')
GEN_STAMP := gen/.stamp

.PHONY: setup gen test test-fast lint run bench bench-core bench-lsm soak soak-network vectors \
	clean prometheus chromium dashboards

setup: $(STAMP) $(GEN_STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# The repository root and the generated protobuf code go on the venv's path.
	echo "$(CURDIR)" > $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/straits-src.pth
	echo "$(CURDIR)/gen" >> $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/straits-src.pth
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(GEN_STAMP): $(PROTOS) $(STAMP)
	rm -rf gen && mkdir -p gen
	$(PY) -m grpc_tools.protoc -Iproto --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)
	touch $@

gen: $(GEN_STAMP)

test: setup prometheus chromium
	$(PY) -m pytest

test-fast: setup prometheus chromium
	$(PY) -m pytest -m "not slow"

# The Prometheus server and promtool from Debian's packages (tests/metrics runs them);
# nothing to do when both are installed. Needs root, or sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }

# Headless Chromium from Debian's packages: tests/dashboards opens every console page in
# it. Nothing to do when it is installed.
chromium:
	@command -v chromium >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium fonts-dejavu-core; }

# Rewrite the console pages and Grafana dashboards from clients/dashboards (review the diff).
dashboards: setup
	$(PY) -m clients.dashboards

# A local network: 4 validators, the central bank and 3 banks, each its own process,
# each with its own SQLite file under var/local. Created on first use, resumed after.
NETWORK_DIR ?= var/local

run: setup prometheus
	$(VENV)/bin/straits network up --dir $(NETWORK_DIR) --init --demo

lint: setup
	$(VENV)/bin/ruff check ledger services clients tests

# Long seeded consensus simulation (RUNS=N to change the count); a failure prints its seed.
soak: setup
	$(PY) -m tests.consensus.soak --runs $(or $(RUNS),5000)

# The whole benchmark: core, then fresh networks of real processes; under 10 minutes.
bench: setup
	$(PY) -m clients.bench.suite

# 30 minutes of steady load through the bank nodes (MINUTES=N, RATE=N to change), with
# the validators' memory and the finality p99 per minute; fails on drift. Not in make test.
soak-network: setup
	$(PY) -m clients.bench.soak --minutes $(or $(MINUTES),30) --rate $(or $(RATE),400)

bench-core: setup
	$(PY) -m clients.bench.core

# The liquidity-saving mechanism alone (also a section of make bench): speed, quality, a simulated day.
bench-lsm: setup
	$(PY) -m clients.bench.lsm

vectors: setup
	$(PY) -m tests.vectors.regenerate

clean:
	rm -rf gen $(VENV) .pytest_cache

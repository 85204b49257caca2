# Straits: every target sets up what it needs, so a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROTOS := $(shell find proto -name '*.proto')
GEN_STAMP := gen/.stamp

.PHONY: setup gen test test-fast lint run bench bench-core bench-lsm soak soak-network bench-network vectors \
	clean prometheus chromium dashboards deploy-tools container-tools image image-base \
	image-prometheus wheels test-deploy test-partition

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

test: setup prometheus chromium deploy-tools
	$(PY) -m pytest

test-fast: setup prometheus chromium deploy-tools
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
	$(VENV)/bin/ruff check ledger services clients wire tests

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

# The network sections alone (1, 4, 7 validators; P-256 banks; finality at half rate).
bench-network: setup
	$(PY) -m clients.bench.network

bench-core: setup
	$(PY) -m clients.bench.core

# The liquidity-saving mechanism alone (also a section of make bench): speed, quality, a simulated day.
bench-lsm: setup
	$(PY) -m clients.bench.lsm

vectors: setup
	$(PY) -m tests.vectors.regenerate

# The offline checks of deploy/ (compose schema, kubernetes-validate) and the container
# network test: Python tools in the venv, kubectl (Debian's kubernetes-client where no
# kubectl is installed) to render the kustomization.
DEPLOY_STAMP := $(VENV)/.deploy-tools

$(DEPLOY_STAMP): requirements-deploy.txt $(STAMP)
	$(PY) -m pip install -q -r requirements-deploy.txt
	touch $@

deploy-tools: $(DEPLOY_STAMP)
	@command -v kubectl >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			kubernetes-client; }

# --- Containers: the image built here without any container registry -------------------
# A minimal Debian made by mmdebstrap from Debian's packages is imported into podman as
# the base; the wheels come from the host's pip. deploy/image/containers.conf gives
# podman its runtime (runc) and ulimits it can set under this machine's limits.
IMAGE ?= localhost/straits:latest
BASE_IMAGE ?= localhost/straits-base:bookworm
DEBIAN_SUITE ?= bookworm
export CONTAINERS_CONF := $(CURDIR)/deploy/image/containers.conf
WHEELS := deploy/image/wheels

container-tools:
	@command -v podman >/dev/null && command -v runc >/dev/null && \
		command -v mmdebstrap >/dev/null && [ -x /usr/lib/cni/dnsname ] || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			podman runc mmdebstrap containernetworking-plugins \
			golang-github-containernetworking-plugin-dnsname; }

image-base: container-tools
	@podman image exists $(BASE_IMAGE) || { \
		mmdebstrap --quiet --variant=essential --include=python3,python3-venv,libstdc++6 $(DEBIAN_SUITE) - \
			| podman import --quiet - $(BASE_IMAGE); }

$(WHEELS)/.stamp: requirements.txt $(STAMP)
	sed -n '1,/^# Build and test/p' requirements.txt | grep -v -e '^#' -e '^matplotlib' \
		> $(WHEELS)/runtime.txt
	grep '^grpcio-tools==' requirements.txt >> $(WHEELS)/runtime.txt
	$(PY) -m pip wheel -q --only-binary=:all: -w $(WHEELS) -r $(WHEELS)/runtime.txt
	touch $@

wheels: $(WHEELS)/.stamp

# Prometheus for the compose network, from Debian's package the same way.
PROMETHEUS_IMAGE ?= localhost/straits-prometheus:latest

image-prometheus: container-tools
	@podman image exists $(PROMETHEUS_IMAGE) || { \
		mmdebstrap --quiet --variant=essential --include=prometheus \
			--customize-hook='mkdir -p "$$1/prometheus" && chown 65534:65534 "$$1/prometheus"' \
			$(DEBIAN_SUITE) - \
		| podman import --quiet --change 'USER 65534:65534' --change 'WORKDIR /prometheus' \
			--change 'ENTRYPOINT ["/usr/bin/prometheus"]' - $(PROMETHEUS_IMAGE); }

image: setup image-base wheels
	podman build --quiet --format docker --network host --build-arg BASE=$(BASE_IMAGE) \
		--build-arg PIP_NO_INDEX=1 -t $(IMAGE) .

# The compose network run by podman from the image: payments, a validator container
# killed and restarted, state roots compared; removes all it made. Minutes: not in test.
test-deploy: setup deploy-tools image image-prometheus
	STRAITS_CONTAINER_TESTS=1 $(PY) -m pytest -x tests/deploy/test_container_network.py

# Hosts in their own network namespaces joined by a bridge, links cut and healed with
# nftables: the proposer isolated, a 2|2 split, a bank cut off, 5 % loss. Needs root.
test-partition: setup
	@command -v nft >/dev/null && command -v ip >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			nftables iproute2; }
	STRAITS_NETNS_TESTS=1 $(PY) -m pytest -x tests/hosts

clean:
	rm -rf gen $(VENV) .pytest_cache

# The Straits node image: one image for every node kind (validator, bank, central-bank) and
# the CLI. Config and keys are mounted read-only at /etc/straits, the node's SQLite
# data lives on the volume /var/lib/straits. Run as a node:
#   <engine> run -v HOST_DIR:/etc/straits:ro -v DATA:/var/lib/straits IMAGE \
#       validator --config /etc/straits/node.toml       (or bank, or central-bank)
# Any other straits command runs the same way (keys generate, health, send ...).
#
# BASE: any Debian-like image whose python3 (3.11 or later) has venv; the default is the
# official slim Python image. `make image` builds without any registry on a base made
# by mmdebstrap from Debian's packages, and with a wheelhouse built on the host.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# PIP_NO_INDEX=1 installs from deploy/image/wheels alone (`make image`); unset, pip
# takes what the wheelhouse lacks from the package index.
ARG PIP_NO_INDEX=
ENV PIP_NO_INDEX=${PIP_NO_INDEX} PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.txt ./
COPY deploy/image/wheels/ /wheels/
# Runtime requirements only (the file's first section), less matplotlib: a node draws
# no charts. grpcio-tools goes into a separate venv used only to generate the code.
RUN python3 -m venv /opt/straits \
 && sed -n '1,/^# Build and test/p' requirements.txt | grep -v -e '^#' -e '^matplotlib' \
    > /tmp/runtime.txt \
 && /opt/straits/bin/pip install --find-links /wheels -r /tmp/runtime.txt \
 && python3 -m venv /opt/protoc \
 && /opt/protoc/bin/pip install --find-links /wheels "$(grep '^grpcio-tools==' requirements.txt)"
COPY proto/ proto/
RUN mkdir -p /opt/straits/gen \
 && /opt/protoc/bin/python -m grpc_tools.protoc -Iproto --python_out=/opt/straits/gen \
    --grpc_python_out=/opt/straits/gen $(find proto -name '*.proto')
# The sources go on the venv's path as they are, with a `straits` script: no packaging
# step, so the build needs nothing beyond the runtime requirements.
COPY ledger/ /opt/straits/app/ledger/
COPY services/ /opt/straits/app/services/
COPY clients/ /opt/straits/app/clients/
COPY wire/ /opt/straits/app/wire/
RUN site="$(/opt/straits/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && printf '/opt/straits/app\n/opt/straits/gen\n' > "$site/straits.pth" \
 && printf '#!/opt/straits/bin/python\nimport sys\nfrom clients.cli.main import main\nsys.exit(main())\n' \
    > /opt/straits/bin/straits \
 && chmod 755 /opt/straits/bin/straits \
 && /opt/straits/bin/python -m compileall -q /opt/straits/app /opt/straits/gen \
 && /opt/straits/bin/straits --help > /dev/null \
 && /opt/straits/bin/python -c 'import services.validator.node, services.participant.bank.node'

FROM ${BASE}
# A fixed uid/gid, so hosts and Kubernetes (fsGroup) can grant it the mounted keys.
RUN echo 'straits:x:10001:10001:Straits node:/var/lib/straits:/usr/sbin/nologin' \
    >> /etc/passwd \
 && echo 'straits:x:10001:' >> /etc/group \
 && mkdir -p /etc/straits /var/lib/straits \
 && chown 10001:10001 /var/lib/straits
COPY --from=build /opt/straits /opt/straits
ENV PATH=/opt/straits/bin:${PATH} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /var/lib/straits
VOLUME /var/lib/straits
# gRPC (the port in node.toml's listen) and metrics, as `straits bundle` writes them.
EXPOSE 7000 9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["straits", "health", "--config", "/etc/straits/node.toml"]
ENTRYPOINT ["straits"]
CMD ["validator", "--config", "/etc/straits/node.toml"]

# lc2-gateway container image.
#
#   DOCKER_BUILDKIT=1 docker build -t lc2-gateway .
#   docker run -d --name lc2-gateway --env-file /srv/lc2-gateway/env \
#     --read-only --tmpfs /tmp --stop-timeout 30 \
#     -v /srv/lc2-gateway/gateway.yaml:/etc/lc2-gateway/gateway.yaml:ro \
#     -v lc2-gateway-state:/var/lib/lc2-gateway \
#     -p 8080:8080 lc2-gateway
#   docker run --rm ... lc2-gateway check -c /etc/lc2-gateway/gateway.yaml
#
# It runs the same command as systemd/lc2-gateway.service. Put audit.path,
# audit.key_file, limits.store and any SQLite copy under /var/lib/lc2-gateway,
# the volume: the audit trail and its key must outlive the container, and the
# rest of the file system may be read-only. On SIGTERM the gateway finishes
# running calls for up to shutdown_timeout (15 s), so --stop-timeout is longer.
# config/ is in the image under /etc/lc2-gateway/examples.
#
# Build arguments:
#   BASE_IMAGE       a Debian-like image with python3 (3.11 or newer) and its venv
#                    module: the official python:3.11-slim, or a base made from
#                    Debian's own packages (debootstrap, see .ci/image.sh).
#   LOCK             the hash-pinned requirements installed with --require-hashes;
#                    for the odbc or oracle extras, a lock made with
#                    `pip-compile --generate-hashes --extra odbc pyproject.toml`.
#   DEBIAN_PACKAGES  installed in the final image, e.g. "unixodbc tdsodbc" for ODBC.
#
# A CA bundle pip must trust (a TLS-inspecting proxy) is a BuildKit secret, only
# mounted while pip runs and never stored in a layer:
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt .
#
# Admin listener (/live, /ready, /health, /metrics, /status): it binds what
# admin.host says, 127.0.0.1 by default, so nothing outside the container reaches
# it and the HEALTHCHECK (which runs inside) still does. To expose it on purpose,
# with config/example.yaml's `host: ${LC2_ADMIN_HOST:-127.0.0.1}`, run with
# `-e LC2_ADMIN_HOST=0.0.0.0 -p 127.0.0.1:9108:9108`: the host's loopback or a
# management network only, never the LC2 network.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG LOCK=requirements/lock.txt
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# The venv is made here and copied whole into the final stage: same base, same path.
# pip, the build back-end and the wheel stay behind in this stage.
COPY ${LOCK} /src/lock.txt
RUN --mount=type=secret,id=ca \
    python3 -m venv /opt/lc2-gateway/venv \
    && if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && /opt/lc2-gateway/venv/bin/pip install --require-hashes --only-binary=:all: \
        -r /src/lock.txt
COPY pyproject.toml README.md /src/
COPY gateway/ /src/gateway/
COPY adapters/ /src/adapters/
RUN --mount=type=secret,id=ca \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && /opt/lc2-gateway/venv/bin/pip wheel --no-deps -w /wheels /src \
    && /opt/lc2-gateway/venv/bin/pip install --no-deps /wheels/lc2_gateway-*.whl \
    && /opt/lc2-gateway/venv/bin/pip uninstall --yes pip setuptools \
    && /opt/lc2-gateway/venv/bin/lc2-gateway --help >/dev/null


FROM ${BASE_IMAGE}
ARG DEBIAN_PACKAGES=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LC2_GATEWAY_LIVE_URL=http://127.0.0.1:9108/live

RUN groupadd --system --gid 10001 lc2-gateway \
    && useradd --system --uid 10001 --gid lc2-gateway --no-create-home \
        --home-dir /var/lib/lc2-gateway --shell /usr/sbin/nologin lc2-gateway

# hadolint ignore=DL3008
RUN if [ -n "$DEBIAN_PACKAGES" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends $DEBIAN_PACKAGES \
        && rm -rf /var/lib/apt/lists/*; \
    fi

COPY --from=build /opt/lc2-gateway/venv /opt/lc2-gateway/venv
COPY config/ /etc/lc2-gateway/examples/

RUN install -d -m 0700 -o lc2-gateway -g lc2-gateway /var/lib/lc2-gateway
WORKDIR /var/lib/lc2-gateway
VOLUME ["/var/lib/lc2-gateway"]

USER 10001:10001
EXPOSE 8080 9108

# No curl in slim images: the venv's python asks the admin listener's /live.
# Change LC2_GATEWAY_LIVE_URL if admin.port is not 9108.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/lc2-gateway/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['LC2_GATEWAY_LIVE_URL'], timeout=4)"]

ENTRYPOINT ["/opt/lc2-gateway/venv/bin/lc2-gateway"]
CMD ["serve", "-c", "/etc/lc2-gateway/gateway.yaml"]

# lc2-gateway container image.
#
#   docker build -t lc2-gateway .            (BuildKit: the default since Docker 23)
#   docker run -d --name lc2-gateway --env-file /srv/lc2-gateway/env \
#     -v /srv/lc2-gateway/gateway.yaml:/etc/lc2-gateway/gateway.yaml:ro \
#     -v lc2-gateway-state:/var/lib/lc2-gateway \
#     -p 8080:8080 -p 127.0.0.1:9108:9108 lc2-gateway
#   docker run --rm ... lc2-gateway check -c /etc/lc2-gateway/gateway.yaml
#
# It runs the same command as systemd/lc2-gateway.service. Put audit.path and
# audit.key_file under /var/lib/lc2-gateway, a volume: the audit trail and its
# key must outlive the container. config/example.yaml is a starting point and
# is in the image under /etc/lc2-gateway/examples.
#
# Admin listener: the HEALTHCHECK below runs inside the container and reaches
# 127.0.0.1 either way, but anything outside the container (the published
# port, Kubernetes probes, Prometheus) reaches /live, /ready, /health and
# /metrics only if the admin listener binds 0.0.0.0 in the container: set
# `admin: {host: 0.0.0.0}` in gateway.yaml, or write `host: ${LC2_ADMIN_HOST}`
# as config/example.yaml does (this image sets LC2_ADMIN_HOST=0.0.0.0). Publish
# that port to the host's loopback or an internal network only, never to LC2.
#
# Optional backends: the ODBC adapter needs pyodbc, unixODBC and a driver, the
# Oracle adapter python-oracledb (thin mode: nothing else). For example
#
#   docker build -t lc2-gateway:odbc --build-arg EXTRAS=odbc,oracle \
#     --build-arg DEBIAN_PACKAGES="unixodbc tdsodbc" .
#
# EXTRAS are the package's pip extras; DEBIAN_PACKAGES are installed in the
# final image (the driver registers itself in /etc/odbcinst.ini).
#
# For reproducible builds pin the base image by digest: python:3.11-slim@sha256:...

FROM python:3.11-slim AS build
ARG EXTRAS=""
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir ".${EXTRAS:+[$EXTRAS]}" -w /wheels


FROM python:3.11-slim
ARG DEBIAN_PACKAGES=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LC2_ADMIN_HOST=0.0.0.0 \
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

# The wheels are bind-mounted from the build stage, so no layer keeps them.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/lc2-gateway/venv \
    && /opt/lc2-gateway/venv/bin/pip install --no-cache-dir --no-index /wheels/*.whl

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

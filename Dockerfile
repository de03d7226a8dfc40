# syntax=docker/dockerfile:1
# The server-side image: collector, api, simulators and (in the demo profile) gateways, all
# behind the one `dynamo` command. docker-compose.yml builds it; a Raspberry Pi gateway does
# not use it (it installs the package without the server extras).

# Pinned: the venv built in the first stage is copied into the second, so both must share
# one Python. Bump the tag deliberately, never float it.
FROM python:3.11.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

FROM base AS build
# Every dependency ships wheels for this platform: no compiler in the image.
RUN python -m venv /opt/dynamo
WORKDIR /src
COPY . .
RUN /opt/dynamo/bin/pip install ".[server,dashboards]" \
 && /opt/dynamo/bin/dynamo --help >/dev/null

FROM base
LABEL org.opencontainers.image.title="dynamo-monitoring" \
      org.opencontainers.image.description="DYNAMO equipment monitoring: collector, api, simulators, gateways" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
# A fixed, unprivileged uid/gid, so that named volumes and host directories can be owned by it.
# /var/lib/dynamo holds the services' state (collector dead letters, api data);
# /var/lib/dynamo-gateway is a gateway's default spool_dir (telemetry/site.py).
RUN groupadd --system --gid 10001 dynamo \
 && useradd --system --uid 10001 --gid dynamo --home-dir /var/lib/dynamo --no-create-home \
      --shell /usr/sbin/nologin dynamo \
 && install -d -o dynamo -g dynamo -m 0750 /var/lib/dynamo /var/lib/dynamo-gateway
COPY --from=build /opt/dynamo /opt/dynamo
ENV PATH=/opt/dynamo/bin:$PATH
USER 10001:10001
WORKDIR /var/lib/dynamo
ENTRYPOINT ["dynamo"]
CMD ["--help"]

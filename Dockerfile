# flyte-databricks-connector container image.
#
#   docker build -t flyte-databricks-connector:0.1.0 .
#   docker run --rm -p 8000:8000 -p 9090:9090 \
#       -v /path/to/databricks-token:/run/secrets/databricks-token:ro \
#       -e FLYTE_DATABRICKS_INSTANCE=my-workspace.cloud.databricks.com \
#       flyte-databricks-connector:0.1.0 --token-file /run/secrets/databricks-token
#
# The token is a file the image's user (uid 65532) can read and nobody else
# (chown 65532 FILE && chmod 0400 FILE), so it never shows in `docker inspect`
# or in a process's environment.
# Mounted at /etc/secrets/flyte_databricks_access_token it needs no flag
# (flytekit's place). -e FLYTE_DATABRICKS_ACCESS_TOKEN=... works too, but the
# value then sits in the container's configuration.
#
# Two stages: the build stage compiles with the same `make` as CI on Debian 12;
# the runtime stage is bookworm-slim with only the shared libraries the binary
# links plus CA certificates, and runs as an unprivileged numeric user (so
# Kubernetes' runAsNonRoot can verify it). It also answers to `pyflyte` and
# `c0`, so the official Helm charts run it unchanged.
# tests/packaging/check-dockerfile.py holds this file to those rules.
#
# Both base images are pinned by digest (a tag alone can be moved to other
# content). The digests are those of the official images' multi-platform
# indexes as docker-library/repo-info records them (repos/debian/remote/
# bookworm.md and bookworm-slim.md; images built 2026-08-03); they were not
# checked against the registry when written here. Check and bump them with
#   docker buildx imagetools inspect debian:bookworm-slim
# (the "Digest:" line), or override at build time:
#   docker build --build-arg DEBIAN_BOOKWORM_SLIM_SHA256=<64 hex> ...
ARG DEBIAN_BOOKWORM_SHA256=813017f3d62be4b5891a7acca6a01bdcd4b8513daa81b1ab99d3a50385b26931
ARG DEBIAN_BOOKWORM_SLIM_SHA256=abd67ffcfa541b485a3dff59865ab629aa048a6c613e639d36e7456b0b229241

FROM debian:bookworm@sha256:${DEBIAN_BOOKWORM_SHA256} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential pkg-config \
        libgrpc-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler \
        libcurl4-openssl-dev libcjson-dev libsystemd-dev libmicrohttpd-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY proto/ proto/
COPY daemon/ daemon/
RUN make -j"$(nproc)" \
    && strip --strip-unneeded build/flyte-databricks-connector

FROM debian:bookworm-slim@sha256:${DEBIAN_BOOKWORM_SLIM_SHA256}
ARG DEBIAN_FRONTEND=noninteractive
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="flyte-databricks-connector" \
      org.opencontainers.image.description="Flyte connector (agent) service for Databricks, in C" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# Exactly the runtime packages of the libraries the binary links.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libgrpc29 libprotobuf-c1 libcurl4 libcjson1 libsystemd0 libmicrohttpd12 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/flyte-databricks-connector /usr/local/bin/flyte-databricks-connector
# The official flyteconnector Helm charts start the image as `pyflyte serve agent` (Flyte 1.16)
# or `c0` (Flyte 2): both names run the daemon, which takes their flags (README, "Drop-in").
RUN ln -s flyte-databricks-connector /usr/local/bin/pyflyte \
    && ln -s flyte-databricks-connector /usr/local/bin/c0
# Fails the build if a shared library is missing from the list above, or a name does not run.
RUN ["/usr/local/bin/flyte-databricks-connector", "--version"]
RUN ["/usr/local/bin/pyflyte", "serve", "agent", "--version"]
RUN ["/usr/local/bin/c0", "--version"]
# 65532: the conventional "nonroot" uid/gid; no passwd entry is needed.
USER 65532:65532
# gRPC for propeller; Prometheus /metrics.
EXPOSE 8000 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/flyte-databricks-connector"]
CMD ["--listen", "0.0.0.0:8000"]

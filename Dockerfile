# syntax=docker/dockerfile:1
# The ticksync-server container image: built from this repository's own files
# (Cargo.lock, --locked), run as a non-root user with /healthz as its health
# check. docs/SCALING.md ("Kubernetes and Agones") says how to run it as an
# Agones fleet (deploy/agones/).
#
#   docker build -t ticksync-server .
#   docker run --rm -p 7777:7777 ticksync-server
#
# Configuration is by TICKSYNC_* environment variables or flags after the image
# name (`docker run ticksync-server --agones`). tests/deploy.rs checks this file
# against the workspace: the package and binary it builds, the port, the user,
# and that the health check command is one the binary has.

# Stage 1: build. Debian 12 (glibc 2.36), as the runtime stage below.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches make rebuilds incremental (BuildKit); the
# binary is copied out of the cache mount so the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package ticksync-server --bin ticksync-server \
 && install -D target/release/ticksync-server /out/ticksync-server

# Stage 2: run. Distroless: glibc, libgcc and CA roots, no shell, no package
# manager; its `nonroot` user is uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ticksync-server /usr/local/bin/ticksync-server
# Reachable from outside the container; JSON logs for the cluster's collector.
# A negative tick-thread nice value needs CAP_SYS_NICE, which a non-root user
# does not get: keep the default priority instead of a warning at every start.
ENV TICKSYNC_BIND=0.0.0.0:7777 \
    TICKSYNC_LOG_JSON=true \
    TICKSYNC_TICK_NICE=0
EXPOSE 7777/tcp
USER 65532:65532
# `healthcheck` asks GET /healthz on the --bind port: 503 while draining or
# while a tick thread is stalled (there is no curl in this image).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/ticksync-server", "healthcheck"]
# SIGTERM drains: players get their final snapshot and close 1001.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ticksync-server"]

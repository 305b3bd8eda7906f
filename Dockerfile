# syntax=docker/dockerfile:1
#
# One image with every Kloyst binary in /usr/local/bin. No ENTRYPOINT and no CMD:
# each compose service says which binary it runs (`command:`).
#
#   docker build -t kloyst-core:staging .
#
# Dependency caching uses cargo-chef: the planner reduces the workspace to a
# recipe (every member's manifest plus dummy targets, whatever the layout under
# crates/, services/, tools/ and bench/ becomes), the builder compiles only the
# dependencies from that recipe, and that layer is reused until a manifest or
# Cargo.lock changes. Editing Rust sources rebuilds only our own crates.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- chef: the Rust toolchain plus cargo-chef, cached once ----------------------
FROM ${RUST_IMAGE} AS chef
ARG CARGO_CHEF_VERSION=0.1.78
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /app

# ---- planner: workspace manifests -> recipe.json ---------------------------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---- builder: dependencies first (cached layer), then our sources -------------
FROM chef AS builder
# sqlx's query macros must not try to reach a database at build time: they read
# the committed .sqlx/ metadata instead (harmless when no macro query exists).
ENV SQLX_OFFLINE=true
ARG PACKAGES="-p api-gateway -p webhook-worker -p worker-pool -p outbox-relay -p kloyst-admin"
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json ${PACKAGES}
COPY . .
RUN cargo build --release --locked ${PACKAGES} \
 && mkdir -p /out \
 && for bin in api-gateway webhook-worker worker-pool outbox-relay kloyst-admin; do \
      cp "target/release/${bin}" /out/; \
    done

# ---- runtime: small Debian, non-root ---------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime
# ca-certificates: TLS to Meta, Razorpay, SMTP. curl: compose healthchecks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 kloyst \
 && useradd --system --uid 10001 --gid kloyst --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin kloyst
COPY --from=builder /out/ /usr/local/bin/
ENV LOG_FORMAT=json \
    RUST_LOG=info
USER kloyst:kloyst
WORKDIR /tmp
EXPOSE 3000 3002 9101 9102

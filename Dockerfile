# Multi-stage build: compile in the Rust image, run as a non-root user in a slim Debian image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src src
# The load generator is a workspace member: its manifest and sources must be present for the
# workspace to resolve, though only the server package is built.
COPY bench bench
COPY config config
COPY static static
RUN cargo build --release -p switchboard --bin switchboard

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /app switchboard
WORKDIR /app
# Uploads go to data/media (media.dir) by default: the only directory the user may write.
# Mount a volume there to keep them, or use media.backend = "s3".
RUN mkdir -p data/media && chown -R switchboard data
VOLUME /app/data
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY static static
COPY clients/js/src clients/js/src
COPY config config
USER switchboard
# Listen on all interfaces inside the container; mount a config at /app/config/local.toml
# (SWITCHBOARD_CONFIG) or set SWITCHBOARD_* variables. For several nodes on one Redis start from
# config/production.example.toml and pass secrets as SWITCHBOARD_AUTH__TOKEN_SECRET,
# SWITCHBOARD_METRICS__TOKEN. An invalid config makes the container exit with code 2.
ENV SWITCHBOARD_SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["switchboard"]
CMD ["serve"]

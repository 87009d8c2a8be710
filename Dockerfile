# Dockerfile: the one image every Spymaster service of docker-compose.yml runs — the spm-*
# binaries in /usr/local/bin and the bundled sample in /opt/spymaster/testdata, as a non-root
# user. Built in two stages: the release build on the official Rust image, then only the
# binaries on a slim Debian. Nothing is downloaded but crates (Cargo.lock, --locked) and
# Debian packages. tests/compose_config.rs checks that every binary under src/bin is copied.
#
#   docker build -t spymaster:local .     (docker compose builds it as spymaster:local)

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Only what the build reads (see .dockerignore): the manifest, the lock file, the sources and
# the benchmarks (declared in Cargo.toml, so the manifest needs them).
COPY Cargo.toml Cargo.lock ./
COPY src/ src/
COPY benches/ benches/
RUN cargo build --release --locked --bins

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/spymaster \
        --shell /usr/sbin/nologin spymaster
COPY --from=build \
    /src/target/release/spm-replay \
    /src/target/release/spm-ingest \
    /src/target/release/spm-core \
    /src/target/release/spm-lake \
    /src/target/release/spm-gateway \
    /src/target/release/spm-tap \
    /src/target/release/spm-synth \
    /src/target/release/spm-stack \
    /src/target/release/spm-eval \
    /usr/local/bin/
COPY testdata/ /opt/spymaster/testdata/
USER spymaster
WORKDIR /home/spymaster
ENV RUST_LOG=info
# Each service of docker-compose.yml gives its own command; alone, the image lists them.
CMD ["sh", "-c", "ls /usr/local/bin/spm-*"]

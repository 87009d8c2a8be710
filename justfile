# Spymaster tasks. `just` alone lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Install what the tests need (the pinned nats-server, Databento's Python decoder) and run every test.
test *args:
    scripts/test {{args}}

# Formatting and clippy, as CI demands.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Speed and memory benchmarks; each prints its figures and targets.
bench *args:
    scripts/install-test-deps
    cargo bench {{args}}

# The main job on the bundled sample, no services needed.
sample:
    cargo build --release -q
    target/release/spm-replay testdata/*.dbn.zst | target/release/spm-core --stdout

# Regenerate the bundled sample in testdata/ (byte for byte; a test checks it is current).
testdata:
    cargo run --release --bin spm-synth -- --scenario testdata/scenario.toml --out-dir testdata --zstd-level 17

# The whole stack on this machine: a local JetStream server, the sample replayed in real time
# onto it, the engine on the bus, the lake archiving both streams to .spm/lake, the gateway
# serving the dashboard, and the live levels table (Ctrl-C stops everything).
up:
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/install-test-deps
    cargo build --release -q
    store=$(mktemp -d)
    scripts/nats-server -js -sd "$store" -a 127.0.0.1 -p 4222 >/dev/null 2>&1 & nats=$!
    trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$store"' EXIT
    sleep 1
    target/release/spm-core --input nats 2>core.log &
    mkdir -p .spm
    target/release/spm-lake --input nats --root .spm/lake 2>lake.log &
    target/release/spm-gateway --input nats 2>gateway.log &
    echo "dashboard: http://127.0.0.1:${GATEWAY_PORT:-8000}/" >&2
    target/release/spm-replay --speed 1 --output nats testdata/*.dbn.zst 2>replay.log &
    target/release/spm-tap levels.signals --format table

# Regenerate the man pages (man/) and shell completions (completions/) from the commands.
docs:
    cargo build -q
    for b in spm-replay spm-core spm-synth spm-tap spm-lake spm-gateway; do SPM_GEN_DOCS=. target/debug/$b; done

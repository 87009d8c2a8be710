# Spymaster tasks. `just` alone lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Install what the tests need (nats-server, Databento's Python decoder) and run every test.
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

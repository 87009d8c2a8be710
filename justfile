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

# Are the calls any good? Replays FILES (default: the bundled sample) through spm-core and
# scores every call with spm-eval: the report on stdout, the plot and the calls in
# $SPM_HOME/eval/ (.spm/eval/). With the stack up, `spm-eval --input nats --from-start` scores
# what it has published instead (Ctrl-C for the report).
eval *files:
    #!/usr/bin/env bash
    set -euo pipefail
    files=({{ if files == "" { "testdata/*.dbn.zst" } else { files } }})
    bin=$(just _bin)
    out="${SPM_HOME:-.spm}/eval"
    mkdir -p "$out"
    "$bin/spm-replay" --output stdout "${files[@]}" | "$bin/spm-core" --stdout \
        | "$bin/spm-eval" --plot "$out/day.svg" --calls "$out/calls.csv"
    echo "plot: $out/day.svg  calls: $out/calls.csv" >&2

# Regenerate the bundled sample in testdata/ (byte for byte; a test checks it is current).
testdata:
    cargo run --release --bin spm-synth -- --scenario testdata/scenario.toml --out-dir testdata --zstd-level 17

# The whole stack on this machine, supervised (no Docker): nats-server with JetStream, spm-core,
# spm-lake (.spm/lake, or S3 when S3_ENDPOINT is set), spm-gateway (the dashboard) and a replay
# at REPLAY_SPEED (default 1) of FILES, or of $SOURCE, or of the bundled sample. `just up live`
# (or SOURCE=live) reads live data with spm-ingest instead: Databento when DATABENTO_API_KEY is
# set, else Massive (MASSIVE_API_KEY / POLYGON_API_KEY); `just up live massive` picks one.
# Returns once every component is healthy. Ports: NATS_PORT, NATS_MONITOR_PORT, GATEWAY_PORT;
# folder: SPM_HOME.
up *files:
    #!/usr/bin/env bash
    set -euo pipefail
    scripts/nats-server --path >/dev/null 2>&1 || scripts/install-test-deps
    files=({{ if files == "" { env_var_or_default("SOURCE", "testdata/*.dbn.zst") } else { files } }})
    if [ "${files[0]}" = live ]; then
        # Live data: `just up live [databento|massive]`; without a feed, the one whose key is set.
        bin=$(just _bin)
        SPM_NATS_SERVER=$(scripts/nats-server --path) exec "$bin/spm-stack" up --live "${files[1]:-auto}"
    fi
    bin=$(just _bin)
    SPM_NATS_SERVER=$(scripts/nats-server --path) exec "$bin/spm-stack" up "${files[@]}"

# Stop everything `just up` started (by process id); the lake flushes what it holds.
down:
    @"$(just _bin)/spm-stack" down

# Each component of the stack: pid, health and key figures (`spm-stack status` exits 1 when
# one is unhealthy; here that is shown, not an error).
status:
    -@"$(just _bin)/spm-stack" status

# Follow the stack's logs: all of them, or one of nats, core, lake, gateway, replay (or ingest),
# supervisor.
logs name="":
    #!/usr/bin/env bash
    set -euo pipefail
    logs="${SPM_HOME:-.spm}/logs"
    if [ -n "{{ name }}" ]; then exec tail -n 40 -F "$logs/{{ name }}.log"; fi
    exec tail -n 10 -F "$logs"/*.log

# The folder of the spm-* binaries: $SPM_BIN_DIR, else a release build made now.
_bin:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ -n "${SPM_BIN_DIR:-}" ]; then echo "$SPM_BIN_DIR"; exit 0; fi
    cargo build --release -q >&2
    echo "$PWD/target/release"

# Regenerate the man pages (man/) and shell completions (completions/) from the commands.
docs:
    cargo build -q
    for b in spm-replay spm-ingest spm-core spm-synth spm-tap spm-lake spm-gateway spm-stack spm-eval; do SPM_GEN_DOCS=. target/debug/$b; done

# A local three-node JetStream cluster (deploy/nats-cluster.conf; stores and logs under
# .spm/cluster; clients on 4231-4233, CLUSTER_PORT_BASE moves them). Prints the NATS_URL to use.
cluster-up:
    @scripts/nats-cluster up

# Stop the local cluster's nodes (by the process ids recorded at start).
cluster-down:
    @scripts/nats-cluster down

# Each node of the local cluster and the seed-list URL.
cluster-status:
    @scripts/nats-cluster status

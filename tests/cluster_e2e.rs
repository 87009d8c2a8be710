//! The bus on a three-node JetStream cluster of the pinned server (three processes, their own
//! ports and stores, from the committed `deploy/nats-cluster.conf`): a seed-list URL, streams
//! with three replicas, and the node leading `MARKET_DATA` killed with SIGKILL mid-replay. The
//! replay rides through the leader change (exit 0), every event is in the stream exactly once
//! on each node once the killed node is back, and the engine fed through the healed cluster
//! prints exactly what the pipe prints.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::lake::{lines, replay, testdata_files};
use common::nats::{assert_exactly_once_in_order, stored_positions};
use spymaster::bus::testing::NatsCluster;
use spymaster::bus::{LEVEL_SIGNALS_STREAM, MARKET_DATA_STREAM};

/// Polls `done` until it holds; false after `within`.
fn wait_for(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// What each node holds of `stream`, for failure messages.
fn per_node(cluster: &NatsCluster, stream: &str) -> String {
    (0..3)
        .map(|i| {
            format!(
                "{}: {:?}",
                cluster.node_name(i),
                cluster.stream_on(i, stream)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A pseudo-random number of milliseconds in `lo..hi`, different on each run.
fn random_ms(lo: u64, hi: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    lo + (nanos ^ (nanos >> 7)) % (hi - lo)
}

#[test]
fn a_replay_to_replicated_streams_rides_through_the_leader_s_death_exactly_once_on_every_node() {
    let mut cluster = NatsCluster::start();
    let url = cluster.url();
    assert_eq!(url.matches(',').count(), 2, "a seed list of three: {url}");
    let ndjson = replay("ndjson");
    let events = lines(&ndjson) as u64;
    let piped = common::lake::core(&ndjson);
    let snaps = lines(&piped);

    let replay = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "nats", "--stream-replicas", "3"])
        .args(["--nats-url", &url])
        .args(testdata_files())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spm-replay");

    // Kill the MARKET_DATA leader at a random moment while the replay publishes.
    assert!(
        wait_for(Duration::from_secs(60), || {
            (0..3).any(|i| {
                cluster
                    .stream_on(i, MARKET_DATA_STREAM)
                    .is_some_and(|(n, _, _)| n > 1_000)
            })
        }),
        "the replay did not start publishing: {}",
        per_node(&cluster, MARKET_DATA_STREAM)
    );
    std::thread::sleep(Duration::from_millis(random_ms(0, 1_500)));
    let leader = cluster
        .leader_of(MARKET_DATA_STREAM)
        .expect("MARKET_DATA has a leader");
    let at = cluster
        .stream_on(leader, MARKET_DATA_STREAM)
        .map_or(0, |(n, _, _)| n);
    cluster.kill_node(leader);
    eprintln!(
        "killed {} (MARKET_DATA leader) at about {at} of {events} events",
        cluster.node_name(leader)
    );
    assert!(at < events, "the leader died mid-replay, not after it");

    let out = replay.wait_with_output().expect("spm-replay");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the replay exits 0:\n{log}");

    cluster.start_node(leader);
    cluster.wait_ready(Duration::from_secs(30));
    assert!(
        wait_for(Duration::from_secs(90), || {
            (0..3).all(|i| {
                cluster
                    .stream_on(i, MARKET_DATA_STREAM)
                    .map(|(n, last, _)| (n, last))
                    == Some((events, events))
            })
        }),
        "every node holds the {events} events once the killed one is back: {}\nreplay:\n{log}",
        per_node(&cluster, MARKET_DATA_STREAM)
    );
    let stored = stored_positions(&url, MARKET_DATA_STREAM);
    assert_exactly_once_in_order(&stored, events);

    // The engine fed through the healed cluster prints exactly what the pipe prints.
    let core = Killed(
        Command::new(env!("CARGO_BIN_EXE_spm-core"))
            .args(["--input", "nats", "--from-start", "--stream-replicas", "3"])
            .args(["--nats-url", &url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spm-core"),
    );
    let tap = Killed(
        Command::new(env!("CARGO_BIN_EXE_spm-tap"))
            .args([
                "levels.signals",
                "--from-start",
                "--count",
                &snaps.to_string(),
            ])
            .args(["--nats-url", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spm-tap"),
    );
    let got = tap.output_within(Duration::from_secs(180));
    drop(core);
    assert!(
        got == piped,
        "the engine through the cluster differs from the pipe ({} vs {} bytes, {} vs {snaps} snaps)",
        got.len(),
        piped.len(),
        lines(&got)
    );
    assert_eq!(
        cluster
            .stream_on(0, LEVEL_SIGNALS_STREAM)
            .map(|(n, _, _)| n as usize),
        Some(snaps)
    );
}

/// A child process killed when dropped (a failing test leaves nothing running).
struct Killed(std::process::Child);

impl Killed {
    /// Everything the child prints on stdout until it exits, or a failure after `within`.
    fn output_within(mut self, within: Duration) -> Vec<u8> {
        use std::io::Read;
        let mut stdout = self.0.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            out
        });
        let deadline = Instant::now() + within;
        while self.0.try_wait().expect("wait").is_none() {
            assert!(
                Instant::now() < deadline,
                "no end of output within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        reader.join().expect("reader")
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

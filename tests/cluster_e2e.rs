//! The bus on a three-node JetStream cluster of the pinned server (three processes, their own
//! ports and stores, from the committed `deploy/nats-cluster.conf`): a seed-list URL, streams
//! with three replicas, and the node leading both `MARKET_DATA` and `LEVEL_SIGNALS` killed with
//! SIGKILL while a replay publishes market data and the engine, fed through the cluster,
//! publishes its signals. The replay rides through the leader change (exit 0) and every event is
//! in the stream exactly once on each node once the killed node is back; the engine and a tap on
//! its signals carry on, and the signals stream holds exactly what the engine prints through a
//! pipe, in order, on every node.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::lake::{lines, replay, testdata_files};
use common::nats::{assert_exactly_once_in_order, stored_messages, stored_positions};
use common::process::{Killed, wait_for};
use spymaster::bus::testing::NatsCluster;
use spymaster::bus::{Bus, BusConfig, LEVEL_SIGNALS_STREAM, MARKET_DATA_STREAM};

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

/// The most messages any node holds of `stream`.
fn most_on_a_node(cluster: &NatsCluster, stream: &str) -> u64 {
    (0..3)
        .filter_map(|i| cluster.stream_on(i, stream).map(|(n, _, _)| n))
        .max()
        .unwrap_or(0)
}

/// A pseudo-random number of milliseconds in `lo..hi`, different on each run.
fn random_ms(lo: u64, hi: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    lo + (nanos ^ (nanos >> 7)) % (hi - lo)
}

/// Makes node `to` the leader of `stream` (a leader stepdown naming the preferred node).
fn move_leader(cluster: &NatsCluster, bus: &Bus, stream: &str, to: usize) {
    let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}");
    let body = serde_json::json!({ "placement": { "preferred": cluster.node_name(to) } });
    for _ in 0..10 {
        if cluster.leader_of(stream) == Some(to) {
            return;
        }
        let client = bus.client().clone();
        let subject = subject.clone();
        let payload = body.to_string();
        let _ = bus.runtime().block_on(async move {
            tokio::time::timeout(
                Duration::from_secs(5),
                client.request(subject, payload.into()),
            )
            .await
        });
        wait_for(Duration::from_secs(5), || {
            cluster.leader_of(stream) == Some(to)
        });
    }
    assert_eq!(
        cluster.leader_of(stream),
        Some(to),
        "{stream} is led by {}",
        cluster.node_name(to)
    );
}

/// How many connections named `name` node `i` has.
fn connections_named(cluster: &NatsCluster, i: usize, name: &str) -> usize {
    let url = format!("{}/connz?limit=1000", cluster.monitor_url(i));
    spymaster::stack::probe::get_json(&url, Duration::from_secs(2))
        .ok()
        .and_then(|(_, v)| {
            v["connections"]
                .as_array()
                .map(|c| c.iter().filter(|c| c["name"] == name).count())
        })
        .unwrap_or(0)
}

#[test]
fn a_replay_and_the_engine_ride_through_the_death_of_the_streams_leader_exactly_once_and_in_order()
{
    let mut cluster = NatsCluster::start();
    let url = cluster.url();
    assert_eq!(url.matches(',').count(), 2, "a seed list of three: {url}");
    let ndjson = replay("ndjson");
    let events = lines(&ndjson) as u64;
    let piped = common::lake::core(&ndjson);
    let snaps = lines(&piped);

    // The streams, three replicas each, both led by the node killed below.
    let mut cfg = BusConfig::new(url.clone());
    cfg.streams.replicas = 3;
    let bus = Bus::connect(&cfg).expect("connect");
    bus.ensure_streams().expect("streams");
    assert!(
        wait_for(Duration::from_secs(30), || {
            cluster.leader_of(MARKET_DATA_STREAM).is_some()
                && cluster.leader_of(LEVEL_SIGNALS_STREAM).is_some()
        }),
        "the streams have leaders: {}",
        per_node(&cluster, MARKET_DATA_STREAM)
    );
    let leader = cluster.leader_of(MARKET_DATA_STREAM).expect("a leader");
    move_leader(&cluster, &bus, LEVEL_SIGNALS_STREAM, leader);
    // Right after a leader change the server's stream list can miss the stream (and paging
    // through it then lists another one twice); the commands start at once all the same: the
    // bus lists again until every stream is there, and takes each once.
    drop(bus);

    // The engine reads market data from the cluster and publishes its signals there; a tap
    // prints them as they come. Both run through the leader's death.
    let core_log = scratch_file("core.log");
    let core = Killed(
        Command::new(env!("CARGO_BIN_EXE_spm-core"))
            .args(["--input", "nats", "--from-start", "--stream-replicas", "3"])
            .args(["--nats-url", &url])
            .env(
                "RUST_LOG",
                "info,spymaster::bus::sink=debug,async_nats=warn",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&core_log).expect("core log"))
            .spawn()
            .expect("spm-core"),
    );
    // A tap printing every snap of the signals stream from its start.
    let signals_tap = || {
        Killed(
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
        )
        .read_in_background()
    };
    let tap = signals_tap();

    let replay_log = scratch_file("replay.log");
    let mut replay = Killed(
        Command::new(env!("CARGO_BIN_EXE_spm-replay"))
            .args(["--speed", "0", "--output", "nats", "--stream-replicas", "3"])
            .args(["--nats-url", &url])
            .args(testdata_files())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&replay_log).expect("replay log"))
            .spawn()
            .expect("spm-replay"),
    );
    eprintln!("logs: {} {}", core_log.display(), replay_log.display());
    let logs = || {
        format!(
            "\nspm-replay:\n{}\nspm-core:\n{}",
            std::fs::read_to_string(&replay_log).unwrap_or_default(),
            std::fs::read_to_string(&core_log).unwrap_or_default()
        )
    };

    // Kill the leader at a random moment while both publish.
    assert!(
        wait_for(Duration::from_secs(120), || {
            most_on_a_node(&cluster, MARKET_DATA_STREAM) > 1_000
                && most_on_a_node(&cluster, LEVEL_SIGNALS_STREAM) > 50
        }),
        "the replay and the engine did not start publishing: {}; {}{}",
        per_node(&cluster, MARKET_DATA_STREAM),
        per_node(&cluster, LEVEL_SIGNALS_STREAM),
        logs()
    );
    std::thread::sleep(Duration::from_millis(random_ms(0, 1_500)));
    let leads_signals = cluster.leader_of(LEVEL_SIGNALS_STREAM) == Some(leader);
    assert_eq!(cluster.leader_of(MARKET_DATA_STREAM), Some(leader));
    let at = cluster
        .stream_on(leader, MARKET_DATA_STREAM)
        .map_or(0, |(n, _, _)| n);
    let signals_at = cluster
        .stream_on(leader, LEVEL_SIGNALS_STREAM)
        .map_or(0, |(n, _, _)| n);
    let core_links = connections_named(&cluster, leader, "spm-core");
    let replay_links = connections_named(&cluster, leader, "spm-replay");
    cluster.kill_node(leader);
    eprintln!(
        "killed {} (leader of MARKET_DATA{}) at about {at} of {events} events and {signals_at} of {snaps} snaps; on it: {core_links} of spm-core's connections, {replay_links} of spm-replay's",
        cluster.node_name(leader),
        if leads_signals {
            " and LEVEL_SIGNALS"
        } else {
            ""
        }
    );
    assert!(at < events, "the leader died mid-replay, not after it");
    assert!(
        (signals_at as usize) < snaps,
        "the leader died while the engine published, not after"
    );

    let status = replay.wait_within(Duration::from_secs(300));
    assert!(status.success(), "the replay exits 0:{}", logs());

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
        "every node holds the {events} events once the killed one is back: {}{}",
        per_node(&cluster, MARKET_DATA_STREAM),
        logs()
    );
    let stored = stored_positions(&url, MARKET_DATA_STREAM);
    assert_exactly_once_in_order(&stored, events);

    // The engine carried on: every snap once on every node, nothing after the last.
    let snaps_u64 = snaps as u64;
    let mut core = core;
    wait_for(Duration::from_secs(240), || {
        core.0.try_wait().expect("spm-core").is_some()
            || (0..3).all(|i| {
                cluster
                    .stream_on(i, LEVEL_SIGNALS_STREAM)
                    .is_some_and(|(n, last, _)| n >= snaps_u64 && last >= snaps_u64)
            })
    });
    let core_said = std::fs::read_to_string(&core_log).unwrap_or_default();
    assert!(
        core.0.try_wait().expect("spm-core").is_none(),
        "spm-core still runs after the leader change: {}\nspm-core:\n{core_said}",
        per_node(&cluster, LEVEL_SIGNALS_STREAM)
    );
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..3 {
        assert_eq!(
            cluster
                .stream_on(i, LEVEL_SIGNALS_STREAM)
                .map(|(n, last, _)| (n, last)),
            Some((snaps_u64, snaps_u64)),
            "{} holds each snap once\nspm-core:\n{core_said}",
            cluster.node_name(i)
        );
    }
    drop(core);
    assert!(
        !core_said.contains("publishing paused") || core_said.contains("publishing resumed"),
        "spm-core says when its publishing resumed:\n{core_said}"
    );
    let replay_said = std::fs::read_to_string(&replay_log).unwrap_or_default();
    for (who, said) in [("spm-replay", &replay_said), ("spm-core", &core_said)] {
        for line in said
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            eprintln!("{who}: {line}");
        }
    }

    // The tap started before the leader's death printed exactly what the pipe prints, and so
    // does one reading the healed cluster's signals stream from its start.
    let live = tap.output_within(Duration::from_secs(60));
    if live != piped {
        eprintln!("{}", signals_around_first_difference(&url, &piped));
    }
    assert_same(&live, &piped, "the tap through the leader change");
    let after = signals_tap().output_within(Duration::from_secs(120));
    assert_same(&after, &piped, "the signals stream");
    let _ = std::fs::remove_file(&core_log);
    let _ = std::fs::remove_file(&replay_log);
}

/// Asserts `got` is byte for byte the engine's output through a pipe, naming the first
/// differing snap.
fn assert_same(got: &[u8], piped: &[u8], what: &str) {
    if got == piped {
        return;
    }
    let a: Vec<&[u8]> = got.split(|&b| b == b'\n').collect();
    let b: Vec<&[u8]> = piped.split(|&b| b == b'\n').collect();
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    panic!(
        "{what} differs from the pipe ({} vs {} bytes, {} vs {} snaps; first difference at snap {first:?})",
        got.len(),
        piped.len(),
        lines(got),
        lines(piped)
    );
}

/// The signals stream around its first difference from the pipe's output: sequence, message
/// id and the snap's position in the pipe's output, for a failure message.
fn signals_around_first_difference(url: &str, piped: &[u8]) -> String {
    let stored: Vec<(u64, String, Vec<u8>)> = stored_messages(url, LEVEL_SIGNALS_STREAM)
        .into_iter()
        .map(|m| (m.seq, m.header("Nats-Msg-Id"), m.payload))
        .collect();
    let lines: Vec<&[u8]> = piped.split(|&b| b == b'\n').collect();
    let first = stored
        .iter()
        .zip(&lines)
        .position(|((_, _, p), l)| p.as_slice() != *l)
        .unwrap_or(stored.len());
    let mut report = format!(
        "LEVEL_SIGNALS holds {} messages; first difference at index {first}:\n",
        stored.len()
    );
    for (i, (seq, id, payload)) in stored.iter().enumerate() {
        if i + 3 < first || i > first + 6 {
            continue;
        }
        let at = lines.iter().position(|l| *l == payload.as_slice());
        report.push_str(&format!(
            "  index {i}: seq {seq} id {id} is snap {at:?} of the pipe\n"
        ));
    }
    report
}

/// A file in the temporary directory, unique to this run.
fn scratch_file(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("spm-cluster-{}-{nanos}-{name}", std::process::id()))
}

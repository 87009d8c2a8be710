//! The lake on a three-node JetStream cluster of the pinned server: two `spm-lake` workers share
//! one durable consumer of the replicated `MARKET_DATA` stream while a replay publishes; the
//! stream's leader is SIGKILLed, and so is one of the workers. The other carries on through the
//! leader change, takes over the dead worker's unacknowledged messages, and the lake holds every
//! stream sequence exactly once (by DuckDB's count and distinct `lake_seq`).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::lake::{lines, replay, testdata_files};
use common::lake_crash::{LakeRoot, lake_on_nats};
use common::process::{Killed, wait_for};
use spymaster::bus::testing::NatsCluster;
use spymaster::bus::{Bus, BusConfig, MARKET_DATA_STREAM, members_subject};

/// The workers whose objects the lake holds (`part-….{worker}.parquet`).
fn workers_seen(root: &LakeRoot) -> std::collections::BTreeSet<String> {
    root.objects()
        .iter()
        .filter_map(|o| {
            let stem = o.strip_suffix(".parquet")?;
            let (_, worker) = stem.rsplit_once('.')?;
            (!worker.contains('/') && !worker.contains('-')).then(|| worker.to_string())
        })
        .collect()
}

/// How many readers of the bronze consumer answer on its members subject (each answers once).
fn bronze_readers(url: &str) -> usize {
    use futures::StreamExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // One node is enough: the answers travel the cluster's routes.
        let first = url.split(',').next().unwrap_or(url);
        let Ok(client) = async_nats::connect(first).await else {
            return 0;
        };
        let inbox = client.new_inbox();
        let Ok(mut replies) = client.subscribe(inbox.clone()).await else {
            return 0;
        };
        let subject = members_subject(MARKET_DATA_STREAM, "spm-lake-bronze");
        if client
            .publish_with_reply(subject, inbox, Default::default())
            .await
            .is_err()
        {
            return 0;
        }
        let mut n = 0;
        while let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(500), replies.next()).await
        {
            n += 1;
        }
        n
    })
}

#[test]
fn two_lakes_on_one_consumer_ride_through_the_leaders_death_and_one_worker_killed_exactly_once() {
    let mut cluster = NatsCluster::start();
    let url = cluster.url();
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::Local(dir.path().join("lake"));
    let events = lines(&replay("ndjson")) as u64;

    let mut cfg = BusConfig::new(url.clone());
    cfg.streams.replicas = 3;
    Bus::connect(&cfg)
        .expect("connect")
        .ensure_streams()
        .expect("streams");
    assert!(
        wait_for(Duration::from_secs(30), || cluster
            .leader_of(MARKET_DATA_STREAM)
            .is_some()),
        "MARKET_DATA has a leader"
    );

    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let worker = |name: &str, extra: &[&str]| {
        let mut cmd = lake_on_nats(
            &root,
            &url,
            &[&["--flush-rows", "20000", "--flush-secs", "1"], extra].concat(),
        );
        cmd.env("NATS_STREAM_REPLICAS", "3")
            .stderr(std::fs::File::create(log(name)).expect("log"));
        Killed(cmd.spawn().expect("spm-lake"))
    };
    let mut doomed = worker("a", &[]);
    let mut survivor = worker("b", &["--idle-exit", "30"]);
    // Both must have joined the consumer before the replay, or one may take every message
    // (a loaded CI machine once started one worker after the 393 088 events were all out).
    assert!(
        wait_for(Duration::from_secs(60), || bronze_readers(&url) >= 2),
        "both workers join the bronze consumer: {} answer",
        bronze_readers(&url)
    );

    let replay = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "nats", "--stream-replicas", "3"])
        .args(["--nats-url", &url])
        .args(testdata_files())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spm-replay");

    // Both workers store, then the stream's leader and one worker die.
    assert!(
        wait_for(Duration::from_secs(120), || workers_seen(&root).len() >= 2),
        "both workers store: {:?}",
        workers_seen(&root)
    );
    let leader = cluster.leader_of(MARKET_DATA_STREAM).expect("a leader");
    let at = cluster
        .stream_on(leader, MARKET_DATA_STREAM)
        .map_or(0, |(n, _, _)| n);
    cluster.kill_node(leader);
    std::thread::sleep(Duration::from_millis(300));
    doomed.0.kill().expect("SIGKILL a worker");
    let _ = doomed.0.wait();
    eprintln!(
        "killed {} (leader of MARKET_DATA) at about {at} of {events} events, and worker a",
        cluster.node_name(leader)
    );

    let out = replay.wait_with_output().expect("spm-replay");
    assert!(
        out.status.success(),
        "the replay exits 0:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cluster.start_node(leader);
    cluster.wait_ready(Duration::from_secs(30));

    // The survivor takes the dead worker's messages after the acknowledgement wait (12 s),
    // stores what is not stored yet, and stops once idle.
    assert!(
        wait_for(Duration::from_secs(240), || survivor
            .0
            .try_wait()
            .expect("wait")
            .is_some()),
        "the surviving worker stops once idle"
    );
    let said = std::fs::read_to_string(log("b")).unwrap_or_default();
    assert!(
        survivor.0.wait().expect("wait").success(),
        "the surviving worker exits 0:\n{said}"
    );
    assert_eq!(
        root.seq_stats("bronze"),
        format!("{events} {events} 1 {events}"),
        "every stream sequence once\nworker b:\n{said}"
    );
}

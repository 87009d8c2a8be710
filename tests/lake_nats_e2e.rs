//! End-to-end tests of `spm-lake --input nats` against a real `nats-server`: the bundled sample
//! published, the engine on the bus, the lake on durable consumers, read back by DuckDB,
//! pyarrow and polars; the lake killed with SIGKILL again and again while a replay publishes
//! over a million events; and two lakes sharing one consumer, one of them killed.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::lake::{cat, check_with_readers, core, lines, replay};
use common::lake_crash::{self, LakeRoot, nats_lake_killed_during_replay, publish, stream_count};
use common::nats::NatsServer;
use spymaster::bus::{Bus, BusConfig, LEVEL_SIGNALS_STREAM, MARKET_DATA_STREAM};

fn lake_on_nats(url: &str, root: &Path, extra: &[&str]) -> Command {
    lake_crash::lake_on_nats(&LakeRoot::Local(root.to_path_buf()), url, extra)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[test]
fn the_sample_through_the_bus_engine_and_lake_is_read_exactly_by_duckdb_pyarrow_and_polars() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let ndjson = replay("ndjson");
    let snaps = lines(&core(&ndjson)) as u64;

    publish(&url, false);
    assert_eq!(
        stream_count(&url, MARKET_DATA_STREAM),
        lines(&ndjson) as u64
    );
    let mut engine = Command::new(env!("CARGO_BIN_EXE_spm-core"))
        .args(["--input", "nats", "--from-start", "--nats-url", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spm-core");
    wait_for("the engine's snaps", Duration::from_secs(120), || {
        stream_count(&url, LEVEL_SIGNALS_STREAM) >= snaps
    });
    terminate(&mut engine);
    assert_eq!(stream_count(&url, LEVEL_SIGNALS_STREAM), snaps);

    let tap = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
        .args(["levels.signals", "--from-start", "--nats-url", &url])
        .args(["-n", &snaps.to_string()])
        .stderr(Stdio::null())
        .output()
        .expect("spm-tap");
    assert!(tap.status.success());
    assert_eq!(lines(&tap.stdout) as u64, snaps);

    let out = lake_on_nats(&url, &root, &["--idle-exit", "2"])
        .stderr(Stdio::piped())
        .output()
        .expect("spm-lake");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("from MARKET_DATA") && stderr.contains("from LEVEL_SIGNALS"));

    let report = check_with_readers(&root, dir.path(), &ndjson, &tap.stdout);
    assert_eq!(report.matches(", equal").count(), 15, "{report}");
    assert!(
        cat(&root, &[]) == ndjson,
        "cat differs from the events published"
    );
    assert!(cat(&root, &["--table", "levels/signals"]) == tap.stdout);

    // Everything was acknowledged: a second run finds nothing new.
    let again = lake_on_nats(&url, &root, &["--idle-exit", "1"])
        .stderr(Stdio::piped())
        .output()
        .expect("spm-lake");
    let again = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.contains("spm-lake: 0 events from MARKET_DATA"),
        "{again}"
    );
}

#[test]
fn a_lake_killed_again_and_again_while_a_replay_publishes_stores_each_event_exactly_once() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::Local(dir.path().join("lake"));
    nats_lake_killed_during_replay(&root, &server.url(), &replay("ndjson"));
}

#[test]
fn two_lakes_on_one_consumer_share_the_work_and_one_killed_mid_session_loses_and_doubles_nothing() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::Local(dir.path().join("lake"));
    let ndjson = replay("ndjson");
    let total = 2 * lines(&ndjson) as u64;
    let worker = |name: &str, extra: &[&str]| {
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
        lake_crash::lake_on_nats(
            &root,
            &url,
            &[&["--flush-rows", "20000", "--flush-secs", "1"], extra].concat(),
        )
        .stderr(log)
        .spawn()
        .expect("spm-lake")
    };
    // Both workers read the one consumer while the sample is published twice.
    let mut doomed = worker("a", &[]);
    let mut survivor = worker("b", &["--idle-exit", "20"]);
    let publisher = {
        let url = url.clone();
        std::thread::spawn(move || {
            publish(&url, false);
            publish(&url, true);
        })
    };
    wait_for("both workers storing", Duration::from_secs(60), || {
        let objects = root.objects();
        let workers: std::collections::BTreeSet<&str> = objects
            .iter()
            .filter_map(|o| o.strip_suffix(".parquet")?.rsplit_once('.').map(|(_, w)| w))
            .collect();
        workers.len() >= 2
    });
    let mut rand = common::lake::kill_schedule();
    std::thread::sleep(Duration::from_millis(rand() % 1500));
    assert!(
        doomed.try_wait().unwrap().is_none(),
        "worker a exited early"
    );
    doomed.kill().unwrap(); // SIGKILL, mid-session
    doomed.wait().unwrap();
    publisher.join().unwrap();
    assert_eq!(stream_count(&url, MARKET_DATA_STREAM), total);

    // The survivor gets the dead worker's unacknowledged messages after the acknowledgement
    // wait (2 × 1 s + 10 s), stores what is not stored yet, and goes idle.
    let status = survivor.wait().unwrap();
    let log = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert!(status.success(), "{}", log("b.log"));
    // The one that started second says it joined the other.
    let logs = log("a.log") + &log("b.log");
    assert!(logs.contains("sharing the work"), "{logs}");

    // Every stream sequence once, by a reader we did not write.
    assert_eq!(
        root.seq_stats("bronze"),
        format!("{total} {total} 1 {total}")
    );
    // And the events are the published ones, twice each.
    let back = root.cat(&[]);
    let mut got: std::collections::BTreeMap<&[u8], u64> = Default::default();
    for l in back.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        *got.entry(l).or_default() += 1;
    }
    let mut want: std::collections::BTreeMap<&[u8], u64> = Default::default();
    for l in ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        *want.entry(l).or_default() += 2;
    }
    assert!(got == want, "the stored events differ from those published");
}

#[test]
fn a_stream_deleted_and_made_anew_is_a_new_input_whose_events_are_stored_not_skipped() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let archive = || {
        let out = lake_on_nats(&url, &root, &["--idle-exit", "2"])
            .stderr(Stdio::piped())
            .output()
            .expect("spm-lake");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    publish(&url, false);
    let n = stream_count(&url, MARKET_DATA_STREAM);
    assert!(n > 0);
    archive();
    // The bus starts over (a fresh store, or a stream deleted by an operator): its sequences
    // restart at 1, and the same positions now hold newly published events.
    let bus = Bus::connect(&BusConfig::new(&url)).expect("connect");
    bus.runtime().block_on(async {
        let js = async_nats::jetstream::new(bus.client().clone());
        js.delete_stream(MARKET_DATA_STREAM)
            .await
            .expect("delete MARKET_DATA");
    });
    publish(&url, false);
    assert_eq!(stream_count(&url, MARKET_DATA_STREAM), n);
    archive();
    let stored = cat(&root, &[]);
    assert_eq!(
        lines(&stored) as u64,
        2 * n,
        "both streams' events are in bronze, none taken for the other's"
    );
}

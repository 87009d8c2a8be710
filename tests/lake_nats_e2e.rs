//! End-to-end tests of `spm-lake --input nats` against a real `nats-server`: the bundled sample
//! published, the engine on the bus, the lake on durable consumers, read back by DuckDB,
//! pyarrow and polars; and the lake killed with SIGKILL again and again while a replay
//! publishes over a million events.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::lake::{
    cat, check_with_readers, compact_all, core, kill_schedule, lake, lines, replay, testdata_files,
};
use common::nats::NatsServer;
use spymaster::bus::{Bus, BusConfig, LEVEL_SIGNALS_STREAM, MARKET_DATA_STREAM};

fn count(url: &str, stream: &str) -> u64 {
    Bus::connect(&BusConfig::new(url))
        .expect("connect")
        .stream_message_count(stream)
        .unwrap_or(0)
}

fn publish(url: &str, republish: bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spm-replay"));
    cmd.args(["--speed", "0", "--output", "nats", "--nats-url", url]);
    if republish {
        cmd.arg("--republish");
    }
    let out = cmd
        .args(testdata_files())
        .stderr(Stdio::piped())
        .output()
        .expect("spm-replay");
    assert!(
        out.status.success(),
        "spm-replay: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lake_on_nats(url: &str, root: &Path, extra: &[&str]) -> Command {
    let mut cmd = lake();
    cmd.args(["--input", "nats", "--nats-url", url])
        .arg("--root")
        .arg(root)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
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
    assert_eq!(count(&url, MARKET_DATA_STREAM), lines(&ndjson) as u64);
    let mut engine = Command::new(env!("CARGO_BIN_EXE_spm-core"))
        .args(["--input", "nats", "--from-start", "--nats-url", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spm-core");
    wait_for("the engine's snaps", Duration::from_secs(120), || {
        count(&url, LEVEL_SIGNALS_STREAM) >= snaps
    });
    terminate(&mut engine);
    assert_eq!(count(&url, LEVEL_SIGNALS_STREAM), snaps);

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
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let ndjson = replay("ndjson");
    const COPIES: u64 = 3;
    let total = COPIES * lines(&ndjson) as u64;
    assert!(total >= 1_000_000);

    let publisher = {
        let url = url.clone();
        std::thread::spawn(move || {
            publish(&url, false);
            for _ in 1..COPIES {
                publish(&url, true);
            }
        })
    };
    let mut rand = kill_schedule();
    let mut kills = 0;
    let mut stored_before_last_kill = 0;
    while kills < 5 || !publisher.is_finished() {
        let mut child = lake_on_nats(&url, &root, &["--flush-rows", "25000", "--flush-secs", "1"])
            .stderr(Stdio::null())
            .spawn()
            .expect("spm-lake");
        std::thread::sleep(Duration::from_millis(400 + rand() % 1600));
        assert!(
            child.try_wait().unwrap().is_none(),
            "spm-lake exited on its own"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        stored_before_last_kill = walk_count(&root);
    }
    publisher.join().unwrap();
    assert!(kills >= 5);
    assert!(
        stored_before_last_kill > 0,
        "the killed runs stored nothing"
    );
    assert_eq!(count(&url, MARKET_DATA_STREAM), total);

    let out = lake_on_nats(&url, &root, &["--flush-rows", "25000", "--idle-exit", "3"])
        .stderr(Stdio::piped())
        .output()
        .expect("spm-lake");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // By identity, with a reader we did not write: every stream sequence 1..=total once.
    let by_identity = |layer: &str| {
        let script = format!(
            "import duckdb\nprint(*duckdb.sql(\"select count(*), count(distinct lake_seq), min(lake_seq), max(lake_seq) from read_parquet('{}/{layer}/**/*.parquet', union_by_name=true)\").fetchall()[0])",
            root.display()
        );
        let q = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3");
        assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
        assert_eq!(
            String::from_utf8_lossy(&q.stdout).trim(),
            format!("{total} {total} 1 {total}"),
            "{layer}: every stream sequence once"
        );
    };
    by_identity("bronze");
    // By content: the stored events are the published ones, COPIES times each.
    let mut want: BTreeMap<&[u8], u64> = BTreeMap::new();
    for l in ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        *want.entry(l).or_default() += COPIES;
    }
    let back = cat(&root, &[]);
    let mut got: BTreeMap<&[u8], u64> = BTreeMap::new();
    for l in back.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        *got.entry(l).or_default() += 1;
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the stored events differ from those published");

    // Silver, compacted from it: the same events, each once (the copies are distinct stream
    // messages of one input, so none is a duplicate), one object per partition-hour.
    let compacted = compact_all(&root);
    assert!(
        compacted.iter().all(|p| p["duplicates"] == 0),
        "{compacted:?}"
    );
    by_identity("silver");
    let silver = cat(&root, &["--layer", "silver"]);
    assert!(silver == back, "silver reads back differently from bronze");
}

/// Parquet objects under `dir`.
fn walk_count(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk_count(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "parquet"))
            }
        })
        .sum()
}

#[test]
fn a_second_lake_on_the_same_consumer_is_refused_while_the_first_runs() {
    let server = NatsServer::start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let mut first = lake_on_nats(&url, &dir.path().join("a"), &[])
        .stderr(Stdio::null())
        .spawn()
        .expect("spm-lake");
    // The first holds both consumers once it has created them.
    wait_for("the first lake's consumer", Duration::from_secs(20), || {
        let bus = Bus::connect(&BusConfig::new(&url)).expect("connect");
        bus.runtime().block_on(async {
            let js = async_nats::jetstream::new(bus.client().clone());
            match js.get_stream(MARKET_DATA_STREAM).await {
                Ok(s) => s
                    .consumer_info("spm-lake-bronze")
                    .await
                    .is_ok_and(|i| i.num_waiting > 0),
                Err(_) => false,
            }
        })
    });
    let second = lake_on_nats(&url, &dir.path().join("b"), &["--idle-exit", "1"])
        .stderr(Stdio::piped())
        .output()
        .expect("spm-lake");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another reader holds consumer spm-lake-bronze")
            && stderr.contains(&format!("pid {}", first.id())),
        "{stderr}"
    );
    terminate(&mut first);
    // Once the first is gone, the consumer is free again.
    let third = lake_on_nats(&url, &dir.path().join("b"), &["--idle-exit", "1"])
        .stderr(Stdio::piped())
        .output()
        .expect("spm-lake");
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
}

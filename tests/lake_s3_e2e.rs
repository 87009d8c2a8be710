//! End-to-end tests of `spm-lake` on S3, against a real S3 server (`moto_server` on a loopback
//! port, started per test): the bundled sample piped from `spm-replay` into an `s3://` root and
//! read back byte for byte, by `spm-core`, and by pyarrow and polars through their own S3
//! clients; SIGKILLs while archiving a pipe and while archiving JetStream; and the ways an S3
//! root can be wrong (unreachable endpoint, missing bucket, a bucket with a local root).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::lake::{core, lake, lines, replay, run_with_input, testdata_files};
use common::lake_crash::{
    LakeRoot, nats_lake_killed_during_replay, piped_archive_killed_and_rerun,
};
use common::nats::NatsServer;
use common::s3::S3Server;
use serde_json::Value;

fn s3_root<'a>(server: &'a S3Server, bucket: &str, prefix: &str) -> LakeRoot<'a> {
    server.create_bucket(bucket);
    LakeRoot::S3 {
        server,
        bucket: bucket.into(),
        prefix: prefix.into(),
    }
}

#[test]
fn a_replayed_day_piped_to_s3_reads_back_byte_for_byte_and_gives_the_same_signals() {
    let s3 = S3Server::start();
    let root = s3_root(&s3, "spm-lake", "runs/day-1");
    let ndjson = replay("ndjson");

    // spm-replay testdata/*.dbn.zst | spm-lake --input stdin --root s3://spm-lake/runs/day-1
    let mut producer = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "stdout"])
        .args(testdata_files())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spm-replay");
    let pipe = producer.stdout.take().expect("stdout");
    let out = root
        .command()
        .args(["--input", "stdin", "--flush-rows", "50000"])
        .stdin(pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spm-lake");
    assert!(producer.wait().unwrap().success());
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}");
    assert!(summary.contains("futures/mbp10"), "{summary}");

    let back = root.cat(&[]);
    assert_eq!(lines(&back), lines(&ndjson));
    assert!(
        back == ndjson,
        "cat from S3 differs from what spm-replay printed"
    );
    let direct = core(&ndjson);
    assert!(lines(&direct) > 100, "the sample gives snaps");
    assert!(core(&back) == direct, "the engine on the S3 copy differs");

    // The engine's snaps into gold, back out unchanged.
    root.archive(&direct, &[]);
    assert!(root.cat(&["--table", "levels/signals"]) == direct);

    // Everything is under the prefix, as Parquet objects: nothing beside it, no probe left.
    let all = s3.keys("spm-lake", "");
    assert!(all.iter().all(|k| k.starts_with("runs/day-1/")), "{all:?}");
    let objects = root.objects();
    assert!(objects.len() > 8, "{objects:?}");
    assert!(
        objects.iter().all(
            |p| p.ends_with(".parquet") && (p.starts_with("bronze/") || p.starts_with("gold/"))
        ),
        "{objects:?}"
    );

    // ls on S3: every table with its rows.
    let ls = root
        .command()
        .args(["ls", "--format", "json"])
        .output()
        .expect("spm-lake ls");
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let listing: Vec<Value> = serde_json::from_slice(&ls.stdout).expect("ls json");
    let rows = |layer: &str| -> u64 {
        listing
            .iter()
            .filter(|p| p["layer"] == layer)
            .map(|p| p["rows"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(rows("bronze"), lines(&ndjson) as u64);
    assert!(rows("gold") > 0);
    let files: u64 = listing.iter().map(|p| p["files"].as_u64().unwrap()).sum();
    assert_eq!(files, objects.len() as u64);
    let table = root.command().arg("ls").output().expect("spm-lake ls");
    let table = String::from_utf8_lossy(&table.stdout);
    for t in [
        "futures/trades",
        "futures/mbp10",
        "options/trades",
        "stocks/trades",
    ] {
        assert!(table.contains(t), "{table}");
    }
}

#[test]
fn pyarrow_and_polars_read_every_table_from_s3_with_exact_nanosecond_times() {
    let s3 = S3Server::start();
    let root = s3_root(&s3, "lake-readers", "lake");
    let dir = tempfile::tempdir().unwrap();
    let ndjson = replay("ndjson");
    let signals = core(&ndjson);
    root.archive(&ndjson, &["--flush-rows", "100000"]);
    root.archive(&signals, &[]);

    let location = root.s3_location().unwrap();
    let report = s3.check_with_readers(&location, dir.path(), &ndjson, &signals);
    // Two readers × (four bronze tables of the sample + gold).
    assert_eq!(report.matches(", equal").count(), 10, "{report}");
}

#[test]
fn a_piped_archive_to_s3_killed_at_random_moments_and_rerun_stores_each_event_exactly_once() {
    let s3 = S3Server::start();
    let root = s3_root(&s3, "spm-crash", "piped");
    let dir = tempfile::tempdir().unwrap();
    piped_archive_killed_and_rerun(&root, dir.path(), &replay("ndjson"));
    let objects = root.objects();
    assert!(
        objects
            .iter()
            .all(|p| p.ends_with(".parquet") || p.starts_with("_spm_probe_")),
        "{objects:?}"
    );
}

#[test]
fn a_lake_on_s3_killed_again_and_again_while_a_replay_publishes_stores_each_event_exactly_once() {
    let nats = NatsServer::start();
    let s3 = S3Server::start();
    let root = s3_root(&s3, "spm-crash", "bus");
    nats_lake_killed_during_replay(&root, &nats.url(), &replay("ndjson"));
}

#[test]
fn an_unreachable_endpoint_or_a_missing_bucket_exits_1_within_seconds_writing_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    let event = br#"{"type":"stock_trade","ts_event_ns":1763737200000000000,"ts_recv_ns":1763737200000000001,"source":"replay","symbol":"SPY","price":600.01,"size":100}
"#;
    let run = |cmd: Command| {
        let t0 = Instant::now();
        let out = run_with_input(cmd, event);
        (out, t0.elapsed())
    };

    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = lake();
    cmd.current_dir(cwd.path())
        .args(["--input", "stdin", "--root", "s3://spm-lake/x"])
        .args(["--s3-endpoint", &format!("http://127.0.0.1:{port}")])
        .args(["--s3-access-key", "k", "--s3-secret-key", "s"])
        .env_remove("S3_BUCKET")
        .env_remove("SPM_LAKE_ROOT");
    let (out, took) = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {stderr}");
    assert!(
        stderr.contains(&format!(
            "lake root s3://spm-lake/x: S3 endpoint http://127.0.0.1:{port}, bucket spm-lake: \
             the endpoint does not answer"
        )),
        "{stderr}"
    );

    // A live server without the bucket: refused, and no bucket made.
    let s3 = S3Server::start();
    let mut cmd = lake();
    s3.env(&mut cmd);
    cmd.current_dir(cwd.path())
        .args(["--input", "stdin", "--root", "s3://no-such-bucket/x"]);
    let (out, took) = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {stderr}");
    assert!(
        stderr.contains("bucket no-such-bucket: the bucket does not exist")
            && stderr.contains("NoSuchBucket"),
        "{stderr}"
    );
    assert!(s3.buckets().is_empty(), "{:?}", s3.buckets());

    // A bucket set with a local root: refused rather than a local lake.
    let mut cmd = lake();
    s3.env(&mut cmd);
    cmd.current_dir(cwd.path())
        .env("S3_BUCKET", "spm-lake")
        .args(["--input", "stdin", "--root", "local-lake"]);
    let (out, _) = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("lake root local-lake: is a local directory, but an S3 bucket is set")
            && stderr.contains("--root s3://spm-lake/PREFIX"),
        "{stderr}"
    );

    // Nothing was written where the commands ran.
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn with_a_bucket_and_no_root_the_lake_is_at_the_buckets_root_for_every_command() {
    let s3 = S3Server::start();
    s3.create_bucket("whole-bucket");
    let cwd = tempfile::tempdir().unwrap();
    let ndjson = replay("ndjson");
    let head: Vec<u8> = ndjson
        .split_inclusive(|&b| b == b'\n')
        .take(2000)
        .flatten()
        .copied()
        .collect();
    let mut cmd = lake();
    s3.env(&mut cmd);
    cmd.current_dir(cwd.path()).env("S3_BUCKET", "whole-bucket");
    let out = run_with_input(cmd, &head);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = s3.keys("whole-bucket", "");
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| k.starts_with("bronze/")), "{keys:?}");
    assert!(
        std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
        "a local lake was made"
    );

    // The settings as flags after the subcommand (they are global).
    let mut cmd = lake();
    s3.env(&mut cmd);
    let back = cmd
        .current_dir(cwd.path())
        .env_remove("S3_ENDPOINT")
        .args(["cat", "--s3-bucket", "whole-bucket"])
        .args(["--s3-endpoint", &s3.endpoint()])
        .output()
        .expect("spm-lake cat");
    assert!(
        back.status.success(),
        "{}",
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(lines(&back.stdout), 2000);
    assert!(back.stdout == head, "cat differs from the events stored");
}

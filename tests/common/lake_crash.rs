//! The lake's crash tests, written once for any root: a lake (local directory or S3 bucket and
//! prefix) that `spm-lake` is killed with SIGKILL on, again and again, while it archives a pipe
//! or a JetStream stream; then a clean run, and every event stored exactly once.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use spymaster::bus::{Bus, BusConfig, MARKET_DATA_STREAM};

use super::lake::{kill_schedule, lake, lines, run_with_input, testdata_files};
use super::s3::S3Server;

/// Where a test's lake lives.
pub enum LakeRoot<'a> {
    Local(PathBuf),
    S3 {
        server: &'a S3Server,
        bucket: String,
        prefix: String,
    },
}

impl LakeRoot<'_> {
    /// What `--root` is given.
    pub fn root_arg(&self) -> OsString {
        match self {
            LakeRoot::Local(dir) => dir.clone().into_os_string(),
            LakeRoot::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}").into(),
        }
    }

    /// `bucket/prefix`, as the S3 readers take it.
    pub fn s3_location(&self) -> Option<String> {
        match self {
            LakeRoot::Local(_) => None,
            LakeRoot::S3 { bucket, prefix, .. } => Some(format!("{bucket}/{prefix}")),
        }
    }

    /// `spm-lake --root …`, with the environment naming this root alone.
    pub fn command(&self) -> Command {
        let mut cmd = lake();
        match self {
            LakeRoot::Local(_) => {
                for var in ["S3_ENDPOINT", "S3_BUCKET", "SPM_LAKE_ROOT"] {
                    cmd.env_remove(var);
                }
            }
            LakeRoot::S3 { server, .. } => server.env(&mut cmd),
        }
        cmd.arg("--root").arg(self.root_arg());
        cmd
    }

    /// Archives `input` from stdin; asserts success.
    pub fn archive(&self, input: &[u8], args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        let out = run_with_input(cmd, input);
        assert!(
            out.status.success(),
            "spm-lake failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `spm-lake cat`; asserts success.
    pub fn cat(&self, args: &[&str]) -> Vec<u8> {
        let out = self
            .command()
            .arg("cat")
            .args(args)
            .stderr(Stdio::piped())
            .output()
            .expect("spm-lake cat");
        assert!(
            out.status.success(),
            "spm-lake cat failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Every object stored, by path under the root (listed without the lake's code).
    pub fn objects(&self) -> Vec<String> {
        match self {
            LakeRoot::Local(dir) => {
                let mut out = Vec::new();
                walk(dir, dir, &mut out);
                out.sort();
                out
            }
            LakeRoot::S3 {
                server,
                bucket,
                prefix,
            } => {
                let base = match prefix.trim_end_matches('/') {
                    "" => String::new(),
                    p => format!("{p}/"),
                };
                server
                    .keys(bucket, &base)
                    .into_iter()
                    .map(|k| k[base.len()..].to_string())
                    .collect()
            }
        }
    }

    pub fn parquet_objects(&self) -> usize {
        self.objects()
            .iter()
            .filter(|p| p.ends_with(".parquet"))
            .count()
    }

    /// `count distinct min max` of `lake_seq` over every object of a layer, by a reader we did
    /// not write (DuckDB locally, pyarrow on S3).
    pub fn seq_stats(&self, layer: &str) -> String {
        match self {
            LakeRoot::Local(dir) => {
                let script = format!(
                    "import duckdb\nprint(*duckdb.sql(\"select count(*), count(distinct lake_seq), min(lake_seq), max(lake_seq) from read_parquet('{}/{layer}/**/*.parquet', union_by_name=true)\").fetchall()[0])",
                    dir.display()
                );
                let q = Command::new("python3")
                    .args(["-c", &script])
                    .output()
                    .expect("python3");
                assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
                String::from_utf8_lossy(&q.stdout).trim().to_string()
            }
            LakeRoot::S3 { server, .. } => {
                server.seq_stats(&self.s3_location().expect("an S3 root"), layer)
            }
        }
    }
}

impl LakeRoot<'_> {
    /// The UTC dates bronze holds (`spm-lake ls --format json`).
    pub fn bronze_dates(&self) -> Vec<String> {
        let out = self
            .command()
            .args(["ls", "--format", "json"])
            .output()
            .expect("spm-lake ls");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing: Value = serde_json::from_slice(&out.stdout).expect("ls json");
        let mut dates: Vec<String> = listing
            .as_array()
            .expect("a list")
            .iter()
            .filter(|p| p["layer"] == "bronze")
            .map(|p| p["date"].as_str().expect("date").to_string())
            .collect();
        dates.sort();
        dates.dedup();
        dates
    }

    /// `spm-lake compact --date D --format json` for every date bronze holds: the reports'
    /// partitions, all dates together.
    pub fn compact_all(&self) -> Vec<Value> {
        let mut partitions = Vec::new();
        for date in self.bronze_dates() {
            let out = self
                .command()
                .args(["compact", "--date", &date, "--format", "json"])
                .output()
                .expect("spm-lake compact");
            assert!(
                out.status.success(),
                "spm-lake compact --date {date} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: Value = serde_json::from_slice(&out.stdout).expect("compact json");
            partitions.extend(report["partitions"].as_array().expect("partitions").clone());
        }
        partitions
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.expect("entry").path();
        if p.is_dir() {
            walk(base, &p, out);
        } else {
            let rel = p.strip_prefix(base).expect("under the root");
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

/// `spm-lake` on a piped day, SIGKILLed at random moments five times, then run to the end: the
/// lake holds each event exactly once and reads back byte for byte.
pub fn piped_archive_killed_and_rerun(root: &LakeRoot, scratch: &Path, ndjson: &[u8]) {
    let input = scratch.join("day.ndjson");
    std::fs::write(&input, ndjson).unwrap();
    let mut rand = kill_schedule();
    let mut killed_mid_write = 0;
    for _ in 0..5 {
        let mut child = root
            .command()
            .args(["--flush-rows", "4000"])
            .stdin(std::fs::File::open(&input).unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + rand() % 900));
        if child.try_wait().unwrap().is_none() {
            killed_mid_write += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    assert!(
        killed_mid_write >= 3,
        "the runs ended before the kills: input too small"
    );
    assert!(root.parquet_objects() > 0, "the killed runs stored nothing");
    let out = root.archive(ndjson, &["--flush-rows", "4000"]);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("already stored"), "{summary}");
    let back = root.cat(&[]);
    assert_eq!(lines(&back), lines(ndjson), "each event exactly once");
    assert!(back == ndjson, "the events read back differ");
    if let LakeRoot::Local(dir) = root {
        let leftovers: Vec<_> = root
            .objects()
            .into_iter()
            .filter(|p| p.contains('#'))
            .collect();
        assert!(
            leftovers.is_empty(),
            "staging files left in {}: {leftovers:?}",
            dir.display()
        );
    }
    // Silver, compacted from what the kills left, holds each event once too.
    let compacted = root.compact_all();
    assert!(!compacted.is_empty());
    assert!(
        compacted.iter().all(|p| p["duplicates"] == 0),
        "{compacted:?}"
    );
    assert!(root.cat(&["--layer", "silver"]) == ndjson, "silver differs");
}

pub fn stream_count(url: &str, stream: &str) -> u64 {
    Bus::connect(&BusConfig::new(url))
        .expect("connect")
        .stream_message_count(stream)
        .unwrap_or(0)
}

/// `spm-replay testdata/*.dbn.zst --output nats`.
pub fn publish(url: &str, republish: bool) {
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

/// `spm-lake --input nats` on `root`.
pub fn lake_on_nats(root: &LakeRoot, url: &str, extra: &[&str]) -> Command {
    let mut cmd = root.command();
    cmd.args(["--input", "nats", "--nats-url", url])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// `spm-lake --input nats` SIGKILLed at random moments (at least five times, and until the
/// publisher is done) while a replay publishes the sample three times (over a million events)
/// to JetStream; then a clean run. Bronze holds every stream sequence once (by a reader we did
/// not write) and the stored events are the published ones, three times each.
pub fn nats_lake_killed_during_replay(root: &LakeRoot, url: &str, ndjson: &[u8]) {
    const COPIES: u64 = 3;
    let total = COPIES * lines(ndjson) as u64;
    assert!(total >= 1_000_000);

    let publisher = {
        let url = url.to_string();
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
        let mut child = lake_on_nats(root, url, &["--flush-rows", "25000", "--flush-secs", "1"])
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
        stored_before_last_kill = root.parquet_objects();
    }
    publisher.join().unwrap();
    assert!(kills >= 5);
    assert!(
        stored_before_last_kill > 0,
        "the killed runs stored nothing"
    );
    assert_eq!(stream_count(url, MARKET_DATA_STREAM), total);

    let out = lake_on_nats(root, url, &["--flush-rows", "25000", "--idle-exit", "3"])
        .stderr(Stdio::piped())
        .output()
        .expect("spm-lake");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // By identity, with a reader we did not write: every stream sequence 1..=total once.
    assert_eq!(
        root.seq_stats("bronze"),
        format!("{total} {total} 1 {total}")
    );
    // By content: the stored events are the published ones, COPIES times each.
    let mut want: BTreeMap<&[u8], u64> = BTreeMap::new();
    for l in ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        *want.entry(l).or_default() += COPIES;
    }
    let back = root.cat(&[]);
    let mut got: BTreeMap<&[u8], u64> = BTreeMap::new();
    for l in back.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        *got.entry(l).or_default() += 1;
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the stored events differ from those published");

    // Silver, compacted from it: the same events, each once (the copies are distinct stream
    // messages of one input, so none is a duplicate), one object per partition-hour.
    let compacted = root.compact_all();
    assert!(
        compacted.iter().all(|p| p["duplicates"] == 0),
        "{compacted:?}"
    );
    assert_eq!(
        root.seq_stats("silver"),
        format!("{total} {total} 1 {total}")
    );
    assert!(
        root.cat(&["--layer", "silver"]) == back,
        "silver reads back differently from bronze"
    );
}

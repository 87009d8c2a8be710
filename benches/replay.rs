//! Replay throughput and memory: `spm-replay` to NDJSON next to Databento's own CLI (`dbn --json`)
//! on the same large MBP-10 file, the `--format bin` rate, replay to NATS JetStream, and the peak
//! memory of each run.
//!
//! The input is made from the real sample records of `../shared/dbn-samples`, written again
//! with shifted timestamps and sequence numbers by the `dbn` encoder (SPM_BENCH_RECORDS records,
//! 5 000 000 by default). The official CLI is found as `$DBN_CLI`, `dbn` on the PATH, or is
//! installed with `cargo install dbn-cli` into the target directory.

#[path = "../tests/common/samples.rs"]
mod samples;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{data_dir, mb, measure, rate};

fn main() {
    let Some(samples) = samples::samples_dir() else {
        return;
    };
    let records: u64 = std::env::var("SPM_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000_000);
    let file = large_mbp10(&samples.join("test_data.mbp-10.dbn"), records);
    let replay = env!("CARGO_BIN_EXE_spm-replay");
    println!("input: {} ({records} MBP-10 records)", file.display());
    support::warm_page_cache(std::slice::from_ref(&file));

    let ours = measure(
        Command::new(replay)
            .stdin(Stdio::null())
            .args(["--speed", "0", "--output", "stdout"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(
        ours.status.success(),
        "spm-replay failed: {:?}",
        ours.status
    );
    let ours_rate = rate(records, ours.wall);
    println!(
        "spm-replay ndjson : {:>10.0} records/s  ({:.2} s, peak RSS {:.1} MB)",
        ours_rate,
        ours.wall.as_secs_f64(),
        mb(ours.peak_rss)
    );

    let bin = measure(
        Command::new(replay)
            .stdin(Stdio::null())
            .args(["--speed", "0", "--output", "stdout", "--format", "bin"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(bin.status.success(), "spm-replay --format bin failed");
    println!(
        "spm-replay bin    : {:>10.0} records/s  ({:.2} s, peak RSS {:.1} MB)",
        rate(records, bin.wall),
        bin.wall.as_secs_f64(),
        mb(bin.peak_rss)
    );

    match official_cli() {
        Some(cli) => {
            let theirs = measure(
                Command::new(&cli)
                    .arg(&file)
                    .args(["--json", "--output", "/dev/null", "--force"])
                    .stdout(Stdio::null()),
            );
            assert!(
                theirs.status.success(),
                "dbn CLI failed: {:?}",
                theirs.status
            );
            let theirs_rate = rate(records, theirs.wall);
            println!(
                "dbn --json (CLI)  : {:>10.0} records/s  ({:.2} s, peak RSS {:.1} MB)",
                theirs_rate,
                theirs.wall.as_secs_f64(),
                mb(theirs.peak_rss)
            );
            println!(
                "ratio spm-replay / dbn CLI: {:.2}x (target >= 1.00)",
                ours_rate / theirs_rate
            );
        }
        None => println!("dbn CLI unavailable: comparison skipped"),
    }
    println!(
        "peak memory: {:.1} MB ndjson, {:.1} MB bin (target < 64 MB)",
        mb(ours.peak_rss),
        mb(bin.peak_rss)
    );
    nats_replay(&samples, replay);
}

/// A large MBP-10 file made from the sample's records, kept between runs.
fn large_mbp10(sample: &Path, records: u64) -> PathBuf {
    let path = data_dir().join(format!("mbp10-{records}.dbn"));
    if !path.exists() {
        samples::write_repeated_mbp10(sample, &path, records);
    }
    path
}

/// The official `dbn` CLI: `$DBN_CLI`, on the PATH, or installed into the target directory.
fn official_cli() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("DBN_CLI") {
        return Some(PathBuf::from(p));
    }
    if Command::new("dbn")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return Some(PathBuf::from("dbn"));
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tools");
    let bin = root.join("bin/dbn");
    if !bin.exists() {
        println!("installing dbn-cli into {} (one time)", root.display());
        let ok = Command::new("cargo")
            .args(["install", "dbn-cli", "--locked", "--root"])
            .arg(&root)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
    }
    Some(bin)
}

/// Replays 1 000 000 records to a real JetStream (file storage) and reports the rate.
fn nats_replay(samples: &Path, replay: &str) {
    let server = spymaster::bus::testing::NatsServer::start();
    let records = 1_000_000;
    let file = large_mbp10(&samples.join("test_data.mbp-10.dbn"), records);
    let run = measure(
        Command::new(replay)
            .stdin(Stdio::null())
            .args([
                "--speed",
                "0",
                "--output",
                "nats",
                "--nats-url",
                &server.url(),
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(run.status.success(), "spm-replay --output nats failed");
    println!(
        "spm-replay nats   : {:>10.0} events/s  ({records} events in {:.2} s, peak RSS {:.1} MB; target >= 200 000/s)",
        rate(records, run.wall),
        run.wall.as_secs_f64(),
        mb(run.peak_rss)
    );
}

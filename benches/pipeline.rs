//! End-to-end pipeline speed on a full synthetic regular session (6.5 h from `spm-synth`):
//! `spm-replay --speed 0 | spm-core --stdout` over NDJSON and over `--format bin`, with the
//! peak memory of `spm-core`; then the engine alone on the same session's decoded events
//! (decoded in chunks outside the timed region). Set SPM_BENCH_HOURS for a shorter session,
//! SPM_BENCH_ENGINE_ONLY=1 to measure only the engine.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spymaster::core::{Config, Engine};
use spymaster::dbn::DbnEventReader;
use spymaster::io::EventSource;
use spymaster::replay::Merge;

use support::{mb, measure, rate, session};

/// Runs `spm-replay ARGS FILES | spm-core --stdout > /dev/null`; returns (events, core run).
fn pipeline(files: &[PathBuf], format: &str) -> (u64, support::Measured, support::Measured) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let summary = tmp.path().join("replay.err");
    let fifo = tmp.path().join("pipe");
    // A named pipe lets both ends be measured as separate processes.
    let ok = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "mkfifo failed");
    let fifo_w = fifo.clone();
    let files_w = files.to_vec();
    let format_w = format.to_owned();
    let summary_w = summary.clone();
    let writer = std::thread::spawn(move || {
        measure(
            Command::new(env!("CARGO_BIN_EXE_spm-replay"))
                .args(["--speed", "0", "--output", "stdout", "--format", &format_w])
                .args(&files_w)
                .stdout(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(&fifo_w)
                        .expect("fifo"),
                )
                .stderr(std::fs::File::create(&summary_w).expect("summary")),
        )
    });
    let core = measure(
        Command::new(env!("CARGO_BIN_EXE_spm-core"))
            .args(["--stdout", "--input", "stdin"])
            .stdin(std::fs::File::open(&fifo).expect("fifo"))
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let replay = writer.join().expect("replay thread");
    assert!(
        replay.status.success() && core.status.success(),
        "pipeline failed"
    );
    let text = std::fs::read_to_string(&summary).unwrap_or_default();
    let events = text
        .lines()
        .find_map(|l| l.strip_prefix("replayed "))
        .and_then(|l| l.split_whitespace().next())
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .expect("replay summary line");
    (events, replay, core)
}

fn main() {
    let hours: f64 = std::env::var("SPM_BENCH_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6.5);
    let files = session(hours);
    support::warm_page_cache(&files);
    if std::env::var_os("SPM_BENCH_ENGINE_ONLY").is_some() {
        engine_alone(&files, 2_000);
        return;
    }
    for (format, target) in [("ndjson", 200_000.0), ("bin", 2_000_000.0)] {
        let (events, replay, core) = pipeline(&files, format);
        let wall = replay.wall.max(core.wall);
        println!(
            "replay | core ({format:>6}): {events} events in {:.2} s = {:>9.0} events/s (target >= {target:.0}); peak RSS core {:.1} MB (target <= 256), replay {:.1} MB",
            wall.as_secs_f64(),
            rate(events, wall),
            mb(core.peak_rss),
            mb(replay.peak_rss)
        );
    }
    // Chunks of 2 000 decoded events (~1.4 MB) stay in the core's cache, as an event just
    // decoded from a pipe does; chunks of 200 000 stream every event from memory.
    engine_alone(&files, 2_000);
    engine_alone(&files, 200_000);
}

/// The engine on the session's events, merged and decoded as `spm-replay` does, a chunk at a
/// time; only `Engine::apply` is timed.
fn engine_alone(files: &[PathBuf], chunk_len: usize) {
    let readers = files
        .iter()
        .map(|p| DbnEventReader::open(p, "replay").expect("open session file"))
        .collect();
    let mut merge = Merge::new(readers);
    let mut engine = Engine::new(Config::default());
    let mut chunk = Vec::with_capacity(chunk_len);
    let (mut events, mut snaps, mut busy) = (0u64, 0u64, Duration::ZERO);
    loop {
        chunk.clear();
        while chunk.len() < chunk_len {
            match merge.next_event().expect("session decodes") {
                Some(ev) => chunk.push(ev),
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        let start = Instant::now();
        for ev in &chunk {
            if let Some(snap) = engine.apply(ev) {
                snaps += 1;
                std::hint::black_box(snap);
            }
        }
        busy += start.elapsed();
        events += chunk.len() as u64;
    }
    println!(
        "engine alone (session, chunks of {chunk_len:>6}): {events} events in {:.2} s = {:>9.0} events/s (target >= 3000000), {snaps} snaps",
        busy.as_secs_f64(),
        rate(events, busy)
    );
}

//! `spm-eval` benchmark: level-snaps/s scoring the `level_signals` of a full synthetic 6.5-hour
//! session (target: ≥ 1 000 000, so that it adds little to `spm-replay | spm-core | spm-eval`).
//!
//! The session (seed 7, 09:30–16:00 ET) is generated once and run through `spm-replay | spm-core
//! --stdout` once into the benchmark data folder. Measured: the `spm-eval` process on that file
//! (three runs, the best and the median), and in-process the two halves of its work: reading
//! the payloads (the borrowed view) and scoring already-read snaps. Then a sweep of three values
//! over the session's events, for the record. Run with `cargo bench --bench eval`.

mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use spymaster::eval::{EvalSettings, Evaluator, SnapView};
use spymaster::event::Event;
use support::{data_dir, measure, rate, session, warm_page_cache};

const HOURS: f64 = 6.5;
const TARGET: f64 = 1_000_000.0;

fn signals(files: &[std::path::PathBuf]) -> std::path::PathBuf {
    let path = data_dir().join(format!("session-{HOURS}h.signals.ndjson"));
    if !path.exists() {
        println!(
            "running the session through spm-core into {}",
            path.display()
        );
        let tmp = path.with_extension("tmp");
        let mut replay = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
            .args(["--output", "stdout"])
            .args(files)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spm-replay");
        let core = Command::new(env!("CARGO_BIN_EXE_spm-core"))
            .arg("--stdout")
            .stdin(replay.stdout.take().expect("replay stdout"))
            .stdout(std::fs::File::create(&tmp).expect("create the signals file"))
            .stderr(Stdio::null())
            .status()
            .expect("spm-core");
        assert!(replay.wait().is_ok_and(|s| s.success()) && core.success());
        std::fs::rename(&tmp, &path).expect("rename the signals file");
    }
    path
}

fn main() {
    let files = session(HOURS);
    let path = signals(&files);
    warm_page_cache(std::slice::from_ref(&path));
    let bytes = std::fs::read(&path).expect("read the signals");
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();

    // Reading alone.
    let started = Instant::now();
    let mut level_snaps = 0u64;
    for line in &lines {
        let view = SnapView::parse(line).expect("a snap");
        level_snaps += view.levels.len() as u64;
    }
    let read = started.elapsed();

    // Scoring alone, on snaps read beforehand.
    let snaps: Vec<_> = lines
        .iter()
        .map(|l| match Event::from_json(l, None) {
            Ok(Event::LevelSignals(s)) => s,
            other => panic!("not a snap: {other:?}"),
        })
        .collect();
    let started = Instant::now();
    let mut evaluator = Evaluator::new(EvalSettings::default(), false);
    for snap in &snaps {
        evaluator.observe_signals(snap);
    }
    let calls = evaluator.finish().calls.len();
    let scored = started.elapsed();

    println!(
        "eval: {} snaps, {} level-snaps, {:.0} MB of payloads, {calls} calls",
        lines.len(),
        level_snaps,
        bytes.len() as f64 / 1e6
    );
    println!(
        "  reading the payloads (one thread)   {:>12.0} level-snaps/s",
        rate(level_snaps, read)
    );
    println!(
        "  scoring read snaps (one thread)     {:>12.0} level-snaps/s",
        rate(level_snaps, scored)
    );

    // The command, three times.
    let mut walls = Vec::new();
    for _ in 0..3 {
        let m = measure(
            Command::new(env!("CARGO_BIN_EXE_spm-eval"))
                .stdin(std::fs::File::open(&path).expect("open the signals"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        assert!(m.status.success(), "spm-eval failed");
        walls.push((m.wall, m.peak_rss));
    }
    walls.sort();
    let (best, rss) = walls[0];
    let median = walls[1].0;
    println!(
        "  spm-eval < signals (process)        {:>12.0} level-snaps/s best, {:.0} median ({:.3} s, peak RSS {:.1} MB)",
        rate(level_snaps, best),
        rate(level_snaps, median),
        best.as_secs_f64(),
        support::mb(rss)
    );
    let verdict = if rate(level_snaps, best) >= TARGET {
        "met"
    } else {
        "NOT met"
    };
    println!("  target ≥ {TARGET:.0} level-snaps/s: {verdict}");

    // A sweep of three values over the session's events.
    let m = measure(
        Command::new(env!("CARGO_BIN_EXE_spm-eval"))
            .args(["--sweep", "break_score_threshold=70,80,90", "--"])
            .args(&files)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    assert!(m.status.success(), "spm-eval --sweep failed");
    println!(
        "  --sweep of 3 values over the session: {:.1} s (peak RSS {:.1} MB)",
        m.wall.as_secs_f64(),
        support::mb(m.peak_rss)
    );
}

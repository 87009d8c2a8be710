//! End-to-end on the bundled sample: `spm-replay testdata/… | spm-core --stdout` makes the
//! scripted calls at the scripted levels and none in the plain market; the output is
//! byte-identical run after run, and through NATS.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use spymaster::synth::scenario::{ExpectedSignal, Scenario};

/// The first seconds of a session, when VWAP and the session extremes sit on spot by
/// construction, are not plain market: calls there are the physics working on a level that is
/// being formed, so the plain-market check starts after them.
const WARM_UP_S: f64 = 120.0;
/// Plain market is anything at least this far from a scripted call's window.
const MARGIN_S: f64 = 60.0;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn sample_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata())
        .expect("testdata/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".dbn.zst"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "bundled sample missing: {files:?}");
    files
}

/// `spm-replay FILES | spm-core --stdout`, through a real pipe.
fn pipe_run() -> Vec<u8> {
    let mut replay = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "stdout"])
        .args(sample_files())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spm-replay");
    let core = Command::new(env!("CARGO_BIN_EXE_spm-core"))
        .arg("--stdout")
        .stdin(replay.stdout.take().expect("pipe"))
        .stderr(Stdio::null())
        .output()
        .expect("spm-core");
    assert!(replay.wait().expect("wait").success());
    assert!(core.status.success());
    core.stdout
}

/// First snap time (ms) at which each (level id, signal) starts, plus every call's time.
fn calls(output: &[u8]) -> Vec<(f64, String, String)> {
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for line in output.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let snap: Value = serde_json::from_slice(line).expect("snap json");
        let ts = snap["ts"].as_f64().expect("ts");
        let mut seen = BTreeMap::new();
        for level in snap["levels"].as_array().expect("levels") {
            let id = level["id"].as_str().expect("id").to_owned();
            let signal = level["signal"].as_str().expect("signal").to_owned();
            if (signal == "BREAK" || signal == "REJECT") && held.get(&id) != Some(&signal) {
                out.push((ts, id.clone(), signal.clone()));
            }
            seen.insert(id, signal);
        }
        held = seen;
    }
    out
}

#[test]
fn scripted_break_and_reject_fire_at_their_levels_and_the_plain_market_stays_quiet() {
    let scenario = Scenario::from_toml_str(
        &std::fs::read_to_string(testdata().join("scenario.toml")).expect("scenario"),
    )
    .expect("scenario parses");
    assert!(
        scenario
            .expects
            .iter()
            .any(|e| e.signal == ExpectedSignal::Break)
    );
    assert!(
        scenario
            .expects
            .iter()
            .any(|e| e.signal == ExpectedSignal::Reject)
    );
    let reader = spymaster::dbn::DbnEventReader::open(&testdata().join("es.mbp-10.dbn.zst"), "t")
        .expect("open sample");
    let start_ms = reader.metadata().start as f64 / 1e6;
    let midnight = chrono::NaiveTime::MIN;

    let calls = calls(&pipe_run());
    let rel = |ts: f64| (ts - start_ms) / 1000.0;
    let mut windows = Vec::new();
    for e in &scenario.expects {
        let after = e.after.offset_ns(midnight).expect("offset") as f64 / 1e9;
        let window = (after, after + e.within_s);
        windows.push(window);
        let want = match e.signal {
            ExpectedSignal::Break => "BREAK",
            ExpectedSignal::Reject => "REJECT",
        };
        let hit = calls.iter().find(|(ts, id, sig)| {
            id == &e.level && sig == want && (window.0..=window.1).contains(&rel(*ts))
        });
        assert!(
            hit.is_some(),
            "{want} at {} expected in [{:.0} s, {:.0} s]; calls: {calls:?}",
            e.level,
            window.0,
            window.1
        );
    }
    let plain: Vec<_> = calls
        .iter()
        .filter(|(ts, _, _)| {
            let t = rel(*ts);
            t > WARM_UP_S
                && windows
                    .iter()
                    .all(|(a, b)| t < a - MARGIN_S || t > b + MARGIN_S)
        })
        .collect();
    assert!(plain.is_empty(), "calls in the plain market: {plain:?}");
}

#[test]
fn three_runs_on_the_sample_are_byte_identical() {
    let first = pipe_run();
    assert!(first.len() > 1000);
    assert!(pipe_run() == first, "second run differs");
    assert!(pipe_run() == first, "third run differs");
}

#[test]
fn the_sample_through_nats_gives_the_same_bytes_as_the_pipe() {
    let server = spymaster::bus::testing::NatsServer::start();
    let url = server.url();
    let piped = pipe_run();
    let snaps = piped.iter().filter(|&&b| b == b'\n').count();

    let mut core = Command::new(env!("CARGO_BIN_EXE_spm-core"))
        .args(["--input", "nats", "--from-start", "--nats-url", &url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spm-core");
    let replay = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "nats", "--nats-url", &url])
        .args(sample_files())
        .output()
        .expect("spm-replay");
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let tap = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
        .args([
            "levels.signals",
            "--from-start",
            "--count",
            &snaps.to_string(),
        ])
        .args(["--nats-url", &url])
        .output()
        .expect("spm-tap");
    let _ = core.kill();
    let _ = core.wait();
    assert!(
        tap.status.success(),
        "{}",
        String::from_utf8_lossy(&tap.stderr)
    );
    assert!(
        tap.stdout == piped,
        "NATS output differs from the pipe ({} vs {} bytes)",
        tap.stdout.len(),
        piped.len()
    );
}

#[test]
fn replaying_the_sample_loses_nothing_and_skips_no_record() {
    use dbn::Record;
    use dbn::decode::{DbnDecoder, DecodeRecordRef};
    // Count the records independently with the `dbn` crate: every record but the option
    // definitions becomes one event.
    let mut expected = 0u64;
    for file in sample_files() {
        let mut decoder = DbnDecoder::from_zstd_file(&file).expect("open");
        while let Some(rec) = decoder.decode_record_ref().expect("decode") {
            if !matches!(rec.rtype(), Ok(dbn::RType::InstrumentDef)) {
                expected += 1;
            }
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "stdout"])
        .args(sample_files())
        .output()
        .expect("spm-replay");
    assert!(out.status.success());
    let events = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(events, expected, "one event per market record");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("skipped records: none"), "{summary}");
}

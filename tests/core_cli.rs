//! End-to-end tests of `spm-core` on NDJSON pipes.

use std::io::Write;
use std::process::{Command, Stdio};

const MS: u64 = 1_000_000;
/// 2026-11-24 15:00:00 UTC.
const T0: u64 = 1_795_532_400 * 1_000_000_000;

fn session() -> String {
    let mut out = String::new();
    let mut mid = 6870.0f64;
    for i in 0..4_000u64 {
        let ts = T0 + i * 5 * MS;
        if i % 7 == 0 {
            mid += if (i / 70) % 2 == 0 { 0.25 } else { -0.25 };
            let agg = if i % 2 == 0 { 1 } else { -1 };
            out += &format!(
                r#"{{"type":"futures_trade","ts_event_ns":{ts},"ts_recv_ns":{ts},"source":"test","symbol":"ESZ5","price":{mid},"size":{},"aggressor":{agg}}}"#,
                1 + i % 9
            );
        } else if i % 50 == 1 {
            out += &format!(
                r#"{{"type":"option_trade","ts_event_ns":{ts},"ts_recv_ns":{ts},"source":"test","underlying":"SPY","option_symbol":"X","exp_date":"2026-11-24","strike":687.0,"right":"C","price":1.2,"size":40,"opt_bid":1.1,"opt_ask":1.2,"aggressor":0}}"#
            );
        } else {
            let rows: Vec<String> = (0..10)
                .map(|j| {
                    format!(
                        r#"{{"bid_px":{},"bid_sz":{},"ask_px":{},"ask_sz":{}}}"#,
                        mid - 0.25 * j as f64,
                        10 + (i * 7 + j) % 90,
                        mid + 0.25 * (j + 1) as f64,
                        10 + (i * 3 + j) % 90
                    )
                })
                .collect();
            out += &format!(
                r#"{{"type":"mbp10","ts_event_ns":{ts},"ts_recv_ns":{ts},"source":"test","symbol":"ESZ5","levels":[{}],"is_snapshot":false}}"#,
                rows.join(",")
            );
        }
        out.push('\n');
    }
    out
}

fn run_core(args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spm-core"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spm-core starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_pipe_of_events_gives_one_snap_per_boundary_deterministically() {
    let input = session();
    let (code, out, err) = run_core(
        &["--stdout", "--input", "stdin", "--hotzone", "687.3"],
        &input,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    // 20 s of events: boundaries every 250 ms after the first trade and book image.
    assert!(lines.len() >= 75 && lines.len() <= 80, "{}", lines.len());
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["type"], "level_signals");
        assert!(v["levels"].as_array().is_some_and(|l| !l.is_empty()));
    }
    assert!(out.contains("\"id\":\"STRIKE_687\""));
    let (_, again, _) = run_core(
        &["--stdout", "--input", "stdin", "--hotzone", "687.3"],
        &input,
    );
    assert_eq!(out, again);
}

#[test]
fn malformed_lines_are_reported_with_their_number_and_strict_fails() {
    let mut input = session();
    input.insert_str(0, "{\"type\":\"mbp10\",\n");
    let (code, out, err) = run_core(&["--stdout", "--input", "stdin"], &input);
    assert_eq!(code, 0);
    assert!(err.contains("line 1"), "{err}");
    assert!(!out.is_empty());
    let (code, _, err) = run_core(&["--stdout", "--input", "stdin", "--strict"], &input);
    assert_eq!(code, 1);
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn print_config_prints_toml_that_a_config_file_can_override() {
    let (code, out, _) = run_core(&["--print-config"], "");
    assert_eq!(code, 0);
    assert!(out.contains("snap_interval_ms = 250"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("core.toml");
    std::fs::write(&path, "f_thresh = 42.0\n").unwrap();
    let (code, out, _) = run_core(
        &[
            "--print-config",
            "--config",
            path.to_str().unwrap(),
            "--hotzone",
            "1.5,2",
        ],
        "",
    );
    assert_eq!(code, 0);
    assert!(out.contains("f_thresh = 42.0"), "{out}");
    assert!(out.contains("hotzones = [1.5, 2.0]"), "{out}");
    std::fs::write(&path, "no_such_key = 1\n").unwrap();
    let (code, _, err) = run_core(&["--print-config", "--config", path.to_str().unwrap()], "");
    assert_eq!(code, 1);
    assert!(err.contains("no_such_key"), "{err}");
}

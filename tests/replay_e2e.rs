//! End-to-end: `spm-replay` on real Databento sample files.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::samples::samples_dir;
use serde_json::Value;

fn replay(args: &[&str], files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "stdout"])
        .args(args)
        .args(files)
        .output()
        .expect("run spm-replay")
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn ts(line: &str) -> u64 {
    let v: Value = serde_json::from_str(line).expect("json");
    v["ts_event_ns"].as_u64().expect("ts_event_ns")
}

fn is_trade(line: &str) -> bool {
    line.starts_with(r#"{"type":"futures_trade""#)
}

#[test]
fn two_datasets_merge_by_event_time_with_trades_first_then_file_order() {
    let Some(dir) = samples_dir() else { return };
    let mbp = dir.join("test_data.mbp-10.v3.dbn.zst");
    let trades = dir.join("test_data.trades.v1.dbn.zst");
    let a = replay(&[], &[&mbp]);
    let b = replay(&[], &[&trades]);
    assert!(a.status.success() && b.status.success());
    let (a, b) = (lines(&a), lines(&b));
    assert!(!a.is_empty() && !b.is_empty());

    let merged = replay(&[], &[&mbp, &trades]);
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let merged = lines(&merged);

    // The documented order, computed independently: a stable sort of both files' events by
    // (event time, trades first, file order), record order kept by stability.
    let mut expected: Vec<(u64, u8, usize, &String)> = a
        .iter()
        .map(|l| (ts(l), u8::from(!is_trade(l)), 0, l))
        .chain(b.iter().map(|l| (ts(l), u8::from(!is_trade(l)), 1, l)))
        .collect();
    expected.sort_by_key(|&(t, rank, file, _)| (t, rank, file));
    let expected: Vec<&String> = expected.into_iter().map(|e| e.3).collect();
    assert_eq!(merged.len(), a.len() + b.len());
    for (i, (got, want)) in merged.iter().zip(&expected).enumerate() {
        assert_eq!(got, *want, "event {i} out of order");
    }
    // Real symbols from the symbology, never instrument ids.
    assert!(
        merged.iter().all(|l| l.contains(r#""symbol":"ES"#)),
        "{merged:?}"
    );
    assert!(!merged.iter().any(|l| l.contains("ES_")));
}

#[test]
fn truncated_file_reports_file_and_offset_keeps_earlier_events_and_exits_1() {
    let Some(dir) = samples_dir() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let original = dir.join("test_data.mbp-10.dbn");
    let bytes = std::fs::read(&original).expect("read sample");
    let whole = replay(&[], &[&original]);
    assert!(whole.status.success());
    let whole = lines(&whole);
    assert!(whole.len() >= 2, "the sample needs at least two records");

    // Cut 100 bytes into the last record.
    let record_len = 368; // an MBP-10 record (DBN v3); cut 100 bytes into the last one
    let cut = bytes.len() - record_len + 100;
    let truncated = tmp.path().join("cut.mbp-10.dbn");
    std::fs::write(&truncated, &bytes[..cut]).expect("write");

    let out = replay(&[], &[&truncated]);
    assert_eq!(out.status.code(), Some(1), "exit code");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut.mbp-10.dbn"),
        "names the file: {stderr}"
    );
    assert!(stderr.contains("offset"), "names the offset: {stderr}");
    let got = lines(&out);
    assert_eq!(
        got,
        whole[..whole.len() - 1],
        "every event before the cut is written"
    );
}

#[test]
fn time_range_selects_events_by_event_time() {
    let Some(dir) = samples_dir() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("es.mbp-10.dbn");
    common::samples::write_repeated_mbp10(&dir.join("test_data.mbp-10.dbn"), &file, 40);
    let all = lines(&replay(&[], &[&file]));
    assert_eq!(all.len(), 40);
    let t1 = ts(&all[5]);
    let t_last = ts(&all[30]);
    let some = replay(
        // Nanoseconds for the start, ISO-8601 for the end.
        &["--start", &t1.to_string(), "--end", &chrono_iso(t_last)],
        &[&file],
    );
    assert!(some.status.success());
    let some = lines(&some);
    let expected: Vec<&String> = all
        .iter()
        .filter(|l| (t1..t_last).contains(&ts(l)))
        .collect();
    assert!(!expected.is_empty() && expected.len() < all.len());
    assert_eq!(some.iter().collect::<Vec<_>>(), expected);
}

/// RFC 3339 with nanoseconds, computed without the code under test.
fn chrono_iso(ts: u64) -> String {
    let d =
        chrono::DateTime::from_timestamp((ts / 1_000_000_000) as i64, (ts % 1_000_000_000) as u32)
            .expect("valid time");
    d.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

#[test]
fn binary_format_carries_the_same_events_as_ndjson() {
    let Some(dir) = samples_dir() else { return };
    let file = dir.join("test_data.mbp-10.v2.dbn.zst");
    let json = replay(&[], &[&file]);
    let bin = replay(&["--format", "bin"], &[&file]);
    assert!(json.status.success() && bin.status.success());
    assert!(bin.stdout.starts_with(b"SPMBIN1\n"));
    // Read the binary stream back through the library's pipe reader.
    use spymaster::io::EventSource;
    let mut src = spymaster::io::pipe::PipeSource::new(&bin.stdout[..], "bin");
    let mut back = Vec::new();
    while let Some(e) = src.next_event().expect("decode") {
        back.push(e.to_json());
    }
    assert_eq!(back, lines(&json));
}

#[test]
fn sigterm_stops_a_paced_replay_flushes_what_it_read_and_exits_0() {
    let Some(dir) = samples_dir() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("long.mbp-10.dbn");
    // 20 000 records, 1 ms apart per copy of the two sample records: 10 s of event time.
    common::samples::write_repeated_mbp10(&dir.join("test_data.mbp-10.dbn"), &file, 20_000);
    let child = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "1", "--output", "stdout"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spm-replay");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = lines(&out);
    assert!(
        !got.is_empty() && got.len() < 20_000,
        "{} events",
        got.len()
    );
    for line in &got {
        serde_json::from_str::<Value>(line).expect("every written line is whole");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
}

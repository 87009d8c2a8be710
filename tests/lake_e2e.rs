//! End-to-end tests of `spm-lake` on a local root: the bundled sample archived from a pipe and
//! read back byte for byte, by `spm-core`, and by DuckDB, pyarrow and polars; kills mid-write;
//! bad input.

mod common;

use common::lake::{archive, cat, check_with_readers, core, lake, lines, replay, run_with_input};
use common::lake_crash::{LakeRoot, piped_archive_killed_and_rerun};
use serde_json::Value;

#[test]
fn a_replayed_day_archived_from_a_pipe_reads_back_byte_for_byte_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let ndjson = replay("ndjson");
    let root = dir.path().join("lake");
    let out = archive(&root, &ndjson, &["--input", "stdin"]);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("futures/mbp10"), "{summary}");
    let back = cat(&root, &[]);
    assert_eq!(lines(&back), lines(&ndjson));
    assert!(back == ndjson, "cat differs from what spm-replay printed");

    // The binary framing in and out, on its own root.
    let bin = replay("bin");
    let root_bin = dir.path().join("lake-bin");
    archive(&root_bin, &bin, &[]);
    assert!(
        cat(&root_bin, &["--format", "bin"]) == bin,
        "cat --format bin differs"
    );
    assert!(cat(&root_bin, &[]) == ndjson);

    // Partial reads: one table, one symbol, a time window.
    let trades = cat(&root, &["--table", "futures/trades"]);
    let want: Vec<&[u8]> = ndjson
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"{\"type\":\"futures_trade\""))
        .collect();
    assert_eq!(trades, want.concat());
    assert!(cat(&root, &["--symbol", "NOPE"]).is_empty());
    let first: Value =
        serde_json::from_slice(ndjson.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let t0 = first["ts_event_ns"].as_u64().unwrap();
    let window = cat(
        &root,
        &[
            "--start",
            &(t0 + 1_000_000_000).to_string(),
            "--end",
            &(t0 + 2_000_000_000).to_string(),
        ],
    );
    let want: Vec<&[u8]> = ndjson
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| {
            let v: Value = serde_json::from_slice(l).unwrap();
            let ts = v["ts_event_ns"].as_u64().unwrap();
            ts >= t0 + 1_000_000_000 && ts < t0 + 2_000_000_000
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(window, want.concat());
}

#[test]
fn a_stored_day_fed_to_the_engine_gives_the_same_signals_as_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let ndjson = replay("ndjson");
    let root = dir.path().join("lake");
    archive(&root, &ndjson, &["--flush-rows", "50000"]);
    let direct = core(&ndjson);
    assert!(lines(&direct) > 100, "the sample gives snaps");
    assert!(core(&cat(&root, &[])) == direct);
}

#[test]
fn duckdb_pyarrow_and_polars_read_every_table_with_exact_nanosecond_times() {
    let dir = tempfile::tempdir().unwrap();
    let ndjson = replay("ndjson");
    let signals = core(&ndjson);
    let root = dir.path().join("lake");
    archive(&root, &ndjson, &["--flush-rows", "100000"]);
    archive(&root, &signals, &[]);

    let report = check_with_readers(&root, dir.path(), &ndjson, &signals);
    // Three readers × (four bronze tables of the sample + gold).
    assert_eq!(report.matches(", equal").count(), 15, "{report}");
}

#[test]
fn a_piped_archive_killed_at_random_moments_and_rerun_stores_each_event_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::Local(dir.path().join("lake"));
    piped_archive_killed_and_rerun(&root, dir.path(), &replay("ndjson"));
}

#[test]
fn malformed_lines_and_unstorable_events_are_reported_with_their_position_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let good1 = r#"{"type":"stock_trade","ts_event_ns":1763737200000000000,"ts_recv_ns":1763737200000000001,"source":"replay","symbol":"SPY","price":600.01,"size":100}"#;
    let bad_date = r#"{"type":"option_trade","ts_event_ns":1763737200000000002,"ts_recv_ns":1763737200000000002,"source":"replay","underlying":"SPY","option_symbol":"X","exp_date":"21/11/2025","strike":600.0,"right":"C","price":1.0,"size":1,"aggressor":0}"#;
    let good2 = r#"{"type":"stock_trade","ts_event_ns":1763737200000000003,"ts_recv_ns":1763737200000000003,"source":"replay","symbol":"SPY","price":null,"size":5,"extra":"ignored"}"#;
    let input = format!("{good1}\nnot json at all\n{bad_date}\n{good2}\n");
    let out = archive(&root, input.as_bytes(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(
        stderr.contains("exp_date is not a YYYY-MM-DD date"),
        "{stderr}"
    );
    assert!(stderr.contains("skipped, malformed input: 1"), "{stderr}");
    let back = String::from_utf8(cat(&root, &["--table", "stocks/trades"])).unwrap();
    let want = format!("{good1}\n{}\n", good2.replace(r#","extra":"ignored""#, ""));
    assert_eq!(back, want);
}

#[test]
fn an_unwritable_root_exits_1_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let mut cmd = lake();
    cmd.arg("--root").arg(file.join("lake"));
    let out = run_with_input(cmd, b"");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lake root") && stderr.contains("cannot create"),
        "{stderr}"
    );
}

//! `spm-eval` end to end: the bundled sample's scripted calls scored through the real pipeline,
//! the same report from the lake's gold table and from NATS, the sweep, and bad input.

mod common;

use std::process::{Command, Output, Stdio};

use common::lake::{archive, cat, core, replay, run_with_input, testdata_files};
use serde_json::Value;
use spymaster::bus::testing::NatsServer;

fn eval() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spm-eval"))
}

/// `spm-eval ARGS` with `input` on stdin; asserts success.
fn eval_ok(input: &[u8], args: &[&str]) -> Output {
    let mut cmd = eval();
    cmd.args(args);
    let out = run_with_input(cmd, input);
    assert!(
        out.status.success(),
        "spm-eval {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The bundled sample's snaps: `spm-replay testdata/*.dbn.zst | spm-core --stdout`.
fn sample_signals() -> Vec<u8> {
    core(&replay("ndjson"))
}

/// Rows of a CSV file as maps from header to field (no quoted commas in our ids).
fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn row<'a>(report: &'a Value, signal: &str, kind: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["signal"] == signal && r["level_kind"] == kind)
        .unwrap_or_else(|| panic!("no {signal} × {kind} row in {report:#}"))
}

#[test]
fn the_scripted_break_of_687_and_reject_at_690_of_the_bundled_sample_are_wins() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let calls = tmp.path().join("calls.csv");
    let plot = tmp.path().join("day.svg");
    let out = eval_ok(
        &sample_signals(),
        &[
            "--format",
            "json",
            "--calls",
            calls.to_str().expect("utf-8 path"),
            "--plot",
            plot.to_str().expect("utf-8 path"),
        ],
    );
    let calls = std::fs::read_to_string(&calls).expect("calls.csv");
    let rows = csv_rows(&calls);
    let find = |signal: &str, level: &str| {
        rows.iter()
            .find(|r| r["signal"] == signal && r["level_id"] == level)
            .unwrap_or_else(|| panic!("no {signal} call at {level} in\n{calls}"))
    };
    // The scenario (testdata/scenario.toml): BREAK of the 687 support after +00:09:11, REJECT
    // at the 690 resistance after +00:03:35 (the session starts 10:00:00 ET).
    let brk = find("BREAK", "ROUND_687");
    assert_eq!(brk["outcome"], "win", "{brk:?}");
    assert_eq!(brk["direction"], "SUPPORT");
    assert!(brk["onset_time_et"].as_str() >= "10:09:11", "{brk:?}");
    let rej = find("REJECT", "ROUND_690");
    assert_eq!(rej["outcome"], "win", "{rej:?}");
    assert_eq!(rej["direction"], "RESISTANCE");
    assert!(rej["onset_time_et"].as_str() >= "10:03:35", "{rej:?}");
    for r in [brk, rej] {
        let secs: f64 = r["seconds_to_outcome"].parse().expect("seconds");
        assert!(secs > 0.0 && secs <= 120.0, "{r:?}");
        let mfe: f64 = r["mfe"].parse().expect("mfe");
        assert!(mfe >= 0.25, "a win moved at least the target: {r:?}");
    }

    // The report counts them among the ROUND wins, with an interval around the rate.
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["input"]["snaps"], 3599);
    for signal in ["BREAK", "REJECT"] {
        let r = row(&report, signal, "ROUND");
        assert!(r["wins"].as_u64() >= Some(1), "{r:#}");
        let (lo, rate, hi) = (
            r["win_rate_low"].as_f64().expect("low"),
            r["win_rate"].as_f64().expect("rate"),
            r["win_rate_high"].as_f64().expect("high"),
        );
        assert!(lo <= rate && rate <= hi, "{r:#}");
        assert!(r["base_touches"].as_u64() > Some(0), "a base rate: {r:#}");
    }
    let all = row(&report, "BREAK", "ALL");
    let edge = all["edge"].as_f64().expect("edge");
    let expected = (all["win_rate"].as_f64().expect("rate")
        - all["base_rate"].as_f64().expect("base"))
        * 100.0;
    assert!((edge - expected).abs() < 1e-9, "{all:#}");

    let svg = std::fs::read_to_string(&plot).expect("the plot");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(
        svg.contains("ROUND_687") && svg.contains("ROUND_690"),
        "level lines labelled"
    );
    assert!(!svg.contains("NaN"));
}

#[test]
fn the_report_is_byte_identical_across_runs_and_formats_agree() {
    let signals = sample_signals();
    let a = eval_ok(&signals, &["--format", "csv"]).stdout;
    let b = eval_ok(&signals, &["--format", "csv"]).stdout;
    assert_eq!(a, b);
    let json: Value =
        serde_json::from_slice(&eval_ok(&signals, &["--format", "json"]).stdout).expect("json");
    let csv = csv_rows(std::str::from_utf8(&a).expect("utf-8"));
    assert_eq!(csv.len(), json["rows"].as_array().expect("rows").len());
    for (c, j) in csv.iter().zip(json["rows"].as_array().expect("rows")) {
        assert_eq!(c["signal"], j["signal"].as_str().expect("signal"));
        assert_eq!(c["calls"], j["calls"].to_string());
    }
    let table = String::from_utf8(eval_ok(&signals, &[]).stdout).expect("utf-8");
    assert!(table.contains("3,599 snaps"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("BREAK   ALL")),
        "{table}"
    );
}

#[test]
fn the_lake_gold_table_read_back_gives_the_same_report_as_the_pipe() {
    let signals = sample_signals();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("lake");
    archive(&root, &signals, &[]);
    let back = cat(&root, &["--table", "levels/signals"]);
    assert_eq!(back.iter().filter(|&&b| b == b'\n').count(), 3599);
    let direct = eval_ok(&signals, &["--format", "json"]).stdout;
    let from_lake = eval_ok(&back, &["--format", "json"]).stdout;
    assert!(direct == from_lake, "the lake's snaps score differently");
}

#[test]
fn snaps_read_from_nats_score_the_same_as_the_pipe() {
    let server = NatsServer::start();
    let signals = sample_signals();
    // spm-core publishes to levels.signals by default.
    let mut publish = Command::new(env!("CARGO_BIN_EXE_spm-core"));
    publish.args(["--input", "stdin", "--nats-url", &server.url()]);
    let out = run_with_input(publish, &replay("ndjson"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let from_nats = eval()
        .args(["--input", "nats", "--from-start", "--count", "3599"])
        .args(["--format", "json", "--nats-url", &server.url()])
        .stdin(Stdio::null())
        .output()
        .expect("spm-eval");
    assert!(
        from_nats.status.success(),
        "{}",
        String::from_utf8_lossy(&from_nats.stderr)
    );
    let direct = eval_ok(&signals, &["--format", "json"]).stdout;
    assert!(direct == from_nats.stdout, "NATS snaps score differently");
}

#[test]
fn a_sweep_re_runs_the_engine_deterministically_and_its_default_value_matches_the_pipe() {
    let files = testdata_files();
    let sweep = |args: &[&str]| {
        let out = eval()
            .args(args)
            .arg("--")
            .args(&files)
            .stderr(Stdio::piped())
            .output()
            .expect("spm-eval --sweep");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let args = [
        "--sweep",
        "break_score_threshold=70,80",
        "--sweep",
        "trigger_hold_time_ms=1000,3000",
        "--format",
        "csv",
    ];
    let first = sweep(&args);
    assert_eq!(first, sweep(&args), "two sweeps differ");
    let text = String::from_utf8(first).expect("utf-8");
    let rows = csv_rows(&text);
    assert_eq!(rows.len(), 4);
    // The defaults (80, 3000) give what the pipe gives.
    let default = rows
        .iter()
        .find(|r| r["break_score_threshold"] == "80" && r["trigger_hold_time_ms"] == "3000")
        .expect("the default point");
    let pipe = csv_rows(
        std::str::from_utf8(&eval_ok(&sample_signals(), &["--format", "csv"]).stdout)
            .expect("utf-8"),
    );
    for signal in ["BREAK", "REJECT"] {
        let all = pipe
            .iter()
            .find(|r| r["signal"] == signal && r["level_kind"] == "ALL")
            .expect("ALL row");
        let key = signal.to_lowercase();
        assert_eq!(default[&format!("{key}_calls")], all["calls"], "{signal}");
        assert_eq!(default[&format!("{key}_edge")], all["edge"], "{signal}");
        assert_eq!(
            default[&format!("{key}_base_rate")],
            all["base_rate"],
            "{signal}"
        );
    }
    // A lower threshold calls more BREAKs.
    let calls = |t: &str| -> u64 {
        rows.iter()
            .find(|r| r["break_score_threshold"] == t && r["trigger_hold_time_ms"] == "3000")
            .expect("point")["break_calls"]
            .parse()
            .expect("count")
    };
    assert!(calls("70") > calls("80"));
}

#[test]
fn a_sweep_of_an_unknown_constant_is_refused_naming_the_known_ones() {
    let out = eval()
        .args(["--sweep", "brake_score=1,2", "--"])
        .args(testdata_files())
        .output()
        .expect("spm-eval");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`brake_score` is not a physics constant"),
        "{err}"
    );
    assert!(err.contains("break_score_threshold"), "{err}");
}

#[test]
fn malformed_lines_are_named_and_skipped_and_strict_stops_at_the_first() {
    let signals = sample_signals();
    let mut broken = Vec::new();
    for (i, line) in signals.split_inclusive(|&b| b == b'\n').enumerate() {
        if i == 100 {
            broken.extend_from_slice(b"{\"type\":\"level_signals\",\"ts\":\n");
        }
        broken.extend_from_slice(line);
    }
    let out = eval_ok(&broken, &["--format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdin: line 101:"), "{err}");
    assert!(err.contains("1 bad input items skipped"), "{err}");
    // Nothing valid is lost: the report equals the clean input's.
    assert!(out.stdout == eval_ok(&signals, &["--format", "json"]).stdout);

    let mut cmd = eval();
    cmd.arg("--strict");
    let strict = run_with_input(cmd, &broken);
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("line 101"));
}

#[test]
fn market_events_instead_of_snaps_say_to_run_spm_core_first() {
    let mut cmd = eval();
    cmd.stdout(Stdio::piped());
    let out = run_with_input(cmd, &replay("ndjson")[..20_000]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no level_signals"), "{err}");
    assert!(err.contains("spm-core --stdout"), "{err}");
}

#[test]
fn bad_settings_are_usage_errors() {
    for args in [
        &["--target", "-1"][..],
        &["--horizon", "soon"],
        &["--stop", "NaN"],
    ] {
        let out = eval()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("spm-eval");
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

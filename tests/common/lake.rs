//! Helpers of the lake's end-to-end tests: the bundled sample replayed, `spm-lake` runs, `cat`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

pub fn testdata_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".dbn.zst"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "bundled sample missing: {files:?}");
    files
}

/// `spm-replay testdata/*.dbn.zst` in the given pipe format.
pub fn replay(format: &str) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "stdout", "--format", format])
        .args(testdata_files())
        .stderr(Stdio::null())
        .output()
        .expect("spm-replay");
    assert!(out.status.success());
    out.stdout
}

pub fn lake() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spm-lake"))
}

/// Runs `spm-lake` with `input` on stdin.
pub fn run_with_input(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spm-lake");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("spm-lake");
    feeder.join().expect("feeder");
    out
}

pub fn archive(root: &Path, input: &[u8], args: &[&str]) -> Output {
    let mut cmd = lake();
    cmd.arg("--root").arg(root).args(args);
    let out = run_with_input(cmd, input);
    assert!(
        out.status.success(),
        "spm-lake failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn cat(root: &Path, args: &[&str]) -> Vec<u8> {
    let out = lake()
        .arg("--root")
        .arg(root)
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

pub fn core(input: &[u8]) -> Vec<u8> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spm-core"));
    cmd.arg("--stdout");
    let out = run_with_input(cmd, input);
    assert!(out.status.success());
    out.stdout
}

pub fn lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Reads every table of the lake at `root` with DuckDB, pyarrow and polars
/// (`tests/py/lake_readers.py`) and asserts they see exactly the events of `ndjson` (by event
/// time, to the nanosecond) and one gold row per level of each snap in `signals`. Returns the
/// readers' report.
pub fn check_with_readers(root: &Path, scratch: &Path, ndjson: &[u8], signals: &[u8]) -> String {
    let expected = expected_rows(ndjson, signals);
    let expected_path = scratch.join("expected.json");
    std::fs::write(&expected_path, expected.to_string()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/lake_readers.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(root)
        .arg(&expected_path)
        .output()
        .expect("python3");
    let report = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "DuckDB, pyarrow and polars are needed: run scripts/install-test-deps\n{stderr}"
    );
    assert!(out.status.success(), "{report}{stderr}");
    report.into_owned()
}

/// A random schedule for kills (xorshift, seeded from the clock; the seed is printed so a
/// failing run can be understood).
pub fn kill_schedule() -> impl FnMut() -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() as u64);
    eprintln!("kill schedule seed {seed}");
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// What the readers must see, as `tests/py/lake_readers.py` takes it: per bronze table every
/// row's event time, and for gold one row per level of each snap.
pub fn expected_rows(ndjson: &[u8], signals: &[u8]) -> Value {
    let mut expected = serde_json::Map::new();
    for line in ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap();
        let table = match v["type"].as_str().unwrap() {
            "futures_trade" => "bronze/futures/trades",
            "mbp10" => "bronze/futures/mbp10",
            "option_trade" => "bronze/options/trades",
            "stock_trade" => "bronze/stocks/trades",
            "stock_quote" => "bronze/stocks/quotes",
            other => panic!("unexpected {other}"),
        };
        let entry = expected.entry(table).or_insert_with(|| json!({"ts": []}));
        entry["ts"]
            .as_array_mut()
            .unwrap()
            .push(v["ts_event_ns"].clone());
    }
    let mut levels = Vec::new();
    for line in signals.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap();
        let ts_ns = v["ts"].as_u64().unwrap() * 1_000_000;
        for l in v["levels"].as_array().unwrap() {
            levels.push(json!([
                ts_ns,
                l["id"],
                l["price"],
                l["signal"],
                l["break_score_smooth"],
                l["barrier"]["state"],
                l["tape"]["imbalance"]
            ]));
        }
    }
    assert!(levels.len() > 1000);
    expected.insert("gold/levels/signals".into(), json!({"levels": levels}));
    Value::Object(expected)
}

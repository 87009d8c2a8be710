//! The dashboard in a real browser: the bundled sample replayed at 30× through `spm-core` into
//! `spm-gateway --input stdin`, the page opened in headless Debian Chromium (driven by
//! playwright-core, tests/browser/dashboard.mjs), and the DOM checked: the ladder shows the
//! active levels with their signals, the scripted BREAK of 687 appears, nothing outside the
//! gateway was requested. The screenshot is kept under target/tmp/.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};

use common::gateway::Gateway;
use serde_json::Value;

#[test]
fn the_dashboard_in_chromium_shows_the_ladder_and_the_scripted_break_at_687() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian chromium is needed (scripts/install-test-deps installs it: apt-get install chromium)"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is needed (scripts/install-test-deps: cd tests/browser && npm ci)"
    );
    let files = common::lake::testdata_files();
    let mut replay = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "30"])
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spm-replay");
    let mut core = Command::new(env!("CARGO_BIN_EXE_spm-core"))
        .arg("--stdout")
        .stdin(Stdio::from(replay.stdout.take().expect("replay stdout")))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spm-core");
    let gw = Gateway::start(
        &["--input", "stdin"],
        Stdio::from(core.stdout.take().expect("core stdout")),
        &[],
    );
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let out = Command::new("node")
        .arg(root.join("tests/browser/dashboard.mjs"))
        .arg(format!("http://127.0.0.1:{}/", gw.port))
        .arg(&shot)
        .arg("90000")
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "the browser run failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dom: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("the driver's JSON ({e}): {stdout}"));
    eprintln!("dashboard DOM: {dom}\nscreenshot: {}", shot.display());

    assert_eq!(dom["connected"], true, "{dom}");
    assert!(
        dom["payload_count"].as_u64().unwrap_or(0) > 10,
        "payloads reached the page: {dom}"
    );
    assert!(!dom["event_time"].as_str().unwrap_or("").is_empty());
    // The ladder: active levels of the snaps, each with a signal.
    let snaps = common::gateway::sample_signals();
    let known: HashSet<String> = snaps
        .iter()
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .flat_map(|v| {
            v["levels"]
                .as_array()
                .map(|ls| {
                    ls.iter()
                        .filter_map(|l| l["id"].as_str().map(String::from))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .collect();
    let ladder = dom["ladder"].as_array().expect("ladder");
    assert!(
        ladder.len() >= 2,
        "the ladder shows the active levels: {dom}"
    );
    let signals = ["BREAK", "REJECT", "CONTESTED", "NEUTRAL"];
    for row in ladder {
        let id = row["id"].as_str().expect("id");
        assert!(
            signals.contains(&row["signal"].as_str().unwrap_or("")),
            "row {row}"
        );
        assert!(
            known.contains(id),
            "ladder row {id} is a level of the snaps"
        );
    }
    assert_eq!(
        dom["ladder_spot_row"], true,
        "spot has its place in the ladder"
    );
    // The scripted BREAK of the 687 support, as a call on the page.
    let calls = dom["calls"].as_array().expect("calls");
    assert!(
        calls.iter().any(|c| c["signal"] == "BREAK"
            && c["price"]
                .as_str()
                .map_or(c["price"] == 687, |p| p == "687")),
        "the BREAK at 687 is on the page: {dom}"
    );
    assert!(
        !dom["detail_level_id"].as_str().unwrap_or("").is_empty(),
        "a selected level's physics is shown"
    );
    let detail = dom["detail_text"]
        .as_str()
        .unwrap_or("")
        .to_ascii_lowercase();
    for word in ["barrier", "tape", "fuel"] {
        assert!(
            detail.contains(word),
            "the detail panel shows the {word}: {detail}"
        );
    }
    assert_eq!(
        dom["foreign_requests"],
        serde_json::json!([]),
        "nothing outside the gateway is reached"
    );
    assert_eq!(
        dom["console_errors"],
        serde_json::json!([]),
        "no errors in the page"
    );
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "a screenshot was taken ({size} bytes at {})",
        shot.display()
    );
    let _ = replay.kill();
    let _ = core.kill();
    let _ = replay.wait();
    let _ = core.wait();
}

//! `spm-tap --stdin`: formatting a pipe, without NATS.

use std::io::Write;
use std::process::{Command, Stdio};

use spymaster::bus::testing::synthetic_mbp10;
use spymaster::event::{Event, LevelSignal, LevelSignals, SpyQuote};

fn tap(args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn snap(ts: i64, signal: &str) -> Event {
    Event::LevelSignals(LevelSignals {
        ts,
        spy: SpyQuote {
            spot: Some(687.1),
            bid: Some(687.09),
            ask: Some(687.11),
        },
        levels: vec![LevelSignal {
            id: "ROUND_687".into(),
            price: 687.0,
            signal: signal.into(),
            ..Default::default()
        }],
    })
}

#[test]
fn stdin_json_reprints_good_lines_and_warns_about_bad_ones_with_their_line() {
    let a = synthetic_mbp10(1).to_json();
    let b = synthetic_mbp10(2).to_json();
    let (code, out, err) = tap(&["--stdin"], &format!("{a}\n{{broken\n{b}\n"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{a}\n{b}\n"));
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn stdin_table_prints_one_plain_block_per_snap_off_a_terminal() {
    let input = format!(
        "{}\n{}\n",
        snap(1_000, "BREAK").to_json(),
        snap(1_250, "REJECT").to_json()
    );
    let (code, out, err) = tap(&["--stdin", "--format", "table"], &input);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains('\x1b'));
    let blocks: Vec<&str> = out.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{out}");
    assert!(blocks[0].contains("ROUND_687") && blocks[0].contains("BREAK"));
    assert!(blocks[1].contains("REJECT"));
}

#[test]
fn stdin_count_stops_early() {
    let lines: String = (0..5)
        .map(|i| synthetic_mbp10(i).to_json() + "\n")
        .collect();
    let (code, out, _) = tap(&["--stdin", "--count", "2"], &lines);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2);
}

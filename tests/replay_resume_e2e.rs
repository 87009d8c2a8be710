//! End-to-end: `spm-replay --output nats` publishes exactly once through fast-ingest batches,
//! on the pinned nats-server — killed and run again, with the server killed under it, and
//! against a second replay writing the same stream at the same time.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::nats::{NatsServer, assert_exactly_once_in_order, stored_positions};
use spymaster::bus::{Bus, BusConfig, MARKET_DATA_STREAM};

/// Events in the bundled sample (testdata/*.dbn.zst), as `spm-replay` prints them.
const SAMPLE_EVENTS: u64 = 393_088;

fn sample_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".dbn.zst"))
        .collect();
    files.sort();
    files
}

fn replay(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spm-replay"));
    cmd.args(["--speed", "0", "--output", "nats", "--nats-url", url])
        .args(sample_files())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("wait for spm-replay")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stream_count(url: &str) -> u64 {
    Bus::connect(&BusConfig::new(url))
        .expect("connect")
        .stream_message_count(MARKET_DATA_STREAM)
        .unwrap_or(0)
}

/// A delay drawn from the clock, in `lo..hi` milliseconds, printed so a failure can be replayed.
fn random_delay(lo: u64, hi: u64) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let ms = lo + nanos % (hi - lo);
    println!("random moment: {ms} ms after the first stored message");
    Duration::from_millis(ms)
}

/// Waits until the stream holds at least one message (the replay is publishing).
fn wait_until_publishing(url: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stream_count(url) == 0 {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "spm-replay ended before publishing anything"
        );
        assert!(
            Instant::now() < deadline,
            "spm-replay published nothing in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_replay_killed_at_a_random_moment_and_run_again_stores_each_event_exactly_once() {
    let server = NatsServer::start();
    let url = server.url();
    let mut killed_at = None;
    for attempt in 0..4 {
        let mut child = replay(&url).spawn().expect("spm-replay");
        wait_until_publishing(&url, &mut child);
        std::thread::sleep(random_delay(0, 600 >> attempt));
        child.kill().expect("SIGKILL");
        let out = finish(child);
        let stored = stream_count(&url);
        if out.status.signal() == Some(9) && stored < SAMPLE_EVENTS {
            killed_at = Some(stored);
            break;
        }
        // The replay had finished before the kill: start over on an empty stream.
        let bus = Bus::connect(&BusConfig::new(&url)).expect("connect");
        let client = bus.client().clone();
        bus.runtime()
            .block_on(async move {
                async_nats::jetstream::new(client)
                    .delete_stream(MARKET_DATA_STREAM)
                    .await
            })
            .expect("delete the stream");
    }
    let killed_at = killed_at.expect("no attempt killed the replay mid-way");
    println!("killed with {killed_at} of {SAMPLE_EVENTS} events stored");

    let out = finish(replay(&url).spawn().expect("spm-replay again"));
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("already in the stream, not sent again"),
        "the re-run says it resumed: {err}"
    );
    assert!(
        err.contains("previous writer is gone"),
        "the re-run takes the killed replay's writer lock over at once: {err}"
    );
    let stored = stored_positions(&url, MARKET_DATA_STREAM);
    assert_exactly_once_in_order(&stored, SAMPLE_EVENTS);
    // Two writers: the killed run and the re-run, each in one stretch.
    let writers: std::collections::BTreeSet<_> = stored
        .iter()
        .filter_map(|m| m.position.as_ref().map(|p| &p.writer))
        .collect();
    assert_eq!(writers.len(), 2, "{writers:?}");

    // A third run publishes nothing.
    let out = finish(replay(&url).spawn().expect("spm-replay a third time"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stream_count(&url), SAMPLE_EVENTS);
}

#[test]
fn a_replay_stopped_with_sigint_exits_0_and_a_rerun_publishes_exactly_the_rest() {
    let server = NatsServer::start();
    let url = server.url();
    let mut child = replay(&url).spawn().expect("spm-replay");
    wait_until_publishing(&url, &mut child);
    std::thread::sleep(random_delay(0, 300));
    let pid = child.id().to_string();
    let ok = Command::new("kill").args(["-INT", &pid]).status();
    assert!(ok.is_ok_and(|s| s.success()), "kill -INT");
    let out = finish(child);
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "SIGINT stops, flushes and exits 0: {err}"
    );
    let stored = stream_count(&url);
    println!("stopped with {stored} of {SAMPLE_EVENTS} events stored\n{err}");
    let out = finish(replay(&url).spawn().expect("spm-replay again"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exactly_once_in_order(&stored_positions(&url, MARKET_DATA_STREAM), SAMPLE_EVENTS);
}

#[test]
fn the_server_killed_and_restarted_mid_replay_loses_and_duplicates_nothing() {
    let mut server = NatsServer::start();
    let url = server.url();
    let mut child = replay(&url).spawn().expect("spm-replay");
    wait_until_publishing(&url, &mut child);
    std::thread::sleep(random_delay(50, 500));
    let before = stream_count(&url);
    server.kill_and_restart().expect("restart nats-server");
    let first = finish(child);
    let err = stderr(&first);
    println!(
        "server killed at ~{before} stored events; first replay: {:?}\n{err}",
        first.status
    );
    if !first.status.success() {
        // Riding through is the rule; when it cannot (the server lost more than the replay
        // keeps), the error must say what to do.
        assert!(
            err.contains("Run again") || err.contains("did not come back"),
            "{err}"
        );
    }
    let out = finish(replay(&url).spawn().expect("spm-replay again"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exactly_once_in_order(&stored_positions(&url, MARKET_DATA_STREAM), SAMPLE_EVENTS);
}

#[test]
fn a_second_replay_into_the_same_stream_while_the_first_runs_is_refused() {
    let server = NatsServer::start();
    let url = server.url();
    let mut first = replay(&url).spawn().expect("first spm-replay");
    let first_pid = first.id();
    wait_until_publishing(&url, &mut first);
    let second = finish(replay(&url).spawn().expect("second spm-replay"));
    let first = finish(first);
    let (a, b) = (stderr(&first), stderr(&second));
    println!(
        "first: {:?}\n{a}\nsecond: {:?}\n{b}",
        first.status, second.status
    );
    // The newcomer is refused with a clear error naming the running replay; the first completes.
    assert!(first.status.success(), "first: {:?}\n{a}", first.status);
    assert_eq!(second.status.code(), Some(1), "second:\n{b}");
    assert!(
        b.contains("another publisher")
            && b.contains("refusing to interleave")
            && b.contains(&format!("pid {}", first_pid)),
        "second:\n{b}"
    );
    assert_exactly_once_in_order(&stored_positions(&url, MARKET_DATA_STREAM), SAMPLE_EVENTS);
}

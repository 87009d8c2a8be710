//! End-to-end with a real `nats-server` (JetStream, file storage): replay onto the bus and read
//! it back with `spm-tap`, byte for byte against the pipe.

mod common;

use std::process::Command;

use common::samples::{samples_dir, write_repeated_mbp10};
use spymaster::bus::testing::NatsServer;

const EVENTS: u64 = 100_000;

#[test]
fn replay_to_nats_read_back_by_tap_equals_replay_to_stdout() {
    let Some(dir) = samples_dir() else { return };
    let server = NatsServer::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("es.mbp-10.dbn");
    write_repeated_mbp10(&dir.join("test_data.mbp-10.dbn"), &file, EVENTS);

    let piped = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args(["--speed", "0", "--output", "stdout"])
        .arg(&file)
        .output()
        .expect("spm-replay to stdout");
    assert!(piped.status.success());
    assert_eq!(
        piped.stdout.iter().filter(|&&b| b == b'\n').count() as u64,
        EVENTS
    );

    let published = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args([
            "--speed",
            "0",
            "--output",
            "nats",
            "--nats-url",
            &server.url(),
        ])
        .arg(&file)
        .output()
        .expect("spm-replay to nats");
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );

    let tapped = Command::new(env!("CARGO_BIN_EXE_spm-tap"))
        .args(["market.>", "--from-start", "--count", &EVENTS.to_string()])
        .args(["--nats-url", &server.url()])
        .output()
        .expect("spm-tap");
    assert!(
        tapped.status.success(),
        "{}",
        String::from_utf8_lossy(&tapped.stderr)
    );
    assert!(
        tapped.stdout == piped.stdout,
        "NATS round trip differs from the pipe ({} vs {} bytes)",
        tapped.stdout.len(),
        piped.stdout.len()
    );

    // A second identical replay resumes after what the stream holds (its position headers)
    // and publishes nothing: the stream still holds EVENTS.
    let again = Command::new(env!("CARGO_BIN_EXE_spm-replay"))
        .args([
            "--speed",
            "0",
            "--output",
            "nats",
            "--nats-url",
            &server.url(),
        ])
        .arg(&file)
        .output()
        .expect("spm-replay again");
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already in the stream, not sent again"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let bus = spymaster::bus::Bus::connect(&spymaster::bus::BusConfig::new(server.url()))
        .expect("connect");
    assert_eq!(
        bus.stream_message_count("MARKET_DATA")
            .expect("stream info"),
        EVENTS,
        "a re-run replay publishes nothing twice"
    );
}

//! Replay to JetStream at full speed, side by side with the server's own ceiling, in one run:
//!
//! 1. `spm-replay --speed 0 --output nats` of the full synthetic 6.5 h session (`spm-synth`,
//!    SPM_BENCH_HOURS for a shorter one) into the `MARKET_DATA` stream with the settings
//!    `just up` uses (file storage, async persistence, fast-ingest batches): events/s and the
//!    replay's peak memory;
//! 2. the ceiling: a bare client publishing the very same JSON payloads (read from an NDJSON
//!    copy of the session, made outside the timed region) with the same protocol — fast-ingest
//!    batches of 10 000, flow 500, a window of 4 096, the same headers, the same calls of the
//!    same client — and no decoding, JSON or retention at all: messages/s, and our share of it;
//! 3. for reference, the low-rate path: 200 000 events through `NatsSink` (an acked publish with
//!    a `Nats-Msg-Id` per event).
//!
//! Each run starts on a server of its own with an empty store and the same memory: the page
//! cache emptied (as root), then both runs' inputs read into it — the NDJSON payloads and the
//! DBN files, whichever run it is. That matters on a virtual machine that hands freed memory back
//! to its host (free page reporting, as here): the stream's writes into pages the host took
//! back cost the server about a third more CPU per message (perf: 21 % of all samples in
//! `copy_folio_from_iter_atomic` under nats-server's writes). A run whose cache held 17 GB of
//! payloads reused those pages for the stream; one that did not paid for it, ~25 % slower. Targets: replay ≥ 200 000
//! events/s and ≥ 80 % of the ceiling.

mod support;

use std::process::{Command, Stdio};
use std::time::Instant;

use spymaster::bus::testing::{NATS_SERVER_VERSION, NatsServer, synthetic_mbp10};
use spymaster::bus::{Bus, BusConfig, MARKET_DATA_STREAM, SinkSettings};
use spymaster::io::EventSink;

use support::bare::{bare_fast_ingest, children_cpu_secs, cpu_secs, per_msg_us};
use support::{mb, measure, rate, session};

/// Read calls and bytes read of a process so far (Linux `/proc/{pid}/io`, as its owner or root).
fn reads(pid: u32) -> Option<(u64, u64)> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("syscr:")?, field("rchar:")?))
}

/// How the server took the bytes in: reads per 1 000 messages and the mean read.
fn describe_reads(before: Option<(u64, u64)>, after: Option<(u64, u64)>, msgs: u64) -> String {
    match before.zip(after) {
        Some(((c0, b0), (c1, b1))) if c1 > c0 && msgs > 0 => format!(
            "{:.1} reads per 1 000 msgs, {:.1} KB each",
            (c1 - c0) as f64 * 1000.0 / msgs as f64,
            (b1 - b0) as f64 / (c1 - c0) as f64 / 1024.0
        ),
        _ => "reads unknown".to_string(),
    }
}

/// Writes dirty pages out and empties the page cache (Linux, as root; otherwise says why not).
fn drop_page_cache() {
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    let dropped = std::fs::write("/proc/sys/vm/drop_caches", b"1\n");
    if !synced || dropped.is_err() {
        println!(
            "cannot empty the page cache ({}): the two runs may see different memory",
            dropped
                .err()
                .map_or("sync failed".to_string(), |e| e.to_string())
        );
    }
}

fn delete_stream(bus: &Bus, name: &str) {
    let client = bus.client().clone();
    let _ = bus
        .runtime()
        .block_on(async move { async_nats::jetstream::new(client).delete_stream(name).await });
}

fn main() -> anyhow::Result<()> {
    let hours: f64 = std::env::var("SPM_BENCH_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6.5);
    let files = session(hours);
    println!("nats-server {NATS_SERVER_VERSION}, JetStream file storage, {hours} h session");

    // Both runs start from an empty stream on a freshly started server. SPM_BENCH_ORDER lists
    // the runs (default `ours,ceiling`); the ratio is taken from the last of each.
    let payloads = support::session_pipe(&files, hours, "ndjson");
    let order = std::env::var("SPM_BENCH_ORDER").unwrap_or_else(|_| "ours,ceiling".into());
    let (mut ours, mut ceiling) = (None, None);
    for step in order.split(',').map(str::trim) {
        anyhow::ensure!(
            step == "ours" || step == "ceiling",
            "SPM_BENCH_ORDER takes `ours` and `ceiling`, got {step:?}"
        );
        let run_ceiling = step == "ceiling";
        // A new server and store for each run (the last one's store is removed with it).
        let server = NatsServer::start();
        let url = server.url();
        let bus = Bus::connect(&BusConfig::new(&url))?;
        let pid = server.pid().unwrap_or(0);
        // The same memory for both (see the module documentation).
        drop_page_cache();
        support::warm_page_cache(std::slice::from_ref(&payloads));
        support::warm_page_cache(&files);
        if run_ceiling {
            // 2. The bare ceiling on the same payloads, with the same settings.
            bus.ensure_streams()?;
            let (server0, reads0) = (cpu_secs(pid), reads(pid));
            let client0 = cpu_secs(std::process::id());
            let (sent, secs) = bare_fast_ingest(&bus, &payloads)?;
            let client_cpu = cpu_secs(std::process::id())
                .zip(client0)
                .map(|(b, a)| b - a);
            let server_cpu = cpu_secs(pid).zip(server0).map(|(b, a)| b - a);
            let server_reads = describe_reads(reads0, reads(pid), sent);
            let stored = bus.stream_message_count(MARKET_DATA_STREAM)?;
            anyhow::ensure!(stored == sent, "stream holds {stored}, sent {sent}");
            let rate = sent as f64 / secs;
            println!(
                "bare client, same protocol: {sent} msgs in {secs:.2} s = {rate:>9.0} msgs/s (client CPU {:.1} us/msg; nats-server CPU {:.1} us/msg, {server_reads})",
                per_msg_us(client_cpu, sent),
                per_msg_us(server_cpu, sent),
            );
            ceiling = Some((sent, rate));
        } else {
            // 1. Our replay, as a user runs it.
            let (server0, reads0) = (cpu_secs(pid), reads(pid));
            let log = support::data_dir().join("nats_publish-replay.log");
            let client0 = children_cpu_secs();
            let run = measure(
                Command::new(env!("CARGO_BIN_EXE_spm-replay"))
                    .args(["--speed", "0", "--output", "nats", "--nats-url", &url])
                    .args(&files)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(&log)?),
            );
            anyhow::ensure!(
                run.status.success(),
                "spm-replay --output nats failed ({}); its log, {}:\n{}",
                run.status,
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            let server_cpu = cpu_secs(pid).zip(server0).map(|(b, a)| b - a);
            let client_cpu = children_cpu_secs().zip(client0).map(|(b, a)| b - a);
            let events = bus.stream_message_count(MARKET_DATA_STREAM)?;
            let server_reads = describe_reads(reads0, reads(pid), events);
            let r = rate(events, run.wall);
            println!(
                "spm-replay -> JetStream : {events} events in {:.2} s = {r:>9.0} events/s (peak RSS {:.1} MB; client CPU {:.1} us/event; nats-server CPU {:.1} us/event, {server_reads}; target >= 200 000/s)",
                run.wall.as_secs_f64(),
                mb(run.peak_rss),
                per_msg_us(client_cpu, events),
                per_msg_us(server_cpu, events),
            );
            ours = Some((events, r));
        }
        delete_stream(&bus, MARKET_DATA_STREAM);
    }
    if let (Some((events, ours)), Some((sent, ceiling))) = (ours, ceiling) {
        anyhow::ensure!(
            sent == events,
            "payloads {sent} != replayed events {events}"
        );
        println!(
            "spm-replay / ceiling    : {:.1} % (target >= 80 %)",
            100.0 * ours / ceiling
        );
    }
    let server = NatsServer::start();
    let bus = Bus::connect(&BusConfig::new(server.url()))?;

    // 3. The low-rate path, for reference.
    let n = 200_000;
    let batch: Vec<_> = (0..n).map(synthetic_mbp10).collect();
    let mut sink = bus.sink(SinkSettings::default())?;
    let start = Instant::now();
    for ev in &batch {
        sink.send(ev)?;
    }
    sink.finish()?;
    println!(
        "NatsSink (ack + msg id per event): {:>9.0} events/s",
        rate(n, start.elapsed())
    );
    Ok(())
}

//! Publishes 500 000 MBP-10 events through `NatsSink` to a JetStream file-storage stream on a
//! local `nats-server` it starts itself, and prints the rate.

use std::time::Instant;

use spymaster::bus::testing::{NatsServer, synthetic_mbp10};
use spymaster::bus::{Bus, BusConfig, SinkSettings};
use spymaster::io::EventSink;

/// User + system CPU seconds of a process so far (Linux `/proc`; `None` elsewhere).
fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is parenthesised and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::var("SPM_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let Some(server) = NatsServer::start() else {
        return Ok(());
    };
    let bus = Bus::connect(&BusConfig::new(server.url()))?;
    let events: Vec<_> = (0..n).map(synthetic_mbp10).collect();
    let mut sink = bus.sink(SinkSettings::default())?;
    let server_pid = server.pid().map(|p| p.to_string()).unwrap_or_default();
    let (client0, server0) = (cpu_secs("self"), cpu_secs(&server_pid));
    let start = Instant::now();
    for ev in &events {
        sink.send(ev)?;
    }
    sink.finish()?;
    let secs = start.elapsed().as_secs_f64();
    let (client1, server1) = (cpu_secs("self"), cpu_secs(&server_pid));
    let stored = bus.stream_message_count(spymaster::bus::MARKET_DATA_STREAM)?;
    anyhow::ensure!(stored == n, "stream holds {stored} messages, expected {n}");
    println!(
        "nats publish: {n} events in {secs:.2} s = {:.0} events/s",
        n as f64 / secs
    );
    if let (Some(c0), Some(c1), Some(s0), Some(s1)) = (client0, client1, server0, server1) {
        println!(
            "cpu per event: client {:.1} us, nats-server {:.1} us",
            (c1 - c0) * 1e6 / n as f64,
            (s1 - s0) * 1e6 / n as f64
        );
    }
    drop(server);
    Ok(())
}

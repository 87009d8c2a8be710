//! Publishes 500 000 MBP-10 events through `NatsSink` to a JetStream file-storage stream on a
//! local `nats-server` it starts itself, and prints the rate.

use std::time::Instant;

use spymaster::bus::testing::{NatsServer, synthetic_mbp10};
use spymaster::bus::{Bus, BusConfig, SinkSettings};
use spymaster::io::EventSink;

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
    let start = Instant::now();
    for ev in &events {
        sink.send(ev)?;
    }
    sink.finish()?;
    let secs = start.elapsed().as_secs_f64();
    let stored = bus.stream_message_count(spymaster::bus::MARKET_DATA_STREAM)?;
    anyhow::ensure!(stored == n, "stream holds {stored} messages, expected {n}");
    println!(
        "nats publish: {n} events in {secs:.2} s = {:.0} events/s",
        n as f64 / secs
    );
    drop(server);
    Ok(())
}

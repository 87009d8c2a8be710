//! Publishes 500 000 MBP-10 events through `NatsSink` to a JetStream file-storage stream on a
//! local `nats-server` it starts itself, and prints the rate.
//!
//! Then the server's own ceiling on this machine: a minimal client publishing fixed 1 KB
//! payloads (the size of an MBP-10 line) with no JSON work at all, once as the sink does (a
//! `Nats-Msg-Id` and an ack per message), once with ids and no acks, once with neither.

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
    for (ids, acks) in [(true, true), (true, false), (false, false)] {
        let (rate, server_us) = ceiling(&bus, &server_pid, n.min(300_000), ids, acks)?;
        println!(
            "server ceiling, bare 1 KB publishes (msg id {}, ack {}): {rate:>7.0} msgs/s, nats-server {server_us:.1} us/msg",
            if ids { "yes" } else { "no " },
            if acks { "yes" } else { "no " },
        );
    }
    drop(server);
    Ok(())
}

/// Publishes `n` fixed payloads to a fresh file-storage stream; returns (messages/s, server
/// CPU µs per message). Without acks, the end is when the stream holds all `n`.
fn ceiling(
    bus: &Bus,
    server_pid: &str,
    n: u64,
    ids: bool,
    acks: bool,
) -> anyhow::Result<(f64, f64)> {
    use async_nats::jetstream::{self, stream};
    use futures::StreamExt;
    use std::time::Duration;
    let client = bus.client().clone();
    bus.runtime().block_on(async move {
        let js = jetstream::new(client.clone());
        let _ = js.delete_stream("CEILING").await;
        let mut s = js
            .create_stream(stream::Config {
                name: "CEILING".into(),
                subjects: vec!["ceiling.>".into()],
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await?;
        let inbox = client.new_inbox();
        let mut replies = client.subscribe(format!("{inbox}.*")).await?;
        let payload = bytes::Bytes::from(vec![b'x'; 1050]);
        let server0 = cpu_secs(server_pid);
        let start = Instant::now();
        let mut acked = 0u64;
        for i in 0..n {
            while acks && i - acked >= 4096 {
                replies.next().await;
                acked += 1;
            }
            let mut headers = async_nats::HeaderMap::new();
            if ids {
                headers.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    format!("1764000000{i:09}-0-0123456789abcdef").as_str(),
                );
            }
            if acks {
                client
                    .publish_with_reply_and_headers(
                        "ceiling.m",
                        format!("{inbox}.{i}"),
                        headers,
                        payload.clone(),
                    )
                    .await?;
            } else {
                client
                    .publish_with_headers("ceiling.m", headers, payload.clone())
                    .await?;
            }
        }
        client.flush().await?;
        while acks && acked < n {
            replies.next().await;
            acked += 1;
        }
        while s.info().await?.state.messages < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let server_us = match (server0, cpu_secs(server_pid)) {
            (Some(a), Some(b)) => (b - a) * 1e6 / n as f64,
            _ => f64::NAN,
        };
        js.delete_stream("CEILING").await?;
        Ok((n as f64 / secs, server_us))
    })
}

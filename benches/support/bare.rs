//! The bare client the publishing benchmarks measure our replay against: the same JSON
//! payloads, the same fast-ingest batch protocol and the same client calls as
//! [`spymaster::bus::BatchSink`], minus decoding, merging and JSON; and the CPU counters they
//! print.

use std::path::Path;
use std::time::{Duration, Instant};

use spymaster::bus::Bus;

/// User + system CPU seconds of a process so far (Linux `/proc`; `None` elsewhere).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    stat_ticks(&format!("/proc/{pid}/stat"), 11)
}

/// User + system CPU seconds of this process's waited-for children so far (Linux `/proc`).
pub fn children_cpu_secs() -> Option<f64> {
    stat_ticks("/proc/self/stat", 13)
}

/// The sum of the two clock-tick fields from `first` (counted after the command name) of a
/// `/proc` stat file, in seconds.
fn stat_ticks(path: &str, first: usize) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is parenthesised and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        fields.get(first)?.parse::<f64>().ok()? + fields.get(first + 1)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub fn per_msg_us(secs: Option<f64>, msgs: u64) -> f64 {
    secs.map_or(f64::NAN, |c| c * 1e6 / msgs.max(1) as f64)
}

/// Publishes every line of `path` as fast-ingest batches to its subject; returns the messages
/// sent and the seconds from the first publish to the last commit's PubAck. Built like the
/// sink — this thread reads, a task on the bus runtime publishes, chunks of 256 payloads cut
/// from one shared block each — minus decoding and JSON.
pub fn bare_fast_ingest(bus: &Bus, path: &Path) -> anyhow::Result<(u64, f64)> {
    use std::io::Read;
    type Chunk = Vec<(&'static str, bytes::Bytes)>;
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(16);
    let task = bus
        .runtime()
        .spawn(bare_publisher(bus.client().clone(), rx));
    let mut file = std::fs::File::open(path)?;
    // Whole lines of `block` go out as one chunk's payloads; the tail is carried over.
    const BLOCK: usize = 256 * 768;
    let mut block = Vec::with_capacity(BLOCK);
    let mut eof = false;
    let started = Instant::now();
    while !eof {
        while block.len() < BLOCK && !eof {
            let len = block.len();
            block.resize(BLOCK.max(len + 4096), 0);
            let n = file.read(&mut block[len..])?;
            block.truncate(len + n);
            eof = n == 0;
        }
        let whole = match block.iter().rposition(|&b| b == b'\n') {
            Some(end) => end + 1,
            None if eof => block.len(),
            None => continue,
        };
        let rest = block[whole..].to_vec();
        block.truncate(whole);
        let shared = bytes::Bytes::from(std::mem::replace(&mut block, rest));
        block.reserve(BLOCK);
        let mut chunk: Chunk = Vec::with_capacity(256);
        let mut start = 0;
        for line in shared.split(|&b| b == b'\n') {
            let end = start + line.len();
            if !line.is_empty() {
                chunk.push((subject_of(line)?, shared.slice(start..end)));
            }
            start = end + 1;
            if chunk.len() == 256 {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(256));
                if tx.blocking_send(full).is_err() {
                    break; // the publisher stopped: its error is reported below
                }
            }
        }
        if !chunk.is_empty() && tx.blocking_send(chunk).is_err() {
            break;
        }
    }
    drop(tx);
    let sent = bus.runtime().block_on(task)??;
    Ok((sent, started.elapsed().as_secs_f64()))
}

async fn bare_publisher(
    client: async_nats::Client,
    mut rx: tokio::sync::mpsc::Receiver<Vec<(&'static str, bytes::Bytes)>>,
) -> anyhow::Result<u64> {
    use futures::StreamExt;
    const BATCH: u64 = 10_000;
    const WINDOW: u64 = 4096;
    let inbox = client.new_inbox();
    let writer = inbox.rsplit('.').next().unwrap_or("w").to_string();
    let prefix = format!("{inbox}.{writer}");
    let mut replies = client.subscribe(format!("{inbox}.>")).await?;
    let (mut sent, mut confirmed, mut commits_pending) = (0u64, 0u64, 0u32);
    let (mut batch_no, mut seq, mut base) = (0u64, 0u64, 0u64);
    let mut last_subject = "market.futures.mbp10";
    // Every reply: a flow ack (batch k stored up to its sequence N, so every message up to
    // k * BATCH + N: only the last batch is short) or a commit's PubAck.
    let on_reply =
        |m: async_nats::Message, confirmed: &mut u64, pending: &mut u32| -> anyhow::Result<()> {
            let v: serde_json::Value = serde_json::from_slice(&m.payload)?;
            anyhow::ensure!(v.get("error").is_none(), "server error: {v}");
            let k: u64 = m
                .subject
                .as_str()
                .strip_prefix(prefix.as_str())
                .and_then(|r| r.split('.').next())
                .and_then(|k| k.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("reply on {}", m.subject))?;
            let n = match v.get("type").and_then(|t| t.as_str()) {
                Some("ack") => v["seq"].as_u64().unwrap_or(0),
                Some(other) => anyhow::bail!("unexpected {other}: {v}"),
                None => {
                    *pending -= 1;
                    v["count"].as_u64().unwrap_or(0)
                }
            };
            *confirmed = (*confirmed).max(k * BATCH + n);
            Ok(())
        };
    while let Some(chunk) = rx.recv().await {
        for (subject, payload) in chunk {
            while sent - confirmed >= WINDOW {
                let m = replies
                    .next()
                    .await
                    .ok_or_else(|| anyhow::anyhow!("replies ended"))?;
                on_reply(m, &mut confirmed, &mut commits_pending)?;
            }
            seq += 1;
            let op = if seq == BATCH {
                2
            } else if seq == 1 {
                0
            } else {
                1
            };
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Spm-Pos", format!("0123456789abcdef {sent} {writer}"));
            if seq == 1 {
                headers.insert(
                    async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                    base.to_string(),
                );
            }
            let reply = format!("{inbox}.{writer}{batch_no}.500.fail.{seq}.{op}.$FI");
            client
                .publish_with_reply_and_headers(
                    subject,
                    async_nats::Subject::from(reply),
                    headers,
                    payload,
                )
                .await?;
            last_subject = subject;
            sent += 1;
            if seq == BATCH {
                commits_pending += 1;
                base += seq;
                batch_no += 1;
                seq = 0;
            }
        }
    }
    if seq > 0 {
        // End of input: commit the open batch without a message.
        let reply = format!("{inbox}.{writer}{batch_no}.500.fail.{}.3.$FI", seq + 1);
        client
            .publish_with_reply_and_headers(
                last_subject,
                reply,
                async_nats::HeaderMap::new(),
                bytes::Bytes::new(),
            )
            .await?;
        commits_pending += 1;
    }
    while commits_pending > 0 {
        let m = tokio::time::timeout(Duration::from_secs(30), replies.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("replies ended"))?;
        on_reply(m, &mut confirmed, &mut commits_pending)?;
    }
    Ok(sent)
}

/// The subject of a JSON event line, from its leading `type`.
fn subject_of(line: &[u8]) -> anyhow::Result<&'static str> {
    use spymaster::event::subject;
    let rest = line
        .strip_prefix(br#"{"type":""#)
        .ok_or_else(|| anyhow::anyhow!("a line without a leading type"))?;
    let kind = &rest[..rest.iter().position(|&b| b == b'"').unwrap_or(0)];
    Ok(match kind {
        b"futures_trade" => subject::FUTURES_TRADES,
        b"mbp10" => subject::FUTURES_MBP10,
        b"option_trade" => subject::OPTIONS_TRADES,
        b"stock_trade" => subject::STOCKS_TRADES,
        b"stock_quote" => subject::STOCKS_QUOTES,
        other => anyhow::bail!("unknown type {}", String::from_utf8_lossy(other)),
    })
}

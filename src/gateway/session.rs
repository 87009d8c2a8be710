//! One WebSocket client of `/ws/stream`: the latest payload first, then every payload its
//! queue hands over, pings to see that it is alive, and eviction (close 1008 with the reason)
//! when it stops reading: a write that does not complete within the stall timeout, or no
//! frame from it (pongs included) for longer than that.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{SinkExt, StreamExt};

use super::hub::{Hub, Payload, Registration};

/// Close code for an evicted client (policy violation: it stopped reading).
pub const CLOSE_STALLED: u16 = 1008;
/// Close code when the gateway shuts down.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Keep-alive and eviction settings.
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    pub stall_timeout: Duration,
    pub ping_interval: Duration,
}

enum End {
    ClientClosed,
    Shutdown,
    Evicted(String),
    Failed,
}

/// Serves one client until it leaves, fails, is evicted, or the gateway stops.
pub async fn serve(
    socket: WebSocket,
    hub: Arc<Hub>,
    reg: Registration,
    settings: SessionSettings,
    peer: SocketAddr,
) {
    let (mut tx, mut rx) = socket.split();
    let since_start = |hub: &Hub| hub.started.elapsed().as_millis() as u64;
    let last_inbound = Arc::new(AtomicU64::new(since_start(&hub)));
    let mut reader = {
        let last_inbound = last_inbound.clone();
        let hub = hub.clone();
        tokio::spawn(async move {
            while let Some(msg) = rx.next().await {
                match msg {
                    Ok(Message::Close(_)) | Err(_) => break,
                    // Pongs, and anything else a client says, show that it is reading.
                    Ok(_) => last_inbound.store(since_start(&hub), Ordering::Relaxed),
                }
            }
        })
    };
    let stall = settings.stall_timeout;
    let mut ping = tokio::time::interval(settings.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await; // the first tick is immediate

    let send = async |tx: &mut futures::stream::SplitSink<WebSocket, Message>,
                      p: &Payload|
           -> Result<(), End> {
        hub.counters.queue_age.observe(p.received.elapsed());
        let len = p.text.len() as u64;
        match tokio::time::timeout(stall, tx.send(Message::Text(p.text.clone()))).await {
            Ok(Ok(())) => {
                hub.counters.frames_out.fetch_add(1, Ordering::Relaxed);
                hub.counters.bytes_out.fetch_add(len, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(_)) => Err(End::Failed),
            Err(_) => Err(End::Evicted(format!(
                "stalled: a frame could not be written for {:.1} s",
                stall.as_secs_f64()
            ))),
        }
    };

    let mut end = match &reg.latest {
        Some(p) => send(&mut tx, p).await.err(),
        None => None,
    };
    while end.is_none() {
        tokio::select! {
            biased;
            _ = &mut reader => end = Some(End::ClientClosed),
            p = reg.queue.pop() => end = match p {
                Some(p) => send(&mut tx, &p).await.err(),
                None => Some(End::Shutdown),
            },
            _ = ping.tick() => {
                let silent = Duration::from_millis(
                    since_start(&hub).saturating_sub(last_inbound.load(Ordering::Relaxed)),
                );
                end = if silent > stall {
                    Some(End::Evicted(format!(
                        "stalled: no pong for {:.1} s",
                        silent.as_secs_f64()
                    )))
                } else {
                    match tokio::time::timeout(stall, tx.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => None,
                        Ok(Err(_)) => Some(End::Failed),
                        Err(_) => Some(End::Evicted(format!(
                            "stalled: a ping could not be written for {:.1} s",
                            stall.as_secs_f64()
                        ))),
                    }
                };
            }
        }
    }
    hub.unregister(reg.id);
    let close = |code, reason: String| {
        Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        }))
    };
    match end {
        Some(End::Evicted(reason)) => {
            hub.counters.evictions.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                %peer,
                dropped = reg.queue.dropped(),
                "client evicted: {reason}"
            );
            // Best effort: a stalled client may never take the close frame.
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                tx.send(close(CLOSE_STALLED, reason)),
            )
            .await;
        }
        Some(End::Shutdown) => {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                tx.send(close(CLOSE_GOING_AWAY, "gateway shutting down".into())),
            )
            .await;
        }
        _ => {}
    }
    reader.abort();
    tracing::debug!(%peer, "client left");
}

//! [`NatsSink`]: a synchronous [`EventSink`] that publishes each event to its subject through
//! JetStream, with a deterministic `Nats-Msg-Id` (a re-run replay is deduplicated by the
//! stream) and a bounded window of outstanding acks (`send` blocks when it is full). A publish
//! whose ack fails is retried a few times, then the sink fails: nothing is dropped silently.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::{Bus, BusError};
use crate::event::Event;
use crate::io::{EventSink, SinkError};

/// Tuning of a [`NatsSink`].
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// Maximum number of publishes awaiting their ack.
    pub window: usize,
    /// How long to wait for one ack before retrying.
    pub ack_timeout: Duration,
    /// How many times a publish is retried after a failed or missing ack.
    pub max_retries: u32,
    /// Create the configured streams when the sink starts.
    pub ensure_streams: bool,
}

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings {
            window: 4096,
            ack_timeout: Duration::from_secs(5),
            max_retries: 3,
            ensure_streams: true,
        }
    }
}

/// The `Nats-Msg-Id` of an event: its event time, its index among the consecutive events of
/// this run with the same event time, and a hash of its JSON bytes (FNV-1a 64 over 64-bit
/// words). The same run published twice gives the same ids (deduplicated); two identical
/// events in one run differ by index.
pub fn message_id(ts_event_ns: u64, index: u64, json: &[u8]) -> String {
    format!("{ts_event_ns}-{index}-{:016x}", crate::hash::fnv1a64(json))
}

struct Outgoing {
    subject: &'static str,
    payload: Bytes,
    id: String,
    attempts: u32,
}

enum Command {
    Publish(Outgoing),
    Flush(oneshot::Sender<()>),
}

/// Publishes events to JetStream; see the module documentation.
pub struct NatsSink {
    bus: Bus,
    tx: Option<mpsc::Sender<Command>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
    failure: Option<String>,
    buf: Vec<u8>,
    last_ts: Option<u64>,
    same_ts_index: u64,
    sent: u64,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("url", &self.bus.url())
            .field("sent", &self.sent)
            .finish()
    }
}

impl NatsSink {
    pub fn new(bus: &Bus, settings: SinkSettings) -> Result<NatsSink, BusError> {
        let window = settings.window.max(1);
        if settings.ensure_streams {
            bus.ensure_streams()?;
        }
        let (tx, rx) = mpsc::channel(1024.min(window));
        let task = bus
            .runtime()
            .spawn(run(bus.client().clone(), rx, window, settings));
        Ok(NatsSink {
            bus: bus.clone(),
            tx: Some(tx),
            task: Some(task),
            failure: None,
            buf: Vec::with_capacity(1024),
            last_ts: None,
            same_ts_index: 0,
            sent: 0,
        })
    }

    /// Number of events handed to the sink so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The publisher task's error, once it has stopped.
    fn failure(&mut self) -> SinkError {
        self.tx = None;
        super::publisher_failure(&self.bus, &mut self.task, &mut self.failure)
    }
}

impl EventSink for NatsSink {
    fn send(&mut self, event: &Event) -> Result<(), SinkError> {
        let Some(tx) = &self.tx else {
            return Err(self.failure());
        };
        self.buf.clear();
        event.write_json(&mut self.buf);
        let ts = event.ts_event_ns();
        if self.last_ts == Some(ts) {
            self.same_ts_index += 1;
        } else {
            self.last_ts = Some(ts);
            self.same_ts_index = 0;
        }
        let cap = self.buf.capacity();
        let out = Outgoing {
            subject: event.subject(),
            id: message_id(ts, self.same_ts_index, &self.buf),
            payload: Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(cap))),
            attempts: 0,
        };
        if tx.blocking_send(Command::Publish(out)).is_err() {
            return Err(self.failure());
        }
        self.sent += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let Some(tx) = &self.tx else {
            return Err(self.failure());
        };
        let (done_tx, done_rx) = oneshot::channel();
        if tx.blocking_send(Command::Flush(done_tx)).is_err() || done_rx.blocking_recv().is_err() {
            return Err(self.failure());
        }
        Ok(())
    }
}

impl Drop for NatsSink {
    fn drop(&mut self) {
        if self.tx.is_some()
            && self.failure.is_none()
            && self.sent > 0
            && let Err(err) = self.finish()
        {
            tracing::error!("NATS sink dropped with unacknowledged events: {err}");
        }
        self.tx = None;
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A publish awaiting its ack.
struct Pending {
    out: Outgoing,
    /// When to publish again if no good ack has come by then.
    retry_at: Instant,
    /// Why the last attempt failed, for the final error.
    last_error: Option<String>,
}

/// A JetStream publish ack (or API error) as the server sends it.
#[derive(serde::Deserialize)]
struct AckReply {
    #[serde(default)]
    error: Option<AckError>,
    #[serde(default)]
    seq: Option<u64>,
}

#[derive(serde::Deserialize)]
struct AckError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    description: String,
}

/// The JetStream publisher: core NATS publishes with a reply subject `{inbox}.{token}` on one
/// wildcard subscription for all acks (far cheaper than a request per message), a ring of
/// pending acks indexed by token, and a timer that publishes again what was not acknowledged
/// in time.
struct Publisher {
    client: async_nats::Client,
    inbox: String,
    /// Token of `slots[0]`; tokens are consecutive.
    base: u64,
    /// Publishes by token; `None` once acknowledged (acked fronts are popped).
    slots: VecDeque<Option<Pending>>,
    outstanding: usize,
    ack_timeout: Duration,
    max_retries: u32,
}

impl Publisher {
    /// Hands one publish to the connection, waiting for room in its queue until `deadline` at
    /// the latest. While the client is reconnecting its queue fills up and stops draining, so
    /// every caller shares one deadline per pass: a pass over thousands of messages then takes
    /// one `ack_timeout`, not one `ack_timeout` per message. A message the connection does
    /// accept is sent after the reconnection.
    async fn send(
        &mut self,
        token: u64,
        out: &Outgoing,
        deadline: tokio::time::Instant,
    ) -> Result<(), String> {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, out.id.as_str());
        let reply = format!("{}.{token}", self.inbox);
        let publish = self.client.publish_with_reply_and_headers(
            out.subject,
            reply,
            headers,
            out.payload.clone(),
        );
        // `timeout_at` polls the publish first: with a passed deadline it still succeeds when
        // the queue has room, and fails at once when it has none.
        match tokio::time::timeout_at(deadline, publish).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                Err("the connection accepts no messages (server lost, reconnecting?)".to_string())
            }
        }
    }

    /// Publishes a new message. A message the connection does not accept is not fatal at
    /// once: it waits for its retry like a message whose ack is missing, so the retry budget
    /// bounds how long a lost server goes unreported.
    async fn publish(&mut self, out: Outgoing, deadline: tokio::time::Instant) {
        let token = self.base + self.slots.len() as u64;
        let last_error = match self.send(token, &out, deadline).await {
            Ok(()) => None,
            Err(e) => {
                tracing::debug!(subject = out.subject, id = %out.id, "publish failed: {e}");
                Some(e)
            }
        };
        self.slots.push_back(Some(Pending {
            out,
            retry_at: Instant::now() + self.ack_timeout,
            last_error,
        }));
        self.outstanding += 1;
    }

    /// Publishes again (same token, same message id) what waited too long for its ack; fails
    /// when a message has used up its retries. One pass takes at most `ack_timeout`.
    async fn retry_expired(&mut self) -> Result<(), String> {
        let now = Instant::now();
        let deadline = tokio::time::Instant::now() + self.ack_timeout;
        for i in 0..self.slots.len() {
            let token = self.base + i as u64;
            let expired = match &mut self.slots[i] {
                Some(p) if now >= p.retry_at => {
                    p.out.attempts += 1;
                    let why = p.last_error.take().unwrap_or_else(|| {
                        format!("no ack from the server in {:?}", self.ack_timeout)
                    });
                    if p.out.attempts > self.max_retries {
                        return Err(describe(&p.out, &why, p.out.attempts));
                    }
                    p.retry_at = now + self.ack_timeout;
                    tracing::warn!(subject = p.out.subject, id = %p.out.id, "{why}; publishing again");
                    Some(Outgoing {
                        subject: p.out.subject,
                        payload: p.out.payload.clone(),
                        id: p.out.id.clone(),
                        attempts: p.out.attempts,
                    })
                }
                _ => None,
            };
            if let Some(out) = expired
                && let Err(e) = self.send(token, &out, deadline).await
            {
                tracing::debug!(subject = out.subject, id = %out.id, "publish failed: {e}");
                if let Some(Some(p)) = self.slots.get_mut(i) {
                    p.last_error = Some(e);
                }
            }
        }
        Ok(())
    }

    fn on_ack(&mut self, msg: async_nats::Message) -> Result<(), String> {
        let Some(token) = msg
            .subject
            .rsplit('.')
            .next()
            .and_then(|t| t.parse::<u64>().ok())
        else {
            return Ok(());
        };
        let Some(index) = token.checked_sub(self.base).map(|i| i as usize) else {
            return Ok(()); // a late ack of a message acknowledged after a retry
        };
        if !matches!(self.slots.get(index), Some(Some(_))) {
            return Ok(());
        }
        let failure = if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            // No stream captures the subject, or JetStream is still starting after a restart.
            Some("no JetStream stream captures this subject".to_string())
        } else {
            match serde_json::from_slice::<AckReply>(&msg.payload) {
                Ok(AckReply {
                    error: Some(err), ..
                }) => Some(format!("JetStream error {}: {}", err.code, err.description)),
                Ok(AckReply { seq: Some(_), .. }) => None,
                _ => Some(format!(
                    "unexpected ack {:?}",
                    String::from_utf8_lossy(&msg.payload)
                )),
            }
        };
        if let Some(why) = failure {
            // Publish again soon (the same message id, so a stored copy is not duplicated);
            // the retry budget turns a lasting failure into an error.
            if let Some(Some(p)) = self.slots.get_mut(index) {
                p.retry_at = Instant::now() + ERROR_RETRY_DELAY.min(self.ack_timeout);
                p.last_error = Some(why);
            }
            return Ok(());
        }
        self.slots[index] = None;
        self.outstanding -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Ok(())
    }
}

/// The final error of a message after `tries` publishes.
fn describe(out: &Outgoing, err: &str, tries: u32) -> String {
    format!(
        "{err} (message {} on {}, after {tries} attempts)",
        out.id, out.subject
    )
}

async fn run(
    client: async_nats::Client,
    mut rx: mpsc::Receiver<Command>,
    window: usize,
    settings: SinkSettings,
) -> Result<(), String> {
    let inbox = client.new_inbox();
    let mut acks = client
        .subscribe(format!("{inbox}.*"))
        .await
        .map_err(|e| format!("cannot subscribe to acks: {e}"))?;
    let mut publisher = Publisher {
        client,
        inbox,
        base: 0,
        slots: VecDeque::with_capacity(window + BATCH),
        outstanding: 0,
        ack_timeout: settings.ack_timeout,
        max_retries: settings.max_retries,
    };
    let mut tick = tokio::time::interval(
        (settings.ack_timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(100)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut closed = false;
    loop {
        if publisher.outstanding == 0 {
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
            if closed {
                return Ok(());
            }
        }
        let accepting = !closed && publisher.outstanding < window;
        tokio::select! {
            biased;
            ack = acks.next() => match ack {
                Some(msg) => publisher.on_ack(msg)?,
                None => return Err("ack subscription closed".into()),
            },
            _ = tick.tick() => publisher.retry_expired().await?,
            n = rx.recv_many(&mut batch, BATCH), if accepting => {
                if n == 0 {
                    closed = true;
                }
                let deadline = tokio::time::Instant::now() + settings.ack_timeout;
                for cmd in batch.drain(..) {
                    match cmd {
                        Command::Publish(out) => publisher.publish(out, deadline).await,
                        Command::Flush(done) => waiters.push(done),
                    }
                }
            }
        }
    }
}

/// Wait before publishing again after an error ack.
const ERROR_RETRY_DELAY: Duration = Duration::from_millis(250);

/// Commands taken from the channel at once.
const BATCH: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_deterministic_and_distinguish_index_and_content() {
        let a = message_id(1_700_000_000_000_000_000, 0, b"{\"x\":1}");
        assert_eq!(a, message_id(1_700_000_000_000_000_000, 0, b"{\"x\":1}"));
        assert!(a.starts_with("1700000000000000000-0-"), "{a}");
        assert_ne!(a, message_id(1_700_000_000_000_000_000, 1, b"{\"x\":1}"));
        assert_ne!(a, message_id(1_700_000_000_000_000_000, 0, b"{\"x\":2}"));
    }
}

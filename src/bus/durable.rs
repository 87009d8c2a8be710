//! [`DurableSource`]: one stream read through a durable JetStream pull consumer, acknowledged by
//! the caller once what it read is safely stored elsewhere (the lake).
//!
//! The consumer acknowledges cumulatively (`AckPolicy::All`): acknowledging stream sequence `S`
//! acknowledges everything delivered before it, so the reader acks once per stored batch, not
//! per message. It is created idempotently (a new one starts at the stream's first message, or
//! at new messages only); an existing one carries on from its acknowledgement floor, and the
//! server redelivers whatever was delivered but not acknowledged when a reader died.
//!
//! One reader per consumer: the lake's exactly-once rule needs every message of a partition
//! between a batch's first and last sequence in that batch, which two readers splitting one
//! consumer would break. A reader therefore takes the writer lock `lake.{stream}.{consumer}`
//! ([`super::lock`]) — a second one is refused while the first runs — and, holding it, knows
//! that messages delivered and not acknowledged belong to a reader that died: it resets the
//! consumer to its acknowledgement floor (`$JS.API.CONSUMER.RESET`, nats-server 2.14+) so they
//! come again at once instead of after the acknowledgement wait.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::DeliverPolicy};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::lock::{Holder, LockError, WriterLock};
use super::{Bus, BusError};
use crate::io::{Position, SourceError};

/// How the durable consumer is set up.
#[derive(Debug, Clone)]
pub struct DurableSettings {
    pub stream: String,
    /// The durable consumer's name.
    pub durable: String,
    /// A new consumer starts at the stream's first message (else at new messages only).
    pub from_start: bool,
    /// How long the server waits for an acknowledgement before redelivering: longer than the
    /// longest a message may wait in an unflushed batch.
    pub ack_wait: Duration,
    /// Messages delivered and not yet acknowledged the server allows.
    pub max_ack_pending: i64,
    /// Messages requested per pull.
    pub pull_batch: usize,
}

impl DurableSettings {
    pub fn new(stream: impl Into<String>, durable: impl Into<String>) -> Self {
        DurableSettings {
            stream: stream.into(),
            durable: durable.into(),
            from_start: true,
            ack_wait: Duration::from_secs(180),
            max_ack_pending: 2_000_000,
            pull_batch: 8192,
        }
    }
}

/// One message delivered by the consumer.
#[derive(Debug, Clone)]
pub struct DurableMessage {
    pub subject: String,
    pub stream_seq: u64,
    /// Delivery attempt (1 the first time; more after a reader died without acknowledging).
    pub delivered: i64,
    pub payload: Bytes,
}

impl DurableMessage {
    pub fn position(&self) -> Position {
        Position::Message {
            subject: self.subject.clone(),
            stream_seq: self.stream_seq,
        }
    }
}

/// What [`DurableSource::poll`] found.
#[derive(Debug)]
pub enum Polled {
    Message(DurableMessage),
    /// Nothing arrived within the timeout.
    Idle,
}

enum Item {
    Message(DurableMessage, String),
    Error(String),
}

/// A durable pull consumer, read synchronously; see the module documentation.
pub struct DurableSource {
    bus: Bus,
    settings: DurableSettings,
    input: String,
    /// The stream's name and creation time: a stream deleted and made anew restarts its
    /// sequences, and must not pass for the one it replaced.
    identity: String,
    rx: mpsc::Receiver<Item>,
    task: tokio::task::JoinHandle<()>,
    /// (stream sequence, ack subject) of messages delivered and not acknowledged, in order.
    unacked: VecDeque<(u64, String)>,
    acked_through: Option<u64>,
    lock: Option<WriterLock>,
}

impl std::fmt::Debug for DurableSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableSource")
            .field("input", &self.input)
            .finish()
    }
}

impl DurableSource {
    /// Creates (or finds) the consumer and starts pulling.
    pub fn new(bus: &Bus, settings: DurableSettings) -> Result<DurableSource, BusError> {
        let input = format!(
            "nats {} stream {} consumer {}",
            bus.url(),
            settings.stream,
            settings.durable
        );
        let (tx, rx) = mpsc::channel(settings.pull_batch.max(1) * 2);
        let stream_err = |message: String| BusError::Stream {
            stream: settings.stream.clone(),
            message,
        };
        let (consumer, lock, identity) = bus.runtime().block_on(async {
            let client = bus.client();
            let js = jetstream::new(client.clone());
            let key = format!("lake.{}.{}", settings.stream, settings.durable);
            let writer = client.new_inbox().rsplit('.').next().unwrap_or("lake").to_string();
            let lock = WriterLock::acquire(client, &key, Holder::this_process(&writer, &input))
                .await
                .map_err(|e| match e {
                    LockError::Held { holder, .. } => stream_err(format!(
                        "another reader holds consumer {}: {holder}; one spm-lake per consumer",
                        settings.durable
                    )),
                    other => stream_err(other.to_string()),
                })?;
            let stream = js
                .get_stream(&settings.stream)
                .await
                .map_err(|e| stream_err(format!("cannot open the stream: {e}")))?;
            let identity = format!(
                "{}.{}",
                settings.stream,
                stream.cached_info().created.unix_timestamp_nanos()
            );
            let config = jetstream::consumer::pull::Config {
                durable_name: Some(settings.durable.clone()),
                deliver_policy: if settings.from_start {
                    DeliverPolicy::All
                } else {
                    DeliverPolicy::New
                },
                ack_policy: AckPolicy::All,
                ack_wait: settings.ack_wait,
                max_ack_pending: settings.max_ack_pending,
                ..Default::default()
            };
            let consumer: jetstream::consumer::PullConsumer = stream
                .get_or_create_consumer(&settings.durable, config)
                .await
                .map_err(|e| stream_err(format!("consumer {}: {e}", settings.durable)))?;
            let mut consumer = consumer;
            let info = consumer
                .info()
                .await
                .map_err(|e| stream_err(format!("consumer {}: {e}", settings.durable)))?;
            if info.num_ack_pending > 0 {
                let floor = info.ack_floor.stream_sequence;
                let pending = info.num_ack_pending;
                reset_to_ack_floor(client, &settings).await.map_or_else(
                    |e| tracing::warn!(
                        "consumer {}: {pending} messages of a reader that died are redelivered only after the acknowledgement wait ({:?}): {e}",
                        settings.durable, info.config.ack_wait
                    ),
                    |()| tracing::info!(
                        "consumer {}: {pending} messages delivered to a reader that died; redelivering from after {floor}",
                        settings.durable
                    ),
                );
            }
            let messages = consumer
                .stream()
                .max_messages_per_batch(settings.pull_batch.max(1))
                .messages()
                .await
                .map_err(|e| stream_err(format!("consumer {}: {e}", settings.durable)))?;
            Ok::<_, BusError>((messages, lock, identity))
        })?;
        let task = bus.runtime().spawn(pull(consumer, tx));
        let lock = Some(lock);
        Ok(DurableSource {
            bus: bus.clone(),
            settings,
            input,
            identity,
            rx,
            task,
            unacked: VecDeque::new(),
            acked_through: None,
            lock,
        })
    }

    /// Name of this input in messages.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What this stream is called in the lake's object names: its name and creation time.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn settings(&self) -> &DurableSettings {
        &self.settings
    }

    /// The next message, or [`Polled::Idle`] after `timeout` without one.
    pub fn poll(&mut self, timeout: Duration) -> Result<Polled, SourceError> {
        if let Some(why) = self.lock.as_ref().and_then(WriterLock::lost) {
            return Err(SourceError::Fatal {
                input: self.input.clone(),
                message: format!("lost the consumer's lock ({why}): stopping"),
            });
        }
        let item = self
            .bus
            .runtime()
            .block_on(async { tokio::time::timeout(timeout, self.rx.recv()).await });
        match item {
            Err(_) => Ok(Polled::Idle),
            Ok(Some(Item::Message(m, reply))) => {
                self.unacked.push_back((m.stream_seq, reply));
                Ok(Polled::Message(m))
            }
            Ok(Some(Item::Error(message))) => Err(SourceError::Fatal {
                input: self.input.clone(),
                message,
            }),
            Ok(None) => Err(SourceError::Fatal {
                input: self.input.clone(),
                message: "the consumer stopped".into(),
            }),
        }
    }

    /// Acknowledges every delivered message up to stream sequence `seq` (one cumulative ack).
    /// With `confirm`, waits for the server to confirm it (before exit).
    pub fn ack_through(&mut self, seq: u64, confirm: bool) -> Result<(), SourceError> {
        let mut last = None;
        while self.unacked.front().is_some_and(|&(s, _)| s <= seq) {
            last = self.unacked.pop_front();
        }
        let Some((s, reply)) = last else {
            return Ok(());
        };
        let client = self.bus.client().clone();
        let result = self.bus.runtime().block_on(async move {
            if confirm {
                client
                    .request(reply, Bytes::from_static(b"+ACK"))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            } else {
                client
                    .publish(reply, Bytes::from_static(b"+ACK"))
                    .await
                    .map_err(|e| e.to_string())
            }
        });
        result.map_err(|message| SourceError::Fatal {
            input: self.input.clone(),
            message: format!("cannot acknowledge through {s}: {message}"),
        })?;
        self.acked_through = Some(s);
        Ok(())
    }

    /// Highest stream sequence acknowledged by this reader.
    pub fn acked_through(&self) -> Option<u64> {
        self.acked_through
    }

    /// Messages delivered and not acknowledged.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }
}

impl Drop for DurableSource {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(lock) = self.lock.take() {
            self.bus.runtime().block_on(lock.release());
        }
    }
}

/// Asks the server to deliver again everything after the consumer's acknowledgement floor.
async fn reset_to_ack_floor(
    client: &async_nats::Client,
    settings: &DurableSettings,
) -> Result<(), String> {
    let subject = format!(
        "$JS.API.CONSUMER.RESET.{}.{}",
        settings.stream, settings.durable
    );
    let reply = client
        .request(subject, Bytes::new())
        .await
        .map_err(|e| format!("the server does not reset consumers ({e}); 2.14 or later does"))?;
    let v: serde_json::Value = serde_json::from_slice(&reply.payload).map_err(|e| e.to_string())?;
    match v.get("error") {
        Some(err) => Err(err.to_string()),
        None => Ok(()),
    }
}

async fn pull(mut messages: jetstream::consumer::pull::Stream, tx: mpsc::Sender<Item>) {
    while let Some(next) = messages.next().await {
        let item = match next {
            Ok(msg) => {
                let (stream_seq, delivered) = match msg.info() {
                    Ok(info) => (info.stream_sequence, info.delivered),
                    Err(e) => {
                        let _ = tx.send(Item::Error(format!("bad ack subject: {e}"))).await;
                        return;
                    }
                };
                let Some(reply) = msg.reply.as_ref().map(|r| r.to_string()) else {
                    continue;
                };
                Item::Message(
                    DurableMessage {
                        subject: msg.subject.to_string(),
                        stream_seq,
                        delivered,
                        payload: msg.payload.clone(),
                    },
                    reply,
                )
            }
            Err(e) => {
                // Heartbeats missed or the server went away: the stream retries by itself;
                // report and keep reading.
                tracing::warn!("consumer: {e}");
                continue;
            }
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
    let _ = tx
        .send(Item::Error("the consumer's message stream ended".into()))
        .await;
}

//! [`DurableSource`]: one stream read through a durable JetStream pull consumer, acknowledged by
//! the caller once what it read is safely stored elsewhere (the lake).
//!
//! The consumer is created idempotently (a new one starts at the stream's first message, or at
//! new messages only); an existing one carries on from where it was acknowledged, and the
//! server redelivers whatever was delivered but not acknowledged when a reader died.
//!
//! **Several readers share one consumer.** Each message goes to one of them and is
//! acknowledged on its own (`AckPolicy::Explicit`) once the reader has stored it; the lake's
//! writer names each reader's objects after it ([`DurableSource::worker`]) and checks a
//! redelivered message against what is stored before keeping it. The readers of a consumer
//! answer on [`members_subject`], so a starting reader knows whether it is alone: when it is,
//! messages delivered and not acknowledged belong to a reader that died, and it resets the
//! consumer to its acknowledgement floor (`$JS.API.CONSUMER.RESET`, nats-server 2.14+) so they
//! come again at once; when others run, a dead reader's messages come back to one of them after
//! the acknowledgement wait. The start (ask, reset, join) runs under the writer lock
//! `lake.{stream}.{consumer}` ([`super::lock`]), held only for that moment, so two readers
//! starting together cannot both take themselves to be alone.

use std::collections::{HashSet, VecDeque};
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
    /// This reader's id (letters and digits), unique among the consumer's readers.
    worker: String,
    /// Answers the other readers of the consumer while this one runs.
    member: tokio::task::JoinHandle<()>,
    /// (stream sequence, ack subject) of messages delivered and not acknowledged, in order.
    unacked: VecDeque<(u64, String)>,
    /// The stream sequences in `unacked`: a message that comes again while this reader still
    /// holds it (held past the acknowledgement wait) is dropped, not read twice.
    holding: HashSet<u64>,
    /// Such messages dropped.
    came_back: u64,
    acked_through: Option<u64>,
}

/// Subject the readers of a durable consumer answer on (with their [`Holder`]).
pub fn members_subject(stream: &str, durable: &str) -> String {
    format!("_SPM.lake.{stream}.{durable}")
}

/// How long a pull request lasts before the reader makes a new one.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// How often the server says a pull request is still alive while it has nothing to deliver.
const PULL_HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a starting reader waits for the start lock while another reader starts.
const START_LOCK_WAIT: Duration = Duration::from_secs(30);

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
        let client = bus.client().clone();
        let worker = client
            .new_inbox()
            .rsplit('.')
            .next()
            .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map_or_else(|| format!("p{}", std::process::id()), str::to_string);
        let holder = Holder::this_process(&worker, &input);
        let (consumer, member, identity) = bus.runtime().block_on(async {
            let lock = start_lock(&client, &settings, &holder).await?;
            let started = start(&client, &settings, &holder).await;
            lock.release().await;
            started
        })?;
        let task = bus.runtime().spawn(pull(consumer, tx));
        Ok(DurableSource {
            bus: bus.clone(),
            settings,
            input,
            identity,
            rx,
            task,
            worker,
            member,
            unacked: VecDeque::new(),
            holding: HashSet::new(),
            came_back: 0,
            acked_through: None,
        })
    }

    /// This reader's id, unique among the readers of the consumer (it names the lake objects
    /// this reader writes).
    pub fn worker(&self) -> &str {
        &self.worker
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
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let item = self
                .bus
                .runtime()
                .block_on(async { tokio::time::timeout_at(deadline, self.rx.recv()).await });
            return match item {
                Err(_) => Ok(Polled::Idle),
                Ok(Some(Item::Message(m, reply))) => {
                    if m.delivered > 1 && self.holding.contains(&m.stream_seq) {
                        // Still held here, and acknowledged (by stream sequence) once stored.
                        self.came_back += 1;
                        if self.came_back == 1 {
                            tracing::warn!(
                                "{}: message {} came back while this reader still holds it: the acknowledgement wait ({:?}) is shorter than messages stay unstored here; dropping such copies",
                                self.input,
                                m.stream_seq,
                                self.settings.ack_wait
                            );
                        }
                        continue;
                    }
                    self.holding.insert(m.stream_seq);
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
            };
        }
    }

    /// Acknowledges the delivered messages up to stream sequence `seq`, in delivery order (a
    /// redelivered message below a newer one waits for it). With `confirm`, waits for the
    /// server to confirm the last (before exit).
    pub fn ack_through(&mut self, seq: u64, confirm: bool) -> Result<(), SourceError> {
        let mut acks = Vec::new();
        while self.unacked.front().is_some_and(|&(s, _)| s <= seq) {
            if let Some(m) = self.unacked.pop_front() {
                self.holding.remove(&m.0);
                acks.push(m);
            }
        }
        let Some(&(last, _)) = acks.last() else {
            return Ok(());
        };
        let client = self.bus.client().clone();
        let result = self.bus.runtime().block_on(async move {
            let n = acks.len();
            for (i, (_, reply)) in acks.into_iter().enumerate() {
                if confirm && i + 1 == n {
                    confirm_ack(&client, reply, last).await;
                } else {
                    client
                        .publish(reply, Bytes::from_static(b"+ACK"))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok::<_, String>(())
        });
        result.map_err(|message| SourceError::Fatal {
            input: self.input.clone(),
            message: format!("cannot acknowledge through {last}: {message}"),
        })?;
        self.acked_through = self.acked_through.max(Some(last));
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
        self.member.abort();
    }
}

/// Acknowledges one message and waits for the server to confirm, trying a few times (the
/// consumer may be electing a new leader). Unconfirmed is not lost: what this reader stored and
/// could not acknowledge comes again to the next one, which finds it stored and skips it.
async fn confirm_ack(client: &async_nats::Client, reply: String, seq: u64) {
    let mut last_err = String::new();
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500) * attempt).await;
        }
        let request = client.request(reply.clone(), Bytes::from_static(b"+ACK"));
        match tokio::time::timeout(Duration::from_secs(2), request).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => last_err = e.to_string(),
            Err(_) => last_err = "no answer within 2 s".into(),
        }
    }
    tracing::warn!(
        "the server did not confirm the acknowledgement through sequence {seq} ({last_err}); what is stored and unacknowledged comes again to the next reader, which skips it as already stored"
    );
}

/// Takes the consumer's start lock, waiting while another reader starts (it holds the lock for
/// a moment only).
async fn start_lock(
    client: &async_nats::Client,
    settings: &DurableSettings,
    holder: &Holder,
) -> Result<WriterLock, BusError> {
    let key = format!("lake.{}.{}", settings.stream, settings.durable);
    // The lock bucket, if made here, gets the stream's replicas.
    let replicas = jetstream::new(client.clone())
        .get_stream(&settings.stream)
        .await
        .map_or(1, |s| s.cached_info().config.num_replicas);
    let deadline = tokio::time::Instant::now() + START_LOCK_WAIT;
    loop {
        match WriterLock::acquire(client, &key, holder.clone(), replicas).await {
            Ok(lock) => return Ok(lock),
            Err(LockError::Held { holder: other, .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::debug!(
                    "consumer {}: {other} is starting; waiting",
                    settings.durable
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                return Err(BusError::Stream {
                    stream: settings.stream.clone(),
                    message: format!("starting a reader of consumer {}: {e}", settings.durable),
                });
            }
        }
    }
}

/// Opens the stream and the consumer, resets it when this reader is alone, and joins the
/// consumer's readers. Runs under the start lock.
async fn start(
    client: &async_nats::Client,
    settings: &DurableSettings,
    holder: &Holder,
) -> Result<
    (
        jetstream::consumer::pull::Stream,
        tokio::task::JoinHandle<()>,
        String,
    ),
    BusError,
> {
    let stream_err = |message: String| BusError::Stream {
        stream: settings.stream.clone(),
        message,
    };
    let consumer_err =
        |e: &dyn std::fmt::Display| stream_err(format!("consumer {}: {e}", settings.durable));
    let js = jetstream::new(client.clone());
    let stream = js
        .get_stream(&settings.stream)
        .await
        .map_err(|e| stream_err(format!("cannot open the stream: {e}")))?;
    let identity = format!(
        "{}.{}",
        settings.stream,
        stream.cached_info().created.unix_timestamp_nanos()
    );
    let config = |deliver_policy| jetstream::consumer::pull::Config {
        durable_name: Some(settings.durable.clone()),
        deliver_policy,
        ack_policy: AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        max_ack_pending: settings.max_ack_pending,
        ..Default::default()
    };
    let deliver = if settings.from_start {
        DeliverPolicy::All
    } else {
        DeliverPolicy::New
    };
    let mut consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(&settings.durable, config(deliver))
        .await
        .map_err(|e| consumer_err(&e))?;
    let mut info = consumer.info().await.map_err(|e| consumer_err(&e))?.clone();

    // Is another reader of this consumer running?
    let members = members_subject(&settings.stream, &settings.durable);
    let others = match client.request(members.clone(), Bytes::new()).await {
        Ok(reply) => Some(String::from_utf8_lossy(&reply.payload).into_owned()),
        Err(e) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => None,
        Err(e) => Some(format!("a reader that did not answer ({e})")),
    };
    match &others {
        Some(other) => tracing::info!(
            "consumer {}: sharing the work with the readers already running (one is {other})",
            settings.durable
        ),
        None => tracing::debug!("consumer {}: the only reader", settings.durable),
    }

    if info.config.ack_policy != AckPolicy::Explicit {
        // Made by an older spm-lake, which acknowledged cumulatively: made anew from its
        // acknowledgement floor, when no one else reads it.
        if others.is_some() {
            return Err(consumer_err(
                &"acknowledges cumulatively (made by an older spm-lake) and another reader runs; stop it, or use another consumer name",
            ));
        }
        let floor = info.ack_floor.stream_sequence;
        tracing::warn!(
            "consumer {}: made anew with explicit acknowledgements, from after sequence {floor} (its acknowledgement floor)",
            settings.durable
        );
        stream
            .delete_consumer(&settings.durable)
            .await
            .map_err(|e| consumer_err(&e))?;
        consumer = stream
            .create_consumer(config(DeliverPolicy::ByStartSequence {
                start_sequence: floor + 1,
            }))
            .await
            .map_err(|e| consumer_err(&e))?;
        info = consumer.info().await.map_err(|e| consumer_err(&e))?.clone();
    }

    if info.config.ack_wait != settings.ack_wait {
        // Made with another flush age: a reader holds messages up to its flush age, and the
        // wait must outlast that or they come back while still held.
        let mut config = info.config.clone();
        let was = config.ack_wait;
        config.ack_wait = settings.ack_wait;
        match stream.update_consumer(config).await {
            Ok(_) => tracing::info!(
                "consumer {}: acknowledgement wait {was:?} → {:?}",
                settings.durable,
                settings.ack_wait
            ),
            Err(e) => tracing::warn!(
                "consumer {}: its acknowledgement wait stays {was:?} ({e}); a reader holding messages longer gets them again",
                settings.durable
            ),
        }
    }

    if others.is_none() && info.num_ack_pending > 0 {
        let floor = info.ack_floor.stream_sequence;
        let pending = info.num_ack_pending;
        reset_to_ack_floor(client, settings).await.map_or_else(
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

    // Join: answer the readers that start after this one.
    let mut sub = client
        .subscribe(members)
        .await
        .map_err(|e| consumer_err(&e))?;
    let me = Bytes::from(holder.to_string());
    let answering = client.clone();
    let member = tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                let _ = answering.publish(reply, me.clone()).await;
            }
        }
    });
    // Pull requests live on the consumer's leader: when it dies they go with it. Short-lived
    // requests and heartbeats make the reader notice within seconds and ask the new leader
    // (the defaults, 30 s and 15 s, left a reader idle for half a minute).
    let messages = consumer
        .stream()
        .max_messages_per_batch(settings.pull_batch.max(1))
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
        .map_err(|e| consumer_err(&e))?;
    Ok((messages, member, identity))
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

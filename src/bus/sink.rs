//! [`NatsSink`]: a synchronous [`EventSink`] that publishes each event to its subject through
//! JetStream, with a deterministic `Nats-Msg-Id` (a re-run replay is deduplicated by the
//! stream) and a bounded window of outstanding acks (`send` blocks when it is full). Nothing is
//! dropped silently: publishing that stays stopped (no leader, no quorum, no server) beyond
//! [`SinkSettings::recover_within`] or [`SinkSettings::max_retries`] stops the sink with an error.
//!
//! Order survives failures: a stream leader's death, a lost connection, a server restart. Each
//! message names what it must follow in its stream, so that the stream refuses it, instead of
//! storing it out of place, when a message before it was lost: on a replicated stream the
//! stream sequence (`Nats-Expected-Last-Sequence`, which a cluster checks before it proposes the
//! message, after duplicates), on a single-replica stream the message id
//! (`Nats-Expected-Last-Msg-Id`, which a single server checks after duplicates, while its
//! sequence check comes first). Not the other way round: a cluster checks the message id only
//! once the message is replicated, and with nats-server 2.15.1 a message refused there leaves
//! the stream answering no publish at all, from anyone, for minutes.
//!
//! After any failure the sink waits for the answers still due, then publishes the first
//! unacknowledged message of each stream again on its own, without expectation (backing off
//! while the stream has no leader): everything before it is acknowledged, and the duplicate
//! window tells whether it was stored already. Once the stream acknowledges a message as newly
//! stored, the sink knows the stream's last sequence again and publishes the rest again, in
//! order, with the window; a warning says when publishing paused and when it resumed. An ack of
//! an earlier publish of a message (a leader change can apply one late) counts as well. A
//! stream another publisher writes to (found when a message that expected exactly the last
//! acknowledged one is refused) is published to one message at a time from then on.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Bus, BusError};
use crate::event::{Event, JsonWriter};
use crate::io::{EventSink, SinkError};

/// Tuning of a [`NatsSink`].
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// Maximum number of publishes awaiting their ack.
    pub window: usize,
    /// How long to wait for one ack before publishing again.
    pub ack_timeout: Duration,
    /// How many times the first unacknowledged message is published again after a failed or
    /// missing ack before the sink fails (waiting 250 ms before the first, 500 ms before the
    /// second, then 1 s).
    pub max_retries: u32,
    /// How long publishing may stay stopped by failures (a stream without a leader, a cluster
    /// without quorum, no server) before the sink fails, whatever the retries left.
    pub recover_within: Duration,
    /// Create the configured streams when the sink starts.
    pub ensure_streams: bool,
}

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings {
            window: 4096,
            ack_timeout: Duration::from_secs(5),
            max_retries: 60,
            recover_within: Duration::from_secs(60),
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
    id: Arc<str>,
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
    json: JsonWriter,
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
            json: JsonWriter::new(),
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
        self.json.write(event, &mut self.buf);
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
            id: message_id(ts, self.same_ts_index, &self.buf).into(),
            payload: Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(cap))),
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

/// A JetStream publish ack (or API error) as the server sends it.
#[derive(serde::Deserialize)]
struct AckReply {
    #[serde(default)]
    error: Option<AckError>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    duplicate: bool,
}

#[derive(serde::Deserialize)]
struct AckError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    err_code: u32,
    #[serde(default)]
    description: String,
}

/// JetStream's "wrong last sequence" (`Nats-Expected-Last-Sequence` not met).
const WRONG_LAST_SEQUENCE: u32 = 10071;
/// JetStream's "wrong last msg ID" (`Nats-Expected-Last-Msg-Id` not met).
const WRONG_LAST_MSG_ID: u32 = 10070;

/// How a stream's messages name the one they follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chain {
    /// A replicated stream: the stream sequence of the previous message.
    Sequence,
    /// A single-replica stream: the message id of the previous message.
    MessageId,
    /// A stream the server did not name, or that another publisher writes to: no expectation,
    /// one message at a time.
    OneAtATime,
}

/// What a message expected of its stream when it was published.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Sequence(u64),
    MessageId(Arc<str>),
}

/// The way back after a failure, for the log line once the stream answers again.
struct Resume {
    since: Instant,
    /// Unacknowledged messages found stored already (their acks were lost).
    stored_already: u64,
}

/// One stream this sink publishes to.
struct Stream {
    /// Its name (or, when the server did not name it, the subject).
    name: String,
    /// Resolved through the server (else looked up again after a failure, or after a while).
    known: bool,
    /// When it was last looked up.
    looked_up: Instant,
    chain: Chain,
    /// What the next message published expects: the stream's last sequence or message id
    /// once everything published so far is stored (`None` for a first message by id).
    next: Option<Expect>,
    /// Set while the stream's last message is not known (after a failure, or a message found
    /// stored already): the next message goes alone and without expectation, until the stream
    /// acknowledges one as newly stored.
    probing: bool,
    /// Token of the latest message published (in this generation) or acknowledged: `next`
    /// follows it. An older message not yet acknowledged is stored already (it comes before
    /// an acknowledged one).
    frontier: Option<u64>,
    /// What a message after the last acknowledged one must expect, when that one was newly
    /// stored (for telling another publisher's message from a lost one of ours).
    acked_tail: Option<Expect>,
    /// Token of the last acknowledged message.
    acked_token: Option<u64>,
    /// Published and not answered yet.
    in_flight: usize,
    resume: Option<Resume>,
}

impl Stream {
    /// A stream just looked up, nothing published to it yet.
    fn new(name: String, known: bool, chain: Chain, next: Option<Expect>) -> Stream {
        Stream {
            name,
            known,
            looked_up: Instant::now(),
            chain,
            next,
            probing: false,
            frontier: None,
            acked_tail: None,
            acked_token: None,
            in_flight: 0,
            resume: None,
        }
    }

    /// What a message with `id` acknowledged as stored at `seq` leaves for the next one.
    fn tail(&self, seq: u64, id: &Arc<str>) -> Expect {
        match self.chain {
            Chain::MessageId => Expect::MessageId(id.clone()),
            _ => Expect::Sequence(seq),
        }
    }
}

#[derive(Debug)]
enum State {
    /// Waiting to be published (again).
    Unsent,
    /// Published (generation `generation`) at `at`, expecting `expect`.
    Sent {
        generation: u32,
        at: Instant,
        expect: Option<Expect>,
    },
    /// Refused by the stream (or no stream answered) in the current generation.
    Failed {
        expect: Option<Expect>,
        wrong_last: bool,
    },
    Acked,
}

struct Slot {
    out: Outgoing,
    /// Index into `Publisher::streams`.
    stream: usize,
    state: State,
}

/// Why publishing stopped.
struct Failure {
    why: String,
    /// Only a chained message refused (its stream is reachable): publish again at once.
    wrong_last: bool,
}

/// The JetStream publisher: core NATS publishes with a reply subject
/// `{inbox}.{token}.{generation}` on one wildcard subscription for all acks (far cheaper than a
/// request per message), a ring of publishes by token, and the recovery described in the
/// module documentation. A success ack counts whatever publish of the message it answers; a
/// failure only when it answers the latest.
struct Publisher {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    inbox: String,
    /// Token of `slots[0]`; tokens are consecutive.
    base: u64,
    slots: VecDeque<Slot>,
    /// Slots before this index are published in the current generation (or acknowledged).
    sent_upto: usize,
    generation: u32,
    streams: Vec<Stream>,
    by_subject: HashMap<&'static str, usize>,
    ack_timeout: Duration,
    max_retries: u32,
    recover_within: Duration,
    /// The first unacknowledged message at the last failure, and how many publishes of it
    /// failed or went unanswered.
    retry_token: u64,
    retries: u32,
}

impl Publisher {
    /// The stream capturing `subject`, looked up once (again after a while if the server did
    /// not name it).
    async fn stream_for(&mut self, subject: &'static str) -> usize {
        if let Some(&i) = self.by_subject.get(subject) {
            if !self.streams[i].known && self.streams[i].looked_up.elapsed() > LOOKUP_AGAIN {
                self.look_up_again(subject).await;
            }
            return i;
        }
        let i = match self.lookup(subject).await {
            Ok((name, replicas, last)) => {
                if let Some(i) = self.streams.iter().position(|s| s.known && s.name == name) {
                    i
                } else {
                    let chain = if replicas > 1 {
                        Chain::Sequence
                    } else {
                        Chain::MessageId
                    };
                    tracing::debug!(stream = %name, replicas, last, ?chain, "publishing to stream");
                    self.streams.push(Stream::new(
                        name,
                        true,
                        chain,
                        (chain == Chain::Sequence).then_some(Expect::Sequence(last)),
                    ));
                    self.streams.len() - 1
                }
            }
            Err(e) => {
                tracing::debug!(
                    subject,
                    "no stream found for the subject ({e}); publishing one message at a time"
                );
                self.streams.push(Stream::new(
                    subject.to_string(),
                    false,
                    Chain::OneAtATime,
                    None,
                ));
                self.streams.len() - 1
            }
        };
        self.by_subject.insert(subject, i);
        i
    }

    /// Looks up the stream of `subject` again, which the server did not name before; when it
    /// does now, the stream is published to with the chain its replicas call for, from an ack
    /// of a message sent alone.
    async fn look_up_again(&mut self, subject: &'static str) {
        let i = self.by_subject[subject];
        self.streams[i].looked_up = Instant::now();
        if let Ok((name, replicas, _)) = self.lookup(subject).await {
            let stream = &mut self.streams[i];
            stream.name = name;
            stream.known = true;
            stream.chain = if replicas > 1 {
                Chain::Sequence
            } else {
                Chain::MessageId
            };
            stream.next = None;
            stream.probing = true;
        }
    }

    /// The name, replicas and last sequence of the stream capturing `subject`.
    async fn lookup(&self, subject: &str) -> Result<(String, usize, u64), String> {
        let query = async {
            let name = self
                .js
                .stream_by_subject(subject)
                .await
                .map_err(|e| e.to_string())?;
            let stream = self.js.get_stream(&name).await.map_err(|e| e.to_string())?;
            let info = stream.cached_info();
            Ok((name, info.config.num_replicas, info.state.last_sequence))
        };
        tokio::time::timeout(self.ack_timeout, query)
            .await
            .unwrap_or_else(|_| Err("the stream lookup timed out".to_string()))
    }

    /// Hands one publish to the connection, waiting for room in its queue until `deadline` at
    /// the latest. While the client is reconnecting its queue fills up and stops draining, so
    /// every caller shares one deadline per pass. A message the connection does accept is sent
    /// after the reconnection.
    async fn send(
        &self,
        token: u64,
        out: &Outgoing,
        expect: Option<&Expect>,
        deadline: Instant,
    ) -> Result<(), String> {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, &*out.id);
        match expect {
            Some(Expect::Sequence(seq)) => headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                seq.to_string().as_str(),
            ),
            Some(Expect::MessageId(id)) => {
                headers.insert(async_nats::header::NATS_EXPECTED_LAST_MESSAGE_ID, &**id)
            }
            None => {}
        }
        let reply = format!("{}.{token}.{}", self.inbox, self.generation);
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

    /// Publishes the waiting messages in order: chained ones as the window allows, and a
    /// stream's message without expectation only when nothing of that stream is in flight
    /// (everything before it is acknowledged), so it cannot overtake a lost one.
    async fn pump(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + self.ack_timeout;
        while self.sent_upto < self.slots.len() {
            let i = self.sent_upto;
            if matches!(self.slots[i].state, State::Acked) {
                self.sent_upto += 1;
                continue;
            }
            let s = self.slots[i].stream;
            let token = self.base + i as u64;
            let stream = &self.streams[s];
            // Before an acknowledged message: stored already, the stream answers as a
            // duplicate whatever it expects.
            let behind = stream.frontier.is_some_and(|f| token < f);
            let chained = stream.chain != Chain::OneAtATime
                && !stream.probing
                && !behind
                && (stream.next.is_some() || stream.chain == Chain::MessageId);
            let expect = if chained { stream.next.clone() } else { None };
            if expect.is_none() && !behind && stream.in_flight > 0 {
                break; // goes alone, once what is in flight is answered
            }
            if let Err(why) = self
                .send(token, &self.slots[i].out, expect.as_ref(), deadline)
                .await
            {
                return Err(Failure {
                    why,
                    wrong_last: false,
                });
            }
            let stream = &mut self.streams[s];
            stream.in_flight += 1;
            if !behind {
                stream.frontier = Some(token);
            }
            match (&expect, stream.chain) {
                (Some(Expect::Sequence(seq)), _) => stream.next = Some(Expect::Sequence(seq + 1)),
                (_, Chain::MessageId) if chained => {
                    stream.next = Some(Expect::MessageId(self.slots[i].out.id.clone()))
                }
                _ => {}
            }
            self.slots[i].state = State::Sent {
                generation: self.generation,
                at: Instant::now(),
                expect,
            };
            self.sent_upto += 1;
        }
        Ok(())
    }

    /// When the oldest unanswered publish times out.
    fn next_timeout(&self) -> Option<Instant> {
        self.slots.iter().find_map(|s| match s.state {
            State::Sent { at, .. } => Some(at + self.ack_timeout),
            _ => None,
        })
    }

    /// Handles one ack; a failure answering the latest publish of a message is returned.
    fn on_ack(&mut self, msg: async_nats::Message) -> Option<Failure> {
        let mut tail = msg.subject.rsplit('.');
        let (Some(generation), Some(token)) = (
            tail.next().and_then(|g| g.parse::<u32>().ok()),
            tail.next().and_then(|t| t.parse::<u64>().ok()),
        ) else {
            return None;
        };
        let outcome = if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            // No stream captures the subject, or none has a leader right now (a restarted
            // server, a cluster electing one).
            Err((
                "no JetStream stream captures this subject (or it has no leader)".to_string(),
                false,
            ))
        } else {
            match serde_json::from_slice::<AckReply>(&msg.payload) {
                Ok(AckReply {
                    error: Some(err), ..
                }) => Err((
                    format!("JetStream error {}: {}", err.code, err.description),
                    err.err_code == WRONG_LAST_SEQUENCE || err.err_code == WRONG_LAST_MSG_ID,
                )),
                Ok(AckReply {
                    seq: Some(seq),
                    duplicate,
                    ..
                }) => Ok((seq, duplicate)),
                _ => Err((
                    format!("unexpected ack {:?}", String::from_utf8_lossy(&msg.payload)),
                    false,
                )),
            }
        };
        let current = self.generation;
        let index = token.checked_sub(self.base)? as usize;
        let slot = self.slots.get_mut(index)?;
        let was_sent = match &slot.state {
            State::Acked => return None,
            State::Sent { generation: g, .. } => Some(*g),
            _ => None,
        };
        match outcome {
            Ok((seq, duplicate)) => {
                // Stored, whichever publish of it this answers.
                slot.state = State::Acked;
                let s = slot.stream;
                let id = slot.out.id.clone();
                let stream = &mut self.streams[s];
                if was_sent == Some(current) {
                    stream.in_flight = stream.in_flight.saturating_sub(1);
                }
                if stream.acked_token.is_none_or(|t| t < token) {
                    stream.acked_token = Some(token);
                    stream.acked_tail = (!duplicate).then(|| stream.tail(seq, &id));
                }
                // The latest message of the stream published or acknowledged: the stream's
                // last message is known from it (or, stored already, not known).
                if duplicate && let Some(r) = &mut stream.resume {
                    r.stored_already += 1;
                }
                if stream.frontier.is_none_or(|f| token >= f) {
                    stream.frontier = Some(token);
                    if duplicate {
                        stream.probing = true;
                        stream.next = None;
                    } else {
                        stream.next = match stream.chain {
                            Chain::OneAtATime => None,
                            _ => Some(stream.tail(seq, &id)),
                        };
                        stream.probing = false;
                        if let Some(r) = stream.resume.take() {
                            let following = self
                                .slots
                                .iter()
                                .filter(|x| x.stream == s && !matches!(x.state, State::Acked))
                                .count();
                            tracing::warn!(
                                stream = %stream.name,
                                "publishing resumed after {:.1?}: message {id} stored at sequence {seq}{}; the {following} unacknowledged after it follow in order",
                                r.since.elapsed(),
                                match r.stored_already {
                                    0 => String::new(),
                                    n => format!(", {n} before it stored already (their acks were lost)"),
                                }
                            );
                        }
                    }
                }
                while matches!(
                    self.slots.front(),
                    Some(Slot {
                        state: State::Acked,
                        ..
                    })
                ) {
                    self.slots.pop_front();
                    self.base += 1;
                    self.sent_upto = self.sent_upto.saturating_sub(1);
                }
                None
            }
            Err((why, wrong_last)) => {
                if was_sent != Some(current) || generation != current {
                    return None; // an answer to an earlier publish of it
                }
                let State::Sent { expect, .. } = std::mem::replace(&mut slot.state, State::Unsent)
                else {
                    return None;
                };
                slot.state = State::Failed { expect, wrong_last };
                let s = slot.stream;
                let id = slot.out.id.clone();
                let stream = &mut self.streams[s];
                stream.in_flight = stream.in_flight.saturating_sub(1);
                tracing::debug!(stream = %stream.name, id = &*id, "publish refused: {why}");
                Some(Failure { why, wrong_last })
            }
        }
    }

    /// Takes the acks that arrive until `until`.
    async fn take_acks_until(
        &mut self,
        acks: &mut async_nats::Subscriber,
        until: Instant,
        mut settled: impl FnMut(&Publisher) -> bool,
    ) -> Result<(), String> {
        while !settled(self) {
            tokio::select! {
                biased;
                ack = acks.next() => match ack {
                    Some(msg) => {
                        self.on_ack(msg);
                    }
                    None => return Err("ack subscription closed".into()),
                },
                _ = tokio::time::sleep_until(until) => return Ok(()),
            }
        }
        Ok(())
    }

    /// After a failure: waits for the answers still due, fails when the first unacknowledged
    /// message has used up its retries, else backs off and sets every stream with
    /// unacknowledged messages to publish its first one again alone (see the module
    /// documentation).
    async fn recover(
        &mut self,
        acks: &mut async_nats::Subscriber,
        failure: Failure,
    ) -> Result<(), String> {
        // The answers still due (the refusals behind a lost message come at once).
        let latest = self
            .slots
            .iter()
            .filter_map(|s| match s.state {
                State::Sent { at, .. } => Some(at),
                _ => None,
            })
            .max();
        if let Some(latest) = latest {
            let until = (latest + self.ack_timeout).min(Instant::now() + SETTLE);
            self.take_acks_until(acks, until, |p| {
                !p.slots
                    .iter()
                    .any(|s| matches!(s.state, State::Sent { .. }))
            })
            .await?;
        }
        let Some(head) = self
            .slots
            .iter()
            .position(|s| !matches!(s.state, State::Acked))
        else {
            return Ok(()); // everything was acknowledged meanwhile
        };
        let head_token = self.base + head as u64;
        if head_token == self.retry_token && self.retries > 0 {
            self.retries += 1;
        } else {
            self.retry_token = head_token;
            self.retries = 1;
        }
        let slot = &self.slots[head];
        let waited = self.streams[slot.stream]
            .resume
            .as_ref()
            .map(|r| r.since.elapsed())
            .unwrap_or_default();
        if self.retries > self.max_retries || waited >= self.recover_within {
            return Err(format!(
                "{} (message {} on {}, after {} attempts in {waited:.1?})",
                failure.why, slot.out.id, slot.out.subject, self.retries
            ));
        }

        // Another publisher's message in between: a message refused although it expected
        // exactly what the stream acknowledged last.
        let mut firsts: Vec<usize> = Vec::new();
        for slot in &self.slots {
            if !matches!(slot.state, State::Acked) && !firsts.contains(&slot.stream) {
                firsts.push(slot.stream);
                let stream = &mut self.streams[slot.stream];
                if let State::Failed {
                    expect: Some(expect),
                    wrong_last: true,
                    ..
                } = &slot.state
                    && stream.acked_tail.as_ref() == Some(expect)
                    && stream.chain != Chain::OneAtATime
                {
                    tracing::warn!(
                        stream = %stream.name,
                        "another publisher writes to this stream: publishing one message at a time from now on, to keep this sink's order"
                    );
                    stream.chain = Chain::OneAtATime;
                }
            }
        }

        let unacked = self
            .slots
            .iter()
            .filter(|s| !matches!(s.state, State::Acked))
            .count();
        let delay = if failure.wrong_last {
            Duration::ZERO
        } else {
            (BACKOFF * 2u32.pow((self.retries - 1).min(8))).min(MAX_BACKOFF)
        };
        let slot = &self.slots[head];
        let stream = &self.streams[slot.stream].name;
        if self.retries == 1 {
            tracing::warn!(
                %stream,
                "publishing paused at message {} ({unacked} unacknowledged): {}; publishing again from it, in order, once the stream answers (attempt 2 of {} in {delay:?})",
                slot.out.id,
                failure.why,
                self.max_retries + 1
            );
        } else {
            tracing::info!(
                %stream,
                "still publishing message {} ({unacked} unacknowledged): {}; attempt {} of {} in {delay:?}",
                slot.out.id,
                failure.why,
                self.retries + 1,
                self.max_retries + 1
            );
        }

        // Every answer from now on to an earlier publish is stale, except an ack.
        self.generation = self.generation.wrapping_add(1);
        for slot in self.slots.iter_mut() {
            if !matches!(slot.state, State::Acked) {
                slot.state = State::Unsent;
            }
        }
        self.sent_upto = 0;
        let now = Instant::now();
        for s in firsts {
            let stream = &mut self.streams[s];
            stream.probing = true;
            stream.next = None;
            stream.resume.get_or_insert(Resume {
                since: now,
                stored_already: 0,
            });
        }
        for (i, stream) in self.streams.iter_mut().enumerate() {
            stream.frontier = self
                .slots
                .iter()
                .enumerate()
                .rev()
                .find(|(_, x)| x.stream == i && matches!(x.state, State::Acked))
                .map(|(k, _)| self.base + k as u64);
        }
        for stream in &mut self.streams {
            stream.in_flight = 0;
        }
        // A stream the server did not name may exist by now.
        let unknown: Vec<&'static str> = self
            .by_subject
            .iter()
            .filter(|(_, i)| !self.streams[**i].known)
            .map(|(subject, _)| *subject)
            .collect();
        for subject in unknown {
            self.look_up_again(subject).await;
        }
        let until = Instant::now() + delay;
        self.take_acks_until(acks, until, |_| false).await?;
        Ok(())
    }
}

async fn run(
    client: async_nats::Client,
    mut rx: mpsc::Receiver<Command>,
    window: usize,
    settings: SinkSettings,
) -> Result<(), String> {
    let inbox = client.new_inbox();
    let mut acks = client
        .subscribe(format!("{inbox}.*.*"))
        .await
        .map_err(|e| format!("cannot subscribe to acks: {e}"))?;
    let mut js = async_nats::jetstream::new(client.clone());
    js.set_timeout(settings.ack_timeout);
    let mut publisher = Publisher {
        client,
        js,
        inbox,
        base: 0,
        slots: VecDeque::with_capacity(window + BATCH),
        sent_upto: 0,
        generation: 0,
        streams: Vec::new(),
        by_subject: HashMap::new(),
        ack_timeout: settings.ack_timeout,
        max_retries: settings.max_retries,
        recover_within: settings.recover_within,
        retry_token: u64::MAX,
        retries: 0,
    };
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut closed = false;
    loop {
        if publisher.slots.is_empty() {
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
            if closed {
                return Ok(());
            }
        }
        if let Err(failure) = publisher.pump().await {
            publisher.recover(&mut acks, failure).await?;
            continue;
        }
        let accepting = !closed && publisher.slots.len() < window;
        let timeout = publisher.next_timeout();
        let failure = tokio::select! {
            biased;
            ack = acks.next() => match ack {
                Some(msg) => publisher.on_ack(msg),
                None => return Err("ack subscription closed".into()),
            },
            _ = tokio::time::sleep_until(timeout.unwrap_or_else(Instant::now)), if timeout.is_some() => {
                Some(Failure {
                    why: format!("no ack from the server in {:?}", settings.ack_timeout),
                    wrong_last: false,
                })
            }
            n = rx.recv_many(&mut batch, BATCH), if accepting => {
                if n == 0 {
                    closed = true;
                }
                for cmd in batch.drain(..) {
                    match cmd {
                        Command::Publish(out) => {
                            let stream = publisher.stream_for(out.subject).await;
                            publisher.slots.push_back(Slot { out, stream, state: State::Unsent });
                        }
                        Command::Flush(done) => waiters.push(done),
                    }
                }
                None
            }
        };
        if let Some(failure) = failure {
            publisher.recover(&mut acks, failure).await?;
        }
    }
}

/// The first wait before publishing again after a failure; it doubles with each retry.
const BACKOFF: Duration = Duration::from_millis(250);

/// The longest wait between two retries (a cluster elects a new stream leader within seconds:
/// publishing resumes soon after).
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// How long a failure waits at most for the answers still due before publishing again.
const SETTLE: Duration = Duration::from_secs(1);

/// How often a subject whose stream the server did not name is looked up again.
const LOOKUP_AGAIN: Duration = Duration::from_secs(10);

/// Commands taken from the channel at once.
const BATCH: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::testing::{NatsServer, synthetic_mbp10};
    use crate::bus::{BusConfig, MARKET_DATA_STREAM};

    /// The payloads of every message of `stream`, in stream order.
    fn stored_payloads(bus: &Bus, stream: &str) -> Vec<Bytes> {
        let client = bus.client().clone();
        let stream = stream.to_string();
        bus.runtime().block_on(async move {
            use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
            let js = async_nats::jetstream::new(client);
            let s = js.get_stream(&stream).await.expect("stream");
            let total = s.cached_info().state.messages as usize;
            let consumer = s
                .create_consumer(OrderedConfig {
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                })
                .await
                .expect("consumer");
            let mut messages = consumer.messages().await.expect("messages");
            let mut out = Vec::with_capacity(total);
            while out.len() < total {
                let msg = tokio::time::timeout(Duration::from_secs(30), messages.next())
                    .await
                    .expect("a message within 30 s")
                    .expect("more messages")
                    .expect("a message");
                out.push(msg.payload.clone());
            }
            out
        })
    }

    fn json(ev: &Event) -> Bytes {
        let mut buf = Vec::new();
        ev.write_json(&mut buf);
        Bytes::from(buf)
    }

    #[test]
    fn a_server_restart_mid_publish_keeps_every_event_once_and_in_order() {
        let mut server = NatsServer::start();
        let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
        let mut sink = bus
            .sink(SinkSettings {
                ack_timeout: Duration::from_secs(1),
                max_retries: 20,
                ..Default::default()
            })
            .unwrap();
        let n = 40_000u64;
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let publisher = std::thread::spawn(move || {
            for i in 0..n {
                if i == 15_000 {
                    let _ = started_tx.send(());
                }
                sink.send(&synthetic_mbp10(i))?;
            }
            sink.finish()
        });
        started_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("publisher started");
        server.restart().unwrap();
        publisher
            .join()
            .unwrap()
            .expect("the sink rides out a restart");
        let stored = stored_payloads(&bus, MARKET_DATA_STREAM);
        assert_eq!(stored.len() as u64, n, "each event once");
        for (i, payload) in stored.iter().enumerate() {
            assert_eq!(
                payload,
                &json(&synthetic_mbp10(i as u64)),
                "event {i} in order"
            );
        }
    }

    #[test]
    fn another_publisher_on_the_stream_does_not_break_this_sink_s_order() {
        let server = NatsServer::start();
        let bus = Bus::connect(&BusConfig::new(server.url())).unwrap();
        let mut sink = bus.sink(SinkSettings::default()).unwrap();
        let n = 20_000u64;
        let other = bus.client().clone();
        let foreign = bus.runtime().spawn(async move {
            let js = async_nats::jetstream::new(other);
            let mut stored = 0u64;
            for i in 0..200u64 {
                let ack = js
                    .publish("market.other", format!("{{\"other\":{i}}}").into())
                    .await
                    .expect("publish");
                ack.await.expect("ack");
                stored += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            stored
        });
        for i in 0..n {
            sink.send(&synthetic_mbp10(i)).unwrap();
        }
        sink.finish().unwrap();
        let foreign = bus.runtime().block_on(foreign).unwrap();
        let stored = stored_payloads(&bus, MARKET_DATA_STREAM);
        let ours: Vec<&Bytes> = stored
            .iter()
            .filter(|p| !p.starts_with(b"{\"other\""))
            .collect();
        assert_eq!(stored.len() - ours.len(), foreign as usize);
        let is_ours = |p: &Bytes| !p.starts_with(b"{\"other\"");
        let first_foreign = stored.iter().position(|p| !is_ours(p));
        let last_ours = stored.iter().rposition(is_ours);
        assert!(
            first_foreign < last_ours,
            "the other publisher wrote while this sink published"
        );
        assert_eq!(ours.len() as u64, n, "each event once");
        for (i, payload) in ours.iter().enumerate() {
            assert_eq!(
                *payload,
                &json(&synthetic_mbp10(i as u64)),
                "event {i} in order"
            );
        }
    }

    #[test]
    fn message_ids_are_deterministic_and_distinguish_index_and_content() {
        let a = message_id(1_700_000_000_000_000_000, 0, b"{\"x\":1}");
        assert_eq!(a, message_id(1_700_000_000_000_000_000, 0, b"{\"x\":1}"));
        assert!(a.starts_with("1700000000000000000-0-"), "{a}");
        assert_ne!(a, message_id(1_700_000_000_000_000_000, 1, b"{\"x\":1}"));
        assert_ne!(a, message_id(1_700_000_000_000_000_000, 0, b"{\"x\":2}"));
    }
}

//! [`BatchSink`]: bulk publishing to one JetStream stream with the fast-ingest batch protocol
//! (nats-server 2.14+, streams with `allow_batched`), exactly once across re-runs without a
//! per-message id.
//!
//! **The protocol.** Each message carries its batch in its reply subject,
//! `{inbox}.{batch}.{flow}.fail.{seq}.{op}.$FI` (op 0 start, 1 append, 2 commit, 3 commit
//! without storing the message — end of batch —, 4 ping). The server stores messages as they
//! come and answers on the reply subject with flow acks `{"type":"ack","seq":N,"msgs":M}` (stored
//! up to batch sequence N; the next ack after M more), `gap` and `err` events, and a PubAck on
//! commit. Gap mode `fail` makes every batch a prefix of what was sent: a lost or refused
//! message ends the batch there. At most `window` messages are sent and not yet acknowledged.
//!
//! **Exactly once.** Every message carries `Spm-Pos: {input} {index} {writer}` (the identity of
//! what is replayed, the event's position in it, and this process). The sink first takes the
//! stream's [`WriterLock`] (a second bulk writer is refused while this one runs), then reads the
//! stream's last message: when it belongs to the same input, the caller skips the events the
//! stream already holds ([`EventSink::resume_point`]). The first message of each batch carries
//! `Nats-Expected-Last-Sequence` and each commit's sequence is checked, so a writer that ignores
//! the lock ends the batch and stops the sink with a clear error. (The guard on every message
//! would close that gap entirely, at about a tenth of the server's throughput; the lock is what
//! keeps our own writers apart.)
//!
//! **Failures.** A gap, an error event, a refused batch, a lost server or missing acks make the
//! sink look at the stream again (waiting up to `recover_within` for it to come back), and go on
//! from the event after the stream's last one of this input, out of a buffer of the last
//! `retain` events sent. Only when the stream lost more than that buffer (async persistence and
//! a hard kill of the server), when another publisher writes, or when the server does not return,
//! does it fail — and then a re-run publishes exactly what is missing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream;
use async_nats::{HeaderMap, HeaderName, Subject};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::lock::{Holder, WriterLock};
use super::subject::subject_matches;
use super::{Bus, BusError};
use crate::event::{Event, JsonWriter};
use crate::io::{EventSink, SinkError};

/// Header holding a message's position and writer: `{input} {index} {writer}`.
pub const POSITION_HEADER: &str = "Spm-Pos";

/// JetStream error code of a failed `Nats-Expected-Last-Sequence` check.
const WRONG_LAST_SEQUENCE: u16 = 10071;
/// JetStream error code of a stream that does not allow batched publishing.
const BATCH_DISABLED: u16 = 10205;

const OP_START: u8 = 0;
const OP_APPEND: u8 = 1;
const OP_COMMIT: u8 = 2;
const OP_COMMIT_EOB: u8 = 3;
const OP_PING: u8 = 4;

/// Events handed from the caller's thread to the publisher at once.
const CHUNK: usize = 256;
/// Recoveries in a row without a committed batch before the sink may give up (it also keeps
/// trying for `recover_within`): a stream can answer "no responders" for a while on a node
/// that has not yet learnt of a new leader, and each recovery ends quickly.
const MAX_RECOVERIES: u32 = 5;
/// First pause before a recovery that follows another without progress (doubled each time).
const RECOVERY_BACKOFF: Duration = Duration::from_millis(250);
/// Longest such pause.
const RECOVERY_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Where a message stands in its input and who wrote it, as carried by [`POSITION_HEADER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub input: String,
    pub index: u64,
    pub writer: String,
}

impl Position {
    /// Parses a header value `{input} {index} {writer}`.
    pub fn parse(value: &str) -> Option<Position> {
        let mut parts = value.split_ascii_whitespace();
        let (input, index, writer) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(Position {
            input: input.to_string(),
            index: index.parse().ok()?,
            writer: writer.to_string(),
        })
    }
}

/// Tuning of a [`BatchSink`].
#[derive(Debug, Clone)]
pub struct BatchSettings {
    /// Identity of what is published (e.g. a hash of the replayed files and options).
    pub input: String,
    /// Every subject the caller may publish to; all must go to one stream.
    pub subjects: Vec<&'static str>,
    /// Skip what the stream already holds of `input` (false: publish everything again).
    pub resume: bool,
    /// Messages per batch; each batch's first message guards against a concurrent writer.
    pub batch_size: u64,
    /// The largest flow-ack interval this client allows the server (the server caps it at 500).
    pub flow: u16,
    /// Messages sent and not yet acknowledged, at most.
    pub window: usize,
    /// Wait for an acknowledgement before pinging, and as long again before recovering.
    pub ack_timeout: Duration,
    /// An open batch with no new message for this long is committed (the server drops idle
    /// batches after 10 s).
    pub idle_commit: Duration,
    /// Acknowledged events kept for a resend after a server loss.
    pub retain: usize,
    /// How long a lost server or stream may take to come back before the sink fails.
    pub recover_within: Duration,
    /// Create the configured streams when the sink starts.
    pub ensure_streams: bool,
}

impl BatchSettings {
    /// Defaults for publishing market events of `input`.
    pub fn new(input: impl Into<String>) -> Self {
        use crate::event::subject;
        BatchSettings {
            input: input.into(),
            subjects: vec![
                subject::FUTURES_TRADES,
                subject::FUTURES_MBP10,
                subject::OPTIONS_TRADES,
                subject::STOCKS_TRADES,
                subject::STOCKS_QUOTES,
            ],
            resume: true,
            batch_size: 10_000,
            flow: 500,
            window: 4096,
            ack_timeout: Duration::from_secs(5),
            idle_commit: Duration::from_secs(1),
            retain: 16_384,
            recover_within: Duration::from_secs(60),
            ensure_streams: true,
        }
    }
}

struct Msg {
    index: u64,
    subject: &'static str,
    payload: Bytes,
}

enum Cmd {
    Msgs(Vec<Msg>),
    Finish(oneshot::Sender<()>),
}

/// Publishes events in fast-ingest batches; see the module documentation.
pub struct BatchSink {
    bus: Bus,
    stream: String,
    tx: Option<mpsc::Sender<Cmd>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
    failure: Option<String>,
    /// The events of the chunk being filled, each as (index, subject, end of its JSON in
    /// `block`): a chunk's payloads are written one after another into one block, which is
    /// then shared by them (no copy, and one allocation per chunk).
    pending: Vec<(u64, &'static str, usize)>,
    block: Vec<u8>,
    json: JsonWriter,
    next_index: u64,
    resume_point: u64,
}

/// Room for a chunk of book images, whose JSON is about 600 bytes each.
const BLOCK: usize = CHUNK * 768;

impl std::fmt::Debug for BatchSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchSink")
            .field("url", &self.bus.url())
            .field("stream", &self.stream)
            .field("next_index", &self.next_index)
            .finish()
    }
}

/// The stream's last sequence and the position of its last message, if it has one.
type LastMessage = (u64, Option<Position>);

/// Reads the stream's last sequence and its last message's position headers.
async fn read_last(client: &async_nats::Client, stream: &str) -> Result<LastMessage, String> {
    let js = jetstream::new(client.clone());
    let s = js
        .get_stream(stream)
        .await
        .map_err(|e| format!("stream {stream}: {e}"))?;
    let last = s.cached_info().state.last_sequence;
    if last == 0 {
        return Ok((0, None));
    }
    match s.get_raw_message(last).await {
        Ok(m) => {
            let pos = m
                .headers
                .get(POSITION_HEADER)
                .and_then(|v| Position::parse(v.as_str()));
            Ok((last, pos))
        }
        // Removed since (max age, a purge): no position to go by.
        Err(e) if e.to_string().contains("no message found") => Ok((last, None)),
        Err(e) => Err(format!("stream {stream}: message {last}: {e}")),
    }
}

/// The one stream that captures every subject in `subjects`.
async fn resolve_stream(
    js: &jetstream::Context,
    subjects: &[&'static str],
) -> Result<String, BusError> {
    let streams = super::list_streams(js).await?;
    let mut found: Option<(&str, &str)> = None;
    for subject in subjects {
        let Some(st) = streams
            .iter()
            .find(|st| st.subjects.iter().any(|p| subject_matches(p, subject)))
        else {
            return Err(BusError::Stream {
                stream: "(none)".into(),
                message: format!("no JetStream stream captures {subject}"),
            });
        };
        match found {
            None => found = Some((st.name.as_str(), subject)),
            Some((name, first)) if name != st.name => {
                return Err(BusError::Stream {
                    stream: st.name.clone(),
                    message: format!(
                        "{first} goes to stream {name} but {subject} to {}: bulk publishing writes one stream",
                        st.name
                    ),
                });
            }
            Some(_) => {}
        }
    }
    found
        .map(|(name, _)| name.to_string())
        .ok_or_else(|| BusError::Stream {
            stream: "(none)".into(),
            message: "no subjects to publish".into(),
        })
}

impl BatchSink {
    /// Connects the publisher to the stream of `settings.subjects` and reads where it stands.
    /// A stream that exists without `allow_batched` gives [`BusError::BatchDisabled`].
    pub fn new(bus: &Bus, settings: BatchSettings) -> Result<BatchSink, BusError> {
        let client = bus.client().clone();
        let stream_settings = bus.stream_settings().clone();
        let (lane, resume_point) = bus.runtime().block_on(async {
            let js = jetstream::new(client.clone());
            if settings.ensure_streams {
                super::ensure_streams(&js, &stream_settings).await?;
            }
            let stream = resolve_stream(&js, &settings.subjects).await?;
            let info = js
                .get_stream(&stream)
                .await
                .map_err(|e| BusError::Stream {
                    stream: stream.clone(),
                    message: e.to_string(),
                })?
                .cached_info()
                .clone();
            if !info.config.allow_batch_publish {
                return Err(BusError::BatchDisabled { stream });
            }
            let inbox = client.new_inbox();
            let writer = inbox.rsplit('.').next().unwrap_or("spm").to_string();
            let lock = WriterLock::acquire(
                &client,
                &stream,
                Holder::this_process(&writer, &settings.input),
                info.config.num_replicas,
            )
            .await?;
            let (last_seq, last) =
                read_last(&client, &stream)
                    .await
                    .map_err(|message| BusError::Stream {
                        stream: stream.clone(),
                        message,
                    })?;
            let resume_point = match &last {
                Some(pos) if settings.resume && pos.input == settings.input => pos.index + 1,
                _ => 0,
            };
            if resume_point > 0 {
                tracing::info!(
                    %stream,
                    input = %settings.input,
                    "the stream already holds events 0..={} of this input; resuming after them",
                    resume_point - 1
                );
            } else if let Some(pos) = last.as_ref().filter(|p| p.input != settings.input) {
                // Only the stream's last message is looked at: an input replayed before another
                // one is not recognised, and is published again.
                tracing::info!(
                    %stream,
                    input = %settings.input,
                    "the stream's last message is from another input ({}); publishing this one from its first event",
                    pos.input
                );
            }
            Ok::<_, BusError>((
                Lane::new(
                    client.clone(),
                    (inbox, writer, lock),
                    stream,
                    settings,
                    last_seq,
                    resume_point,
                ),
                resume_point,
            ))
        })?;
        let stream = lane.stream.clone();
        let (tx, rx) = mpsc::channel(16);
        let task = bus.runtime().spawn(run(lane, rx));
        Ok(BatchSink {
            bus: bus.clone(),
            stream,
            tx: Some(tx),
            task: Some(task),
            failure: None,
            pending: Vec::with_capacity(CHUNK),
            block: Vec::with_capacity(BLOCK),
            json: JsonWriter::new(),
            next_index: resume_point,
            resume_point,
        })
    }

    /// The stream this sink writes.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The publisher task's error, once it has stopped.
    fn failure(&mut self) -> SinkError {
        self.tx = None;
        super::publisher_failure(&self.bus, &mut self.task, &mut self.failure)
    }

    fn push_chunk(&mut self) -> Result<(), SinkError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(tx) = &self.tx else {
            return Err(self.failure());
        };
        let block = Bytes::from(std::mem::replace(
            &mut self.block,
            Vec::with_capacity(BLOCK),
        ));
        let mut start = 0;
        let chunk = self
            .pending
            .drain(..)
            .map(|(index, subject, end)| {
                let payload = block.slice(start..end);
                start = end;
                Msg {
                    index,
                    subject,
                    payload,
                }
            })
            .collect();
        if tx.blocking_send(Cmd::Msgs(chunk)).is_err() {
            return Err(self.failure());
        }
        Ok(())
    }
}

impl EventSink for BatchSink {
    fn send(&mut self, event: &Event) -> Result<(), SinkError> {
        if self.tx.is_none() {
            return Err(self.failure());
        }
        self.json.write(event, &mut self.block);
        self.pending
            .push((self.next_index, event.subject(), self.block.len()));
        self.next_index += 1;
        if self.pending.len() >= CHUNK {
            self.push_chunk()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.push_chunk()
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.push_chunk()?;
        let Some(tx) = &self.tx else {
            return Err(self.failure());
        };
        let (done_tx, done_rx) = oneshot::channel();
        if tx.blocking_send(Cmd::Finish(done_tx)).is_err() || done_rx.blocking_recv().is_err() {
            return Err(self.failure());
        }
        Ok(())
    }

    fn resume_point(&self) -> u64 {
        self.resume_point
    }
}

impl Drop for BatchSink {
    /// Like [`super::NatsSink`]: what was handed over is published and acknowledged before
    /// the sink goes (a caller that returns early loses nothing silently).
    fn drop(&mut self) {
        if self.tx.is_some()
            && self.failure.is_none()
            && self.next_index > self.resume_point
            && let Err(err) = self.finish()
        {
            tracing::error!("NATS batch sink dropped with unacknowledged events: {err}");
        }
        // Closing the channel stops the publisher, which gives the writer lock up; one stuck
        // (a lost server) is not waited for long — the next writer then finds it gone.
        self.tx = None;
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            let _ = self
                .bus
                .runtime()
                .block_on(async { tokio::time::timeout(Duration::from_secs(3), task).await });
            abort.abort();
        }
    }
}

/// A batch sent (at least its first message) and not yet committed.
struct SentBatch {
    id: String,
    first_index: u64,
    /// Messages of the batch sent so far (batch sequences 1..=count).
    count: u64,
    /// The stream's last sequence before the batch's first message.
    base: u64,
    /// Batch sequences the server has stored, from its flow acks.
    acked: u64,
    /// The commit (or end of batch) has been sent.
    committing: bool,
    subject: &'static str,
}

/// A server reply on the inbox: a flow ack, gap or error event, or a PubAck.
#[derive(serde::Deserialize)]
struct Reply {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    last_seq: Option<u64>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(serde::Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u16,
    #[serde(default)]
    description: String,
}

/// The publisher's state, on the bus runtime.
struct Lane {
    client: async_nats::Client,
    stream: String,
    inbox: String,
    writer: String,
    /// This writer's hold on the stream; released when the publisher stops.
    lock: Option<WriterLock>,
    settings: BatchSettings,
    pos_name: HeaderName,
    /// Subjects as the client takes them, built once.
    subjects: Vec<(&'static str, Subject)>,
    /// Messages from the oldest kept, ascending by index; those from `cursor` on are unsent.
    retained: VecDeque<Msg>,
    cursor: usize,
    /// Index of the next message to send.
    next_send: u64,
    /// Every index below this one is stored, by the server's acks.
    confirmed: u64,
    batches: VecDeque<SentBatch>,
    next_batch: u64,
    /// The stream's last sequence once every batch sent so far is committed.
    expected_last: u64,
    /// At start: the stream's last sequence and where this input resumed.
    initial_last: u64,
    initial_resume: u64,
    last_progress: Instant,
    last_send: Instant,
    pinged: bool,
    recoveries: u32,
    /// When the current run of recoveries without progress began.
    recovering_since: Option<Instant>,
}

impl Lane {
    fn new(
        client: async_nats::Client,
        (inbox, writer, lock): (String, String, WriterLock),
        stream: String,
        settings: BatchSettings,
        last_seq: u64,
        resume: u64,
    ) -> Lane {
        let subjects = settings
            .subjects
            .iter()
            .map(|&s| (s, Subject::from_static(s)))
            .collect();
        let now = Instant::now();
        Lane {
            client,
            stream,
            inbox,
            writer,
            lock: Some(lock),
            pos_name: HeaderName::from_static(POSITION_HEADER),
            subjects,
            settings,
            retained: VecDeque::new(),
            cursor: 0,
            next_send: resume,
            confirmed: resume,
            batches: VecDeque::new(),
            next_batch: 0,
            expected_last: last_seq,
            initial_last: last_seq,
            initial_resume: resume,
            last_progress: now,
            last_send: now,
            pinged: false,
            recoveries: 0,
            recovering_since: None,
        }
    }

    fn unsent(&self) -> usize {
        self.retained.len() - self.cursor
    }

    fn outstanding(&self) -> u64 {
        self.next_send - self.confirmed
    }

    /// Waiting for the server: messages unacknowledged or a commit unanswered.
    fn waiting(&self) -> bool {
        self.outstanding() > 0 || self.batches.iter().any(|b| b.committing)
    }

    fn reply(&self, batch: &str, seq: u64, op: u8) -> String {
        format!(
            "{}.{batch}.{}.fail.{seq}.{op}.$FI",
            self.inbox, self.settings.flow
        )
    }

    fn subject(&self, subject: &'static str) -> Subject {
        self.subjects
            .iter()
            .find(|(s, _)| std::ptr::eq(*s, subject) || *s == subject)
            .map_or_else(|| Subject::from_static(subject), |(_, s)| s.clone())
    }

    /// Hands one message to the connection. A full connection queue (a lost server) is waited
    /// for `ack_timeout` at most; the timer is set only then, not for every message.
    async fn publish(
        &self,
        subject: &'static str,
        reply: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<(), String> {
        use std::future::Future;
        use std::task::Poll;
        let mut publish = std::pin::pin!(self.client.publish_with_reply_and_headers(
            self.subject(subject),
            Subject::from(reply),
            headers,
            payload,
        ));
        let first = std::future::poll_fn(|cx| Poll::Ready(publish.as_mut().poll(cx))).await;
        let result = match first {
            Poll::Ready(r) => r,
            Poll::Pending => match tokio::time::timeout(self.settings.ack_timeout, publish).await {
                Ok(r) => r,
                Err(_) => {
                    return Err("the connection accepts no messages (server lost?)".to_string());
                }
            },
        };
        result.map_err(|e| format!("publish failed: {e}"))
    }

    /// Sends unsent messages while the window has room.
    async fn pump(&mut self) -> Result<(), String> {
        while self.cursor < self.retained.len() && self.outstanding() < self.settings.window as u64
        {
            let (index, subject, payload) = {
                let m = &self.retained[self.cursor];
                (m.index, m.subject, m.payload.clone())
            };
            if self.batches.back().is_none_or(|b| b.committing) {
                if let Some(why) = self.lock.as_ref().and_then(WriterLock::lost) {
                    return Err(why);
                }
                let base = match self.batches.back() {
                    Some(prev) => prev.base + prev.count,
                    None => self.expected_last,
                };
                self.batches.push_back(SentBatch {
                    id: format!("{}{}", self.writer, self.next_batch),
                    first_index: index,
                    count: 0,
                    base,
                    acked: 0,
                    committing: false,
                    subject,
                });
                self.next_batch += 1;
            }
            let batch_size = self.settings.batch_size.max(1);
            let Some(b) = self.batches.back_mut() else {
                return Err("internal: no open batch".into());
            };
            b.count += 1;
            let seq = b.count;
            let op = if seq == batch_size {
                OP_COMMIT
            } else if seq == 1 {
                OP_START
            } else {
                OP_APPEND
            };
            b.committing = op == OP_COMMIT;
            b.subject = subject;
            let mut headers = HeaderMap::new();
            headers.insert(
                self.pos_name.clone(),
                format!("{} {index} {}", self.settings.input, self.writer),
            );
            // The batch's first message expects the stream to end where the previous batch
            // does (the writer lock keeps our own writers apart; see the module documentation).
            if seq == 1 {
                headers.insert(
                    async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                    b.base.to_string(),
                );
            }
            let reply = format!(
                "{}.{}.{}.fail.{seq}.{op}.$FI",
                self.inbox, b.id, self.settings.flow
            );
            self.cursor += 1;
            self.next_send = index + 1;
            self.last_send = Instant::now();
            if let Err(why) = self.publish(subject, reply, headers, payload).await {
                self.recover(why, false).await?;
            }
        }
        Ok(())
    }

    /// Commits the open batch, if any, with an end-of-batch message.
    async fn commit_open(&mut self) -> Result<(), String> {
        let Some(b) = self.batches.back_mut() else {
            return Ok(());
        };
        if b.committing || b.count == 0 {
            return Ok(());
        }
        b.committing = true;
        let (subject, id, seq) = (b.subject, b.id.clone(), b.count + 1);
        let reply = self.reply(&id, seq, OP_COMMIT_EOB);
        if let Err(why) = self
            .publish(subject, reply, HeaderMap::new(), Bytes::new())
            .await
        {
            self.recover(why, false).await?;
        }
        Ok(())
    }

    fn progress(&mut self) {
        self.last_progress = Instant::now();
        self.pinged = false;
        self.confirmed = match self.batches.front() {
            Some(b) => b.first_index + b.acked,
            None => self.next_send,
        };
        while self.retained.len() > self.settings.retain
            && self.cursor > 0
            && self
                .retained
                .front()
                .is_some_and(|m| m.index < self.confirmed)
        {
            self.retained.pop_front();
            self.cursor -= 1;
        }
    }

    async fn on_reply(&mut self, msg: async_nats::Message) -> Result<(), String> {
        let subject = msg.subject.as_str();
        let Some(batch_id) = subject
            .strip_prefix(self.inbox.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|rest| rest.split('.').next())
        else {
            return Ok(());
        };
        let Some(i) = self.batches.iter().position(|b| b.id == batch_id) else {
            return Ok(()); // a batch given up by a recovery
        };
        if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            return self
                .recover(
                    format!("no JetStream stream answered on {}", self.stream),
                    false,
                )
                .await;
        }
        let unexpected = || {
            format!(
                "unexpected reply {:?}",
                String::from_utf8_lossy(&msg.payload)
            )
        };
        let reply: Reply = match serde_json::from_slice(&msg.payload) {
            Ok(r) => r,
            Err(_) => return self.recover(unexpected(), false).await,
        };
        match reply.kind.as_deref() {
            Some("ack") => {
                let seq = reply.seq.unwrap_or(0);
                let b = &mut self.batches[i];
                b.acked = b.acked.max(seq.min(b.count));
                self.progress();
                Ok(())
            }
            Some("gap") => {
                let why = format!(
                    "the server missed messages {}..{} of batch {batch_id} in transit",
                    reply.last_seq.unwrap_or(0),
                    reply.seq.unwrap_or(0)
                );
                self.recover(why, false).await
            }
            Some("err") | None if reply.error.is_some() => {
                let err = reply.error.unwrap_or(ApiError {
                    err_code: 0,
                    description: String::new(),
                });
                let at = reply
                    .seq
                    .filter(|&s| s > 0 && reply.kind.is_some())
                    .map(|s| format!(" (message {s} of batch {batch_id})"))
                    .unwrap_or_else(|| format!(" (batch {batch_id})"));
                let why = format!("JetStream error {}: {}{at}", err.err_code, err.description);
                match err.err_code {
                    WRONG_LAST_SEQUENCE => self.recover(why, true).await,
                    BATCH_DISABLED => Err(format!(
                        "{why}: stream {} no longer allows batched publishing",
                        self.stream
                    )),
                    _ => self.recover(why, false).await,
                }
            }
            None => {
                let (Some(seq), Some(count)) = (reply.seq, reply.count) else {
                    return self.recover(unexpected(), false).await;
                };
                let b = &self.batches[i];
                if count != b.count || seq != b.base + b.count {
                    // Something that ignores the writer lock wrote in the middle of this batch:
                    // what is stored is interleaved, and only a person can tell what to keep.
                    return Err(format!(
                        "batch {batch_id} committed {count} of {} messages at stream sequence {seq}, expected {}: another publisher, one that does not take the writer lock, wrote to stream {} meanwhile; stopping. Its messages sit between this input's events {} and {}",
                        b.count,
                        b.base + b.count,
                        self.stream,
                        b.first_index,
                        b.first_index + b.count - 1,
                    ));
                }
                if i != 0 {
                    return self
                        .recover(format!("batch {batch_id} committed out of order"), false)
                        .await;
                }
                self.batches.pop_front();
                self.expected_last = seq;
                self.recoveries = 0;
                self.recovering_since = None;
                self.progress();
                Ok(())
            }
            Some(other) => {
                tracing::debug!(kind = other, "ignoring a fast-ingest reply");
                Ok(())
            }
        }
    }

    async fn on_tick(&mut self) -> Result<(), String> {
        let now = Instant::now();
        if self.waiting() {
            if now.duration_since(self.last_progress) < self.settings.ack_timeout {
                return Ok(());
            }
            if self.pinged {
                let why = format!(
                    "no acknowledgement from the server in {:?}",
                    self.settings.ack_timeout * 2
                );
                return self.recover(why, false).await;
            }
            self.pinged = true;
            self.last_progress = now;
            if let Some(b) = self.batches.front() {
                let reply = self.reply(&b.id, b.count, OP_PING);
                let subject = b.subject;
                tracing::debug!(batch = %b.id, "no flow ack for a while; pinging");
                if let Err(why) = self
                    .publish(subject, reply, HeaderMap::new(), Bytes::new())
                    .await
                {
                    return self.recover(why, false).await;
                }
            }
        } else if now.duration_since(self.last_send) >= self.settings.idle_commit {
            self.commit_open().await?;
        }
        Ok(())
    }

    /// Finds where the stream stands and goes on from there (see the module documentation).
    /// `conflict`: the failure says another publisher may be writing.
    async fn recover(&mut self, why: String, conflict: bool) -> Result<(), String> {
        self.recoveries += 1;
        let since = *self.recovering_since.get_or_insert_with(Instant::now);
        if self.recoveries > MAX_RECOVERIES && since.elapsed() >= self.settings.recover_within {
            return Err(format!(
                "{why} (stream {}; gave up after {} attempts in {:.0?} without progress)",
                self.stream,
                self.recoveries - 1,
                since.elapsed()
            ));
        }
        if self.recoveries > 1 {
            let pause = RECOVERY_BACKOFF
                .saturating_mul(1 << (self.recoveries - 2).min(8))
                .min(RECOVERY_BACKOFF_MAX);
            tokio::time::sleep(pause).await;
        }
        if let Some(lost) = self.lock.as_ref().and_then(WriterLock::lost) {
            return Err(format!("{why}; {lost}"));
        }
        tracing::warn!(stream = %self.stream, "{why}; checking where the stream stands");
        let deadline = Instant::now() + self.settings.recover_within;
        let mut delay = Duration::from_millis(100);
        let (last_seq, last) = loop {
            let err = if self.client.connection_state() != State::Connected {
                "not connected to NATS".to_string()
            } else {
                match read_last(&self.client, &self.stream).await {
                    Ok(v) => break v,
                    Err(e) => e,
                }
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "{why}; stream {} did not come back within {:?} ({err})",
                    self.stream, self.settings.recover_within
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        };
        let describe = |last: &Option<Position>| match last {
            Some(p) => format!(
                "event {} of input {} by writer {}",
                p.index, p.input, p.writer
            ),
            None => "no position".to_string(),
        };
        let (mine, same_input) = match &last {
            Some(p) => (p.writer == self.writer, p.input == self.settings.input),
            None => (false, false),
        };
        if conflict && !mine {
            return Err(format!(
                "another publisher is writing to stream {} (its last message, sequence {last_seq}, holds {}); refusing to interleave. Run again once it is done: the replay resumes where the stream stands",
                self.stream,
                describe(&last)
            ));
        }
        let resume = match &last {
            Some(p) if mine || (same_input && self.settings.resume) => p.index + 1,
            _ if last_seq == self.initial_last => self.initial_resume,
            _ => {
                return Err(format!(
                    "stream {} changed under this publisher (last sequence {last_seq}, {} at start; its last message holds {}): another publisher wrote to it, or the server lost messages. Run again to publish exactly what is missing",
                    self.stream,
                    self.initial_last,
                    describe(&last)
                ));
            }
        };
        let first = self.retained.front().map_or(self.next_send, |m| m.index);
        if resume < first {
            return Err(format!(
                "the server lost acknowledged events {resume}..{first} of this input (a hard stop with async persistence?); they are no longer in this publisher's buffer. Run again to publish exactly what is missing"
            ));
        }
        if resume > self.next_send {
            return Err(format!(
                "stream {} holds event {} of this input, beyond the {} this publisher sent: another publisher of the same input is writing; refusing to interleave",
                self.stream,
                resume - 1,
                self.next_send
            ));
        }
        let resent = self.next_send - resume;
        while self.retained.front().is_some_and(|m| m.index < resume) {
            self.retained.pop_front();
        }
        self.cursor = 0;
        self.next_send = resume;
        self.confirmed = resume;
        self.batches.clear();
        self.expected_last = last_seq;
        self.last_progress = Instant::now();
        self.pinged = false;
        tracing::warn!(
            stream = %self.stream,
            "the stream holds this input up to event {} (sequence {last_seq}); publishing again from there ({resent} events re-sent)",
            resume as i128 - 1
        );
        Ok(())
    }
}

/// Publishes until the sink goes (or fails), then gives the writer lock up.
async fn run(mut lane: Lane, rx: mpsc::Receiver<Cmd>) -> Result<(), String> {
    let result = publish_all(&mut lane, rx).await;
    if let Some(lock) = lane.lock.take() {
        let _ = tokio::time::timeout(Duration::from_secs(2), lock.release()).await;
    }
    result
}

async fn publish_all(lane: &mut Lane, mut rx: mpsc::Receiver<Cmd>) -> Result<(), String> {
    let mut replies = lane
        .client
        .subscribe(format!("{}.>", lane.inbox))
        .await
        .map_err(|e| format!("cannot subscribe to replies: {e}"))?;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut finishing: Option<oneshot::Sender<()>> = None;
    loop {
        lane.pump().await?;
        if finishing.is_some() && lane.unsent() == 0 {
            lane.commit_open().await?;
            if lane.batches.is_empty()
                && let Some(done) = finishing.take()
            {
                let _ = done.send(());
            }
        }
        let intake = finishing.is_none() && lane.unsent() < CHUNK * 4;
        tokio::select! {
            biased;
            reply = replies.next() => match reply {
                Some(m) => lane.on_reply(m).await?,
                None => return Err("the reply subscription closed".into()),
            },
            _ = tick.tick() => lane.on_tick().await?,
            cmd = rx.recv(), if intake => match cmd {
                Some(Cmd::Msgs(msgs)) => lane.retained.extend(msgs),
                Some(Cmd::Finish(done)) => finishing = Some(done),
                None => return Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_from_their_header_value() {
        assert_eq!(
            Position::parse("3f2a9c0d11e4b7a2 123456 Wr1t3r"),
            Some(Position {
                input: "3f2a9c0d11e4b7a2".into(),
                index: 123_456,
                writer: "Wr1t3r".into(),
            })
        );
        assert_eq!(Position::parse("3f2a 12"), None);
        assert_eq!(Position::parse("3f2a x w"), None);
        assert_eq!(Position::parse("3f2a 1 w extra"), None);
    }

    #[test]
    fn replies_of_every_kind_deserialize() {
        let ack: Reply = serde_json::from_str(r#"{"type":"ack","seq":500,"msgs":500}"#).unwrap();
        assert_eq!(ack.kind.as_deref(), Some("ack"));
        assert_eq!(ack.seq, Some(500));
        let puback: Reply =
            serde_json::from_str(r#"{"stream":"MARKET_DATA","seq":6,"batch":"b1","count":5}"#)
                .unwrap();
        assert!(puback.kind.is_none() && puback.error.is_none());
        assert_eq!((puback.seq, puback.count), (Some(6), Some(5)));
        let err: Reply = serde_json::from_str(
            r#"{"type":"err","seq":2,"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 1"}}"#,
        )
        .unwrap();
        assert_eq!(err.error.map(|e| e.err_code), Some(WRONG_LAST_SEQUENCE));
        let gap: Reply = serde_json::from_str(r#"{"type":"gap","last_seq":3,"seq":4}"#).unwrap();
        assert_eq!((gap.last_seq, gap.seq), (Some(3), Some(4)));
    }
}

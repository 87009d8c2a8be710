//! Live feeds → canonical events, with the feeds' health on `feeds.status`.
//!
//! `spm-ingest` runs one *feed* per connection: a Databento Live session per dataset
//! ([`databento`]), a Massive WebSocket cluster ([`massive`]), or DBN bytes on stdin
//! ([`stdin`]). Every feed runs as a tokio task (stdin on a thread of its own) and hands what it
//! reads to its [`FeedTx`]: one bounded queue, shared by all feeds, to the publisher
//! ([`publish::run`]), which writes to the command's [`crate::io::EventSink`] (stdout or NATS),
//! flushing whenever the queue runs dry so a live event never waits in a buffer.
//!
//! Nothing is lost silently. A live feed never waits for the sink: when the queue is full the
//! event is dropped, counted, and reported as a `gap` [`FeedStatus`] (first and last event time
//! dropped, records lost) as soon as there is room again. Status reports themselves always wait
//! for room. Disconnects, reconnects, heartbeat timeouts and the feeds' own gap notices are
//! status reports too, logged as they happen and counted for the summary on exit.

pub mod backoff;
pub mod databento;
pub mod massive;
pub mod publish;
pub mod stdin;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

pub use backoff::Backoff;

use crate::event::{Event, FeedState, FeedStatus};

/// The `source` of events read from Databento Live.
pub const SOURCE_DATABENTO: &str = "direct_feed";
/// The `source` of events read from Massive's WebSocket.
pub const SOURCE_MASSIVE: &str = "massive_ws";

/// Why a feed stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The feed refused our credentials: retrying would only repeat it.
    #[error("{feed}: authentication failed: {message}")]
    Auth { feed: String, message: String },
    /// The feed refused the session for a reason a retry cannot fix (connection limit, a bad
    /// subscription, an unknown dataset).
    #[error("{feed}: refused: {message}")]
    Refused { feed: String, message: String },
    /// A setting is missing or wrong (no key, a malformed address).
    #[error("{0}")]
    Config(String),
    /// The input cannot be read any further (corrupt DBN on stdin); everything before was sent.
    #[error("{0}")]
    Input(String),
    /// The sink failed (NATS gone for longer than the sink's recovery window).
    #[error("publishing: {0}")]
    Sink(#[from] crate::io::SinkError),
}

/// An API key: never printed. `Debug` and `Display` show `***`; [`Secret::redact`] scrubs it
/// from any text (a server's error message may echo what it was sent).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(key: impl Into<String>) -> Secret {
        Secret(key.into().trim().to_string())
    }

    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of the key replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "***")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Wall-clock time in Unix nanoseconds.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// What a feed hands the publisher.
#[derive(Debug)]
pub enum Item {
    Event(Event),
    Status(FeedStatus),
}

/// Tells feeds to stop (SIGINT/SIGTERM, or a test): they stop reading, report what they hold
/// and return `Ok`.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Whether stopping was asked for.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until stopping is asked for (forever if the sender is gone without asking).
    pub async fn stopped(&mut self) {
        if self.0.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The sending half of [`Stop`].
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    pub fn new() -> (StopHandle, Stop) {
        let (tx, rx) = watch::channel(false);
        (StopHandle(Arc::new(tx)), Stop(rx))
    }

    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// Counters of one feed, read by the publisher for the summary on exit.
#[derive(Debug, Default)]
pub struct FeedCounters {
    /// Events handed to the queue.
    pub events: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Gaps reported (dropped runs, the feed's own gap notices).
    pub gaps: AtomicU64,
    /// Records the feed said it lost (skipped records, dropped events).
    pub records_lost: AtomicU64,
    /// Disconnections.
    pub disconnects: AtomicU64,
    /// Connections made after the first.
    pub reconnects: AtomicU64,
    /// Events read again after a resubscription and not published a second time.
    pub duplicates_dropped: AtomicU64,
    /// Events left out by choice (option trades of other expiries than the day's).
    pub filtered: AtomicU64,
}

impl FeedCounters {
    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

/// A run of events dropped because the queue was full, not yet reported.
#[derive(Debug, Clone, Copy)]
struct Dropped {
    first_ts: u64,
    last_ts: u64,
    count: u64,
}

/// One feed's way to the publisher. Events never wait ([`FeedTx::event`]); status reports
/// always get through ([`FeedTx::status`]).
#[derive(Debug)]
pub struct FeedTx {
    tx: mpsc::Sender<Item>,
    source: String,
    feed: String,
    counters: Arc<FeedCounters>,
    dropped: Option<Dropped>,
    stop: Stop,
    connected_once: bool,
}

impl FeedTx {
    /// The `source` stamped on this feed's events and status reports.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The feed's name (dataset, cluster, `stdin`).
    pub fn feed(&self) -> &str {
        &self.feed
    }

    pub fn counters(&self) -> &FeedCounters {
        &self.counters
    }

    /// A handle telling this feed to stop.
    pub fn stop(&self) -> Stop {
        self.stop.clone()
    }

    /// Queues an event without waiting. When the queue is full the event is dropped and
    /// counted; the run of dropped events is reported as one gap once there is room.
    /// Returns whether the event was queued.
    pub fn event(&mut self, event: Event) -> bool {
        if let Some(d) = self.dropped {
            // The gap is reported before the next event, once there is room for it.
            if self.tx.capacity() == 0
                || self.tx.try_send(Item::Status(self.gap_status(d))).is_err()
            {
                self.drop_event(&event);
                return false;
            }
            self.dropped = None;
            self.log_gap(d);
        }
        match self.tx.try_send(Item::Event(event)) {
            Ok(()) => {
                self.counters.events.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                if let Item::Event(event) = e.into_inner() {
                    self.drop_event(&event);
                }
                false
            }
        }
    }

    /// Queues an event, waiting for room: for inputs that can be paused (stdin).
    pub async fn event_wait(&mut self, event: Event) -> Result<(), IngestError> {
        self.tx
            .send(Item::Event(event))
            .await
            .map_err(|_| IngestError::Sink(crate::io::SinkError::Closed))?;
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// [`FeedTx::event_wait`] from a plain thread.
    pub fn event_blocking(&mut self, event: Event) -> Result<(), IngestError> {
        self.tx
            .blocking_send(Item::Event(event))
            .map_err(|_| IngestError::Sink(crate::io::SinkError::Closed))?;
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn drop_event(&mut self, event: &Event) {
        let ts = event.ts_event_ns();
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        self.counters.records_lost.fetch_add(1, Ordering::Relaxed);
        let d = self.dropped.get_or_insert(Dropped {
            first_ts: ts,
            last_ts: ts,
            count: 0,
        });
        d.first_ts = d.first_ts.min(ts);
        d.last_ts = d.last_ts.max(ts);
        d.count += 1;
    }

    fn gap_status(&self, d: Dropped) -> FeedStatus {
        let mut s = self.status_of(
            FeedState::Gap,
            format!(
                "publisher queue full: {} event(s) dropped (the sink could not keep up)",
                d.count
            ),
        );
        s.gap_start_ns = Some(d.first_ts);
        s.gap_end_ns = Some(d.last_ts);
        s.records_lost = Some(d.count);
        s
    }

    fn log_gap(&self, d: Dropped) {
        self.counters.gaps.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "{}: gap: {} event(s) dropped between {} and {}: the sink could not keep up",
            self.feed,
            d.count,
            crate::cli::format_ts(d.first_ts),
            crate::cli::format_ts(d.last_ts)
        );
    }

    /// A status report of this feed, stamped now.
    pub fn status_of(&self, state: FeedState, reason: impl Into<String>) -> FeedStatus {
        FeedStatus {
            ts_ns: now_ns(),
            source: self.source.clone(),
            feed: Some(self.feed.clone()),
            state,
            gap_start_ns: None,
            gap_end_ns: None,
            reason: reason.into(),
            records_lost: None,
        }
    }

    /// Reports a status: logged now, counted, and queued (waiting for room; a pending run of
    /// dropped events is reported first).
    pub async fn status(&mut self, status: FeedStatus) {
        if let Some(d) = self.dropped.take() {
            let gap = self.gap_status(d);
            self.log_gap(d);
            let _ = self.tx.send(Item::Status(gap)).await;
        }
        self.count_and_log(&status);
        let _ = self.tx.send(Item::Status(status)).await;
    }

    /// [`FeedTx::status`] from a plain thread.
    pub fn status_blocking(&mut self, status: FeedStatus) {
        if let Some(d) = self.dropped.take() {
            let gap = self.gap_status(d);
            self.log_gap(d);
            let _ = self.tx.blocking_send(Item::Status(gap));
        }
        self.count_and_log(&status);
        let _ = self.tx.blocking_send(Item::Status(status));
    }

    /// Shorthand: a status of `state` with `reason`.
    pub async fn report(&mut self, state: FeedState, reason: impl Into<String>) {
        let s = self.status_of(state, reason);
        self.status(s).await;
    }

    /// Reports a run of dropped events still pending (call before returning).
    pub async fn flush_gaps(&mut self) {
        if let Some(d) = self.dropped.take() {
            let gap = self.gap_status(d);
            self.log_gap(d);
            let _ = self.tx.send(Item::Status(gap)).await;
        }
    }

    /// Counts an event left out by choice (an option trade of another expiry).
    pub fn count_filtered(&self) {
        self.counters.filtered.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event read but deliberately not published (overlap after a resubscription).
    pub fn count_duplicate(&self) {
        self.counters
            .duplicates_dropped
            .fetch_add(1, Ordering::Relaxed);
    }

    fn count_and_log(&mut self, s: &FeedStatus) {
        let c = &self.counters;
        let feed = &self.feed;
        let reason = &s.reason;
        match s.state {
            FeedState::Connected => {
                if self.connected_once {
                    c.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                self.connected_once = true;
                tracing::info!("{feed}: connected: {reason}");
            }
            FeedState::Disconnected => {
                c.disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("{feed}: disconnected: {reason}");
            }
            FeedState::Reconnecting => tracing::info!("{feed}: reconnecting: {reason}"),
            FeedState::Gap => {
                c.gaps.fetch_add(1, Ordering::Relaxed);
                if let Some(n) = s.records_lost {
                    c.records_lost.fetch_add(n, Ordering::Relaxed);
                }
                let span = match (s.gap_start_ns, s.gap_end_ns) {
                    (Some(a), Some(b)) => format!(
                        " ({} → {})",
                        crate::cli::format_ts(a),
                        crate::cli::format_ts(b)
                    ),
                    _ => String::new(),
                };
                let lost = s
                    .records_lost
                    .map_or(String::new(), |n| format!(", {n} record(s) lost"));
                tracing::warn!("{feed}: gap{span}{lost}: {reason}");
            }
            FeedState::Error => tracing::error!("{feed}: {reason}"),
        }
    }
}

/// Each feed's name and counters, for the summary.
pub type FeedList = Vec<(String, Arc<FeedCounters>)>;

/// The queue every feed writes to, and the feeds registered on it.
pub struct Ingest {
    tx: mpsc::Sender<Item>,
    rx: mpsc::Receiver<Item>,
    stop: Stop,
    stop_handle: StopHandle,
    feeds: FeedList,
}

/// Default capacity of the queue between the feeds and the sink, in events.
pub const QUEUE_CAPACITY: usize = 65_536;

impl Ingest {
    pub fn new(capacity: usize) -> Ingest {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (stop_handle, stop) = StopHandle::new();
        Ingest {
            tx,
            rx,
            stop,
            stop_handle,
            feeds: Vec::new(),
        }
    }

    /// A sender for a new feed named `feed`, whose events carry `source`.
    pub fn feed(&mut self, source: &str, feed: &str) -> FeedTx {
        let counters = Arc::new(FeedCounters::default());
        self.feeds.push((feed.to_string(), counters.clone()));
        FeedTx {
            tx: self.tx.clone(),
            source: source.to_string(),
            feed: feed.to_string(),
            counters,
            dropped: None,
            stop: self.stop.clone(),
            connected_once: false,
        }
    }

    /// Tells every feed to stop.
    pub fn stop_handle(&self) -> &StopHandle {
        &self.stop_handle
    }

    /// Runs a feed on `rt`. A feed that fails stops the others: the command exits 1 with its
    /// error rather than carry on with part of the market missing.
    pub fn spawn<F>(
        &self,
        rt: &tokio::runtime::Handle,
        feed: F,
    ) -> tokio::task::JoinHandle<Result<(), IngestError>>
    where
        F: std::future::Future<Output = Result<(), IngestError>> + Send + 'static,
    {
        let stop = self.stop_handle.clone();
        rt.spawn(async move {
            let result = feed.await;
            if result.is_err() {
                stop.stop();
            }
            result
        })
    }

    /// The receiving end and the feeds' counters, for the publisher. The queue ends once every
    /// [`FeedTx`] is dropped.
    pub fn into_parts(self) -> (mpsc::Receiver<Item>, StopHandle, FeedList) {
        (self.rx, self.stop_handle, self.feeds)
    }
}

/// One line per feed for the summary on exit.
pub fn feed_report(feed: &str, c: &FeedCounters) -> String {
    let g = FeedCounters::get;
    let n = crate::cli::thousands;
    let mut line = format!("  {feed:<14} {:>12} events", n(g(&c.events)));
    let extra = [
        ("reconnects", g(&c.reconnects)),
        ("disconnects", g(&c.disconnects)),
        ("gaps", g(&c.gaps)),
        ("records lost", g(&c.records_lost)),
        ("dropped (queue full)", g(&c.dropped)),
        ("overlap dropped", g(&c.duplicates_dropped)),
        ("filtered out", g(&c.filtered)),
    ];
    for (name, v) in extra {
        if v > 0 {
            line.push_str(&format!(", {} {name}", n(v)));
        }
    }
    line.push('\n');
    line
}

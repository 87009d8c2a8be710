//! The hub between the input and the WebSocket clients: the latest `levels.signals` payload,
//! one newest-wins queue per client, the gateway's counters, and a compact history of spot and
//! calls (the onsets of BREAK and REJECT) for a dashboard opened mid-session.
//!
//! A payload is kept as the exact bytes it arrived as, validated once, and shared by reference
//! with every client: nothing is serialised per client.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use tokio::sync::Notify;

use crate::event::LevelSignals;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data behind every lock here: a panic elsewhere cannot leave it torn.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One payload as received.
#[derive(Debug)]
pub struct Payload {
    /// The exact bytes of the pipe line or NATS message.
    pub text: Utf8Bytes,
    /// Event time of the snap, in milliseconds.
    pub event_ts_ms: i64,
    /// When the gateway received it.
    pub received: Instant,
    pub received_wall: SystemTime,
}

/// A client's queue: bounded, and when full the oldest payload gives way to the newest, so a
/// client that falls behind is handed the newest state, never a backlog.
#[derive(Debug)]
pub struct ClientQueue {
    items: Mutex<VecDeque<Arc<Payload>>>,
    notify: Notify,
    capacity: usize,
    dropped: AtomicU64,
    closed: AtomicBool,
}

impl ClientQueue {
    fn new(capacity: usize) -> Self {
        ClientQueue {
            items: Mutex::new(VecDeque::with_capacity(capacity)),
            notify: Notify::new(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues a payload; returns whether an older one was dropped to make room.
    fn push(&self, p: Arc<Payload>) -> bool {
        let dropped = {
            let mut q = lock(&self.items);
            let full = q.len() >= self.capacity;
            if full {
                q.pop_front();
            }
            q.push_back(p);
            full
        };
        if dropped {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.notify.notify_one();
        dropped
    }

    /// The next payload, waiting for one; `None` once the queue is closed.
    pub async fn pop(&self) -> Option<Arc<Payload>> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            if let Some(p) = lock(&self.items).pop_front() {
                return Some(p);
            }
            // A notify before this await leaves a permit, so nothing is missed.
            self.notify.notified().await;
        }
    }

    /// How long the oldest queued payload has waited.
    pub fn oldest_age(&self) -> Option<Duration> {
        lock(&self.items).front().map(|p| p.received.elapsed())
    }

    /// Payloads this client never got because newer ones replaced them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

/// Upper bounds, in seconds, of the queue-age histogram buckets.
pub const QUEUE_AGE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A Prometheus histogram of how long payloads waited in client queues before being written.
#[derive(Debug, Default)]
pub struct AgeHistogram {
    buckets: [AtomicU64; QUEUE_AGE_BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl AgeHistogram {
    pub fn observe(&self, age: Duration) {
        let secs = age.as_secs_f64();
        for (i, le) in QUEUE_AGE_BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            age.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
    }

    /// Cumulative bucket counts, total count and sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        (
            self.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            self.count.load(Ordering::Relaxed),
            self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }
}

/// The gateway's counters.
#[derive(Debug, Default)]
pub struct Counters {
    pub payloads_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub drops: AtomicU64,
    pub evictions: AtomicU64,
    pub clients_refused: AtomicU64,
    pub clients_total: AtomicU64,
    pub bad_inputs: AtomicU64,
    pub ignored_inputs: AtomicU64,
    pub queue_age: AgeHistogram,
}

/// The state of the input, for `/health`.
#[derive(Debug, Clone, Serialize)]
pub struct InputStatus {
    /// `stdin` or `nats`.
    pub mode: &'static str,
    /// `open`, `ended`, `failed` (stdin) — NATS state is read from the connection itself.
    pub state: &'static str,
    /// The last error, if any (a bad line, the input failing).
    pub last_error: Option<String>,
}

/// A call: a level's signal turning to BREAK or REJECT.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub ts: i64,
    pub level_id: String,
    pub kind: String,
    pub price: f64,
    pub signal: String,
}

/// A level line of the latest snap, for the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelLine {
    pub id: String,
    pub kind: String,
    pub price: f64,
    pub signal: String,
}

/// Spot and calls over the last `window_s` seconds of event time.
#[derive(Debug, Default)]
pub struct History {
    window_ms: i64,
    spot: VecDeque<(i64, Option<f64>)>,
    calls: VecDeque<Call>,
    signals: HashMap<String, String>,
    levels: Vec<LevelLine>,
}

/// What `/api/history` returns.
#[derive(Debug, Serialize)]
pub struct HistoryView<'a> {
    pub window_s: i64,
    pub spot: &'a VecDeque<(i64, Option<f64>)>,
    pub calls: &'a VecDeque<Call>,
    pub levels: &'a [LevelLine],
}

/// Most spot points kept (a snap every 250 ms for 10 minutes is 2 400).
const MAX_SPOT_POINTS: usize = 20_000;
/// Most calls kept.
const MAX_CALLS: usize = 500;

impl History {
    pub fn new(window: Duration) -> Self {
        History {
            window_ms: window.as_millis().min(i64::MAX as u128) as i64,
            ..Default::default()
        }
    }

    /// Takes in one snap: its spot, its levels, and the calls that begin at it.
    pub fn record(&mut self, snap: &LevelSignals) {
        // A snap older than the last one (a replay started again) starts a new history.
        if self.spot.back().is_some_and(|&(t, _)| snap.ts < t) {
            self.spot.clear();
            self.calls.clear();
            self.signals.clear();
        }
        self.spot
            .push_back((snap.ts, snap.spy.spot.filter(|v| v.is_finite())));
        for l in &snap.levels {
            let before = self.signals.get(&l.id).map(String::as_str);
            let is_call = matches!(l.signal.as_str(), "BREAK" | "REJECT");
            if is_call && before != Some(l.signal.as_str()) {
                self.calls.push_back(Call {
                    ts: snap.ts,
                    level_id: l.id.clone(),
                    kind: l.kind.clone(),
                    price: l.price,
                    signal: l.signal.clone(),
                });
            }
            if before != Some(l.signal.as_str()) {
                self.signals.insert(l.id.clone(), l.signal.clone());
            }
        }
        if self.signals.len() > 4 * snap.levels.len().max(64) {
            let active: std::collections::HashSet<&str> =
                snap.levels.iter().map(|l| l.id.as_str()).collect();
            self.signals.retain(|id, _| active.contains(id.as_str()));
        }
        self.levels = snap
            .levels
            .iter()
            .map(|l| LevelLine {
                id: l.id.clone(),
                kind: l.kind.clone(),
                price: l.price,
                signal: l.signal.clone(),
            })
            .collect();
        let horizon = snap.ts.saturating_sub(self.window_ms);
        while self
            .spot
            .front()
            .is_some_and(|&(t, _)| t < horizon || self.spot.len() > MAX_SPOT_POINTS)
        {
            self.spot.pop_front();
        }
        while self
            .calls
            .front()
            .is_some_and(|c| c.ts < horizon || self.calls.len() > MAX_CALLS)
        {
            self.calls.pop_front();
        }
    }

    pub fn view(&self) -> HistoryView<'_> {
        HistoryView {
            window_s: self.window_ms / 1000,
            spot: &self.spot,
            calls: &self.calls,
            levels: &self.levels,
        }
    }
}

/// A registered client's handle.
#[derive(Debug)]
pub struct Registration {
    pub id: u64,
    pub queue: Arc<ClientQueue>,
    /// The latest payload at the moment of registering (sent first).
    pub latest: Option<Arc<Payload>>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Hub {
    clients: Mutex<Clients>,
    queue_capacity: usize,
    max_clients: usize,
    pub counters: Counters,
    history: Mutex<History>,
    input: Mutex<InputStatus>,
    pub started: Instant,
    pub started_wall: SystemTime,
}

#[derive(Debug, Default)]
struct Clients {
    latest: Option<Arc<Payload>>,
    next_id: u64,
    queues: HashMap<u64, Arc<ClientQueue>>,
}

impl Hub {
    pub fn new(
        queue_capacity: usize,
        max_clients: usize,
        history: Duration,
        mode: &'static str,
    ) -> Self {
        Hub {
            clients: Mutex::new(Clients::default()),
            queue_capacity: queue_capacity.max(1),
            max_clients,
            counters: Counters::default(),
            history: Mutex::new(History::new(history)),
            input: Mutex::new(InputStatus {
                mode,
                state: "open",
                last_error: None,
            }),
            started: Instant::now(),
            started_wall: SystemTime::now(),
        }
    }

    /// Hands a new payload to every client (and keeps it as the latest). `snap` is the same
    /// payload parsed, for the history.
    pub fn publish(&self, text: Utf8Bytes, snap: &LevelSignals) {
        let payload = Arc::new(Payload {
            text,
            event_ts_ms: snap.ts,
            received: Instant::now(),
            received_wall: SystemTime::now(),
        });
        lock(&self.history).record(snap);
        self.counters.payloads_in.fetch_add(1, Ordering::Relaxed);
        let mut drops = 0;
        {
            let mut c = lock(&self.clients);
            c.latest = Some(payload.clone());
            for q in c.queues.values() {
                drops += u64::from(q.push(payload.clone()));
            }
        }
        if drops > 0 {
            self.counters.drops.fetch_add(drops, Ordering::Relaxed);
        }
    }

    /// Registers a client, or `None` when `max_clients` are connected.
    pub fn register(&self) -> Option<Registration> {
        let mut c = lock(&self.clients);
        if c.queues.len() >= self.max_clients {
            self.counters
                .clients_refused
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        c.next_id += 1;
        let id = c.next_id;
        let queue = Arc::new(ClientQueue::new(self.queue_capacity));
        c.queues.insert(id, queue.clone());
        self.counters.clients_total.fetch_add(1, Ordering::Relaxed);
        Some(Registration {
            id,
            queue,
            latest: c.latest.clone(),
        })
    }

    /// Removes a client (its session ended or it was evicted).
    pub fn unregister(&self, id: u64) {
        if let Some(q) = lock(&self.clients).queues.remove(&id) {
            q.close();
        }
    }

    pub fn clients_connected(&self) -> usize {
        lock(&self.clients).queues.len()
    }

    /// The latest payload, if any.
    pub fn latest(&self) -> Option<Arc<Payload>> {
        lock(&self.clients).latest.clone()
    }

    /// The oldest wait among all client queues.
    pub fn oldest_queue_age(&self) -> Option<Duration> {
        lock(&self.clients)
            .queues
            .values()
            .filter_map(|q| q.oldest_age())
            .max()
    }

    /// The history as JSON.
    pub fn history_json(&self) -> Vec<u8> {
        let h = lock(&self.history);
        // Plain numbers and strings: serialising into a Vec cannot fail.
        serde_json::to_vec(&h.view()).unwrap_or_default()
    }

    pub fn input_status(&self) -> InputStatus {
        lock(&self.input).clone()
    }

    pub fn set_input_state(&self, state: &'static str, error: Option<String>) {
        let mut s = lock(&self.input);
        s.state = state;
        if error.is_some() {
            s.last_error = error;
        }
    }

    /// Counts an input item that was not a readable payload.
    pub fn bad_input(&self, message: String) {
        self.counters.bad_inputs.fetch_add(1, Ordering::Relaxed);
        lock(&self.input).last_error = Some(message);
    }

    /// Closes every client queue (shutdown).
    pub fn close_all(&self) {
        let mut c = lock(&self.clients);
        for (_, q) in c.queues.drain() {
            q.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LevelSignal, SpyQuote};

    fn snap(ts: i64, levels: &[(&str, f64, &str)]) -> LevelSignals {
        LevelSignals {
            ts,
            spy: SpyQuote {
                spot: Some(687.0),
                ..Default::default()
            },
            levels: levels
                .iter()
                .map(|(id, price, signal)| LevelSignal {
                    id: id.to_string(),
                    price: *price,
                    kind: "ROUND".into(),
                    signal: signal.to_string(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn text(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s)
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_gets_the_newest_payloads_not_a_backlog() {
        let hub = Hub::new(2, 10, Duration::from_secs(600), "stdin");
        let reg = hub.register().expect("room");
        for i in 0..5 {
            hub.publish(text(&format!("p{i}")), &snap(i, &[]));
        }
        assert_eq!(reg.queue.pop().await.expect("open").text.as_str(), "p3");
        assert_eq!(reg.queue.pop().await.expect("open").text.as_str(), "p4");
        assert_eq!(reg.queue.dropped(), 3);
        assert_eq!(hub.counters.drops.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_new_client_is_handed_the_latest_payload_and_max_clients_is_enforced() {
        let hub = Hub::new(4, 1, Duration::from_secs(600), "stdin");
        hub.publish(text("first"), &snap(1, &[]));
        hub.publish(text("second"), &snap(2, &[]));
        let reg = hub.register().expect("room");
        assert_eq!(reg.latest.expect("latest").text.as_str(), "second");
        assert!(hub.register().is_none(), "a second client is one too many");
        hub.unregister(reg.id);
        assert!(hub.register().is_some());
    }

    #[test]
    fn history_records_each_onset_of_break_or_reject_once() {
        let mut h = History::new(Duration::from_secs(60));
        h.record(&snap(1_000, &[("ROUND_687", 687.0, "NEUTRAL")]));
        h.record(&snap(1_250, &[("ROUND_687", 687.0, "BREAK")]));
        h.record(&snap(1_500, &[("ROUND_687", 687.0, "BREAK")]));
        h.record(&snap(1_750, &[("ROUND_687", 687.0, "NEUTRAL")]));
        h.record(&snap(2_000, &[("ROUND_687", 687.0, "REJECT")]));
        let calls: Vec<(i64, &str)> = h.calls.iter().map(|c| (c.ts, c.signal.as_str())).collect();
        assert_eq!(calls, vec![(1_250, "BREAK"), (2_000, "REJECT")]);
        // Older than the window: gone.
        h.record(&snap(200_000, &[("ROUND_687", 687.0, "REJECT")]));
        assert!(h.calls.is_empty());
        assert_eq!(h.spot.len(), 1);
    }

    #[test]
    fn queue_age_histogram_is_cumulative() {
        let h = AgeHistogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(30));
        let (b, n, sum) = h.snapshot();
        assert_eq!(n, 2);
        assert_eq!(b[0], 1);
        assert_eq!(*b.last().expect("buckets"), 2);
        assert!((sum - 0.0303).abs() < 1e-6);
    }
}

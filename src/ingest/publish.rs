//! The publisher: drains the feeds' queue into the command's sink, flushing whenever the queue
//! runs dry, and keeps the latency statistics (`now − ts_recv`, `ts_recv − ts_event`) that are
//! logged periodically and printed in the summary on exit.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, error::TryRecvError};

use super::{FeedList, IngestError, Item, StopHandle, feed_report, now_ns};
use crate::event::{Event, FeedState};
use crate::io::{EventSink, SinkError};

/// How the publisher runs.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Log the latency statistics this often (none when zero).
    pub stats_every: Duration,
    /// After a stop is asked for, how long the feeds get to hand over what they hold.
    pub stop_grace: Duration,
    /// Whether `now − ts_recv` means anything (live feeds: yes; a saved file on stdin: no).
    pub live: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            stats_every: Duration::from_secs(60),
            stop_grace: Duration::from_secs(5),
            live: true,
        }
    }
}

/// Latency samples in microseconds, kept as a log-linear histogram: exact below 128 µs, within
/// 1/64 (1.6 %) above, in fixed memory however long the feed runs (a live day at 10 000
/// events/s is over 200 million samples).
#[derive(Debug, Clone)]
pub struct Samples {
    counts: Box<[u64]>,
    count: u64,
    max: u64,
}

/// Values below this are counted exactly.
const EXACT: u64 = 128;
/// Sub-buckets per power of two above [`EXACT`].
const SUB_BITS: u32 = 6;
const BUCKETS: usize = EXACT as usize + (64 - 7) * (1 << SUB_BITS);

fn bucket_of(us: u64) -> usize {
    if us < EXACT {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros(); // ≥ 7
    let sub = (us >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    EXACT as usize + ((exp - 7) as usize) * (1 << SUB_BITS) + sub as usize
}

/// The middle of bucket `i` (its exact value below [`EXACT`]).
fn value_of(i: usize) -> u64 {
    if (i as u64) < EXACT {
        return i as u64;
    }
    let k = i - EXACT as usize;
    let exp = (k >> SUB_BITS) as u32 + 7;
    let sub = (k & ((1 << SUB_BITS) - 1)) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    (1u64 << exp) + sub * width + width / 2
}

impl Default for Samples {
    fn default() -> Self {
        Samples {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            max: 0,
        }
    }
}

impl Samples {
    fn push(&mut self, us: u64) {
        self.counts[bucket_of(us)] += 1;
        self.count += 1;
        self.max = self.max.max(us);
    }

    /// Adds `other`'s samples.
    fn merge(&mut self, other: &Samples) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// The `q` quantile (0..=1) in microseconds (nearest rank; exact below 128 µs and for the
    /// maximum, within 1.6 % otherwise), `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count - 1) as f64 * q.clamp(0.0, 1.0)).round() as u64;
        if rank + 1 >= self.count {
            return Some(self.max);
        }
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen > rank {
                return Some(value_of(i).min(self.max));
            }
        }
        Some(self.max)
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn describe(&self) -> String {
        match (self.quantile(0.5), self.quantile(0.99), self.quantile(1.0)) {
            (Some(a), Some(b), Some(c)) => {
                format!("p50 {} p99 {} max {}", ms(a), ms(b), ms(c))
            }
            _ => "no samples".into(),
        }
    }

    fn clear(&mut self) {
        self.counts.fill(0);
        self.count = 0;
        self.max = 0;
    }
}

/// Microseconds as milliseconds, or as seconds from 10 s up (a replayed day's `ts_recv` is
/// hours old).
fn ms(us: u64) -> String {
    if us >= 10_000_000 {
        format!("{:.1} s", us as f64 / 1e6)
    } else {
        format!("{:.3} ms", us as f64 / 1000.0)
    }
}

/// Latency of one stretch of events.
#[derive(Debug, Default, Clone)]
pub struct Latency {
    /// `now − ts_recv` at the moment the event was handed to the sink.
    pub age: Samples,
    /// `ts_recv − ts_event`: the feed's own delay.
    pub feed: Samples,
}

impl Latency {
    fn record(&mut self, event: &Event, now: u64) {
        let Some(ts_recv) = event.ts_recv_ns() else {
            return;
        };
        let ts_event = event.ts_event_ns();
        if ts_recv > 0 {
            self.age.push(now.saturating_sub(ts_recv) / 1000);
            if ts_event > 0 {
                self.feed.push(ts_recv.saturating_sub(ts_event) / 1000);
            }
        }
    }

    fn merge(&mut self, other: &Latency) {
        self.age.merge(&other.age);
        self.feed.merge(&other.feed);
    }

    fn clear(&mut self) {
        self.age.clear();
        self.feed.clear();
    }
}

/// What the publisher did.
#[derive(Debug, Default)]
pub struct Summary {
    pub events: u64,
    pub statuses: u64,
    pub gaps: u64,
    pub latency: Latency,
    pub feeds: FeedList,
    /// Whether the run ended on a stop request (rather than the feeds ending on their own).
    pub stopped: bool,
    pub live: bool,
}

impl Summary {
    /// The exit summary.
    pub fn report(&mut self) -> String {
        let mut out = String::from("ingest summary:\n");
        for (feed, c) in &self.feeds {
            out.push_str(&feed_report(feed, c));
        }
        let n = crate::cli::thousands;
        let _ = writeln!(
            out,
            "  published {} events, {} feed status reports ({} gaps)",
            n(self.events),
            n(self.statuses),
            n(self.gaps)
        );
        if self.live && !self.latency.age.is_empty() {
            let _ = writeln!(
                out,
                "  latency now − ts_recv: {}; ts_recv − ts_event: {}",
                self.latency.age.describe(),
                self.latency.feed.describe()
            );
        }
        out
    }
}

/// Drains `rx` into `sink` until every feed has ended (or, after `stop_flag` turns true and
/// the feeds were told to stop, until they end or `stop_grace` passes), then finishes the sink.
/// `rt` runs the feeds; this runs on a plain thread outside it, because the sinks are blocking.
pub fn run(
    rt: &tokio::runtime::Handle,
    mut rx: mpsc::Receiver<Item>,
    stop_handle: StopHandle,
    feeds: FeedList,
    sink: &mut dyn EventSink,
    stop_flag: &std::sync::atomic::AtomicBool,
    opts: &PublishOptions,
) -> Result<Summary, IngestError> {
    let mut summary = Summary {
        feeds,
        live: opts.live,
        ..Summary::default()
    };
    let mut window = Latency::default();
    let mut window_start = Instant::now();
    let mut window_events = 0u64;
    let mut stop_at: Option<Instant> = None;
    loop {
        if stop_at.is_none() && stop_flag.load(std::sync::atomic::Ordering::Relaxed) {
            stop_handle.stop();
            stop_at = Some(Instant::now());
        }
        if let Some(at) = stop_at
            && at.elapsed() > opts.stop_grace
        {
            tracing::warn!(
                "feeds still running {:.0?} after the stop: finishing without them",
                opts.stop_grace
            );
            summary.stopped = true;
            break;
        }
        let item = match rx.try_recv() {
            Ok(item) => Some(item),
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                // Nothing waiting: hand on what the sink buffers before blocking.
                sink.flush().map_err(sink_error)?;
                let next =
                    async { tokio::time::timeout(Duration::from_millis(200), rx.recv()).await };
                match rt.block_on(next) {
                    Ok(Some(item)) => Some(item),
                    Ok(None) => break,
                    Err(_) => None,
                }
            }
        };
        if let Some(item) = item {
            let event = match item {
                Item::Event(e) => {
                    summary.events += 1;
                    window_events += 1;
                    e
                }
                Item::Status(s) => {
                    summary.statuses += 1;
                    if s.state == FeedState::Gap {
                        summary.gaps += 1;
                    }
                    Event::FeedStatus(s)
                }
            };
            sink.send(&event).map_err(sink_error)?;
            if opts.live {
                window.record(&event, now_ns());
            }
        }
        if opts.live && !opts.stats_every.is_zero() && window_start.elapsed() >= opts.stats_every {
            let secs = window_start.elapsed().as_secs_f64();
            if window_events > 0 {
                tracing::info!(
                    "{} events in {:.0} s ({:.0}/s); latency now − ts_recv {}; ts_recv − ts_event {}",
                    crate::cli::thousands(window_events),
                    secs,
                    window_events as f64 / secs,
                    window.age.describe(),
                    window.feed.describe()
                );
            } else {
                tracing::info!("no events in the last {secs:.0} s");
            }
            summary.latency.merge(&window);
            window.clear();
            window_events = 0;
            window_start = Instant::now();
        }
    }
    summary.latency.merge(&window);
    summary.stopped |= stop_at.is_some();
    sink.finish().map_err(sink_error)?;
    Ok(summary)
}

fn sink_error(e: SinkError) -> IngestError {
    IngestError::Sink(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::StockTrade;
    use crate::ingest::Ingest;
    use std::sync::atomic::AtomicBool;

    #[derive(Default)]
    struct Collect {
        events: Vec<Event>,
        flushes: usize,
        finished: bool,
    }

    impl EventSink for Collect {
        fn send(&mut self, event: &Event) -> Result<(), SinkError> {
            self.events.push(event.clone());
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            self.flushes += 1;
            Ok(())
        }
        fn finish(&mut self) -> Result<(), SinkError> {
            self.finished = true;
            Ok(())
        }
    }

    fn trade(ts: u64) -> Event {
        Event::StockTrade(StockTrade {
            ts_event_ns: ts,
            ts_recv_ns: ts + 1000,
            source: "t".into(),
            symbol: "SPY".into(),
            price: 1.0,
            size: 1,
            exchange: None,
            seq: None,
        })
    }

    #[test]
    fn a_full_queue_drops_events_and_reports_one_gap_before_the_next_event() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut ingest = Ingest::new(3);
        let mut tx = ingest.feed("t", "feed");
        // Three fit; the next two are dropped; then the reader catches up.
        for ts in 1..=5 {
            tx.event(trade(ts));
        }
        let (rx, stop, feeds) = ingest.into_parts();
        let mut sink = Collect::default();
        let handle = rt.handle().clone();
        let feeder = std::thread::spawn(move || {
            // Wait until the publisher has drained the queue, then send one more.
            std::thread::sleep(Duration::from_millis(300));
            tx.event(trade(6));
            drop(tx);
        });
        let flag = AtomicBool::new(false);
        let mut summary = run(
            &handle,
            rx,
            stop,
            feeds,
            &mut sink,
            &flag,
            &PublishOptions::default(),
        )
        .unwrap();
        feeder.join().unwrap();
        let kinds: Vec<String> = sink
            .events
            .iter()
            .map(|e| match e {
                Event::FeedStatus(s) => format!(
                    "gap {}..{} lost {}",
                    s.gap_start_ns.unwrap(),
                    s.gap_end_ns.unwrap(),
                    s.records_lost.unwrap()
                ),
                other => other.ts_event_ns().to_string(),
            })
            .collect();
        assert_eq!(kinds, ["1", "2", "3", "gap 4..5 lost 2", "6"]);
        assert!(sink.finished);
        assert!(
            sink.flushes > 0,
            "the sink is flushed when the queue runs dry"
        );
        assert_eq!(summary.events, 4);
        assert_eq!(summary.gaps, 1);
        let report = summary.report();
        assert!(report.contains("2 dropped (queue full)"), "{report}");
        assert!(report.contains("latency now − ts_recv"), "{report}");
    }

    #[test]
    fn latencies_read_in_ms_and_hours_old_ones_in_seconds() {
        assert_eq!(ms(1_234), "1.234 ms");
        assert_eq!(ms(32_689_729_468), "32689.7 s");
    }

    #[test]
    fn large_latencies_are_kept_within_two_percent_in_fixed_memory() {
        let mut s = Samples::default();
        let values: Vec<u64> = (0..100_000u64).map(|i| 1_000 + i * 997).collect();
        for &v in &values {
            s.push(v);
        }
        assert_eq!(s.len(), 100_000);
        for q in [0.01, 0.5, 0.9, 0.99] {
            let want = values[((values.len() - 1) as f64 * q).round() as usize] as f64;
            let got = s.quantile(q).unwrap() as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(s.quantile(1.0), Some(*values.last().unwrap()));
        assert_eq!(s.counts.len(), BUCKETS);
        // Every u64 has a bucket, and a bucket's middle falls back into it.
        for v in [0, 127, 128, 129, 1 << 20, u64::MAX / 3, u64::MAX] {
            let b = bucket_of(v);
            assert!(b < BUCKETS, "{v}");
            assert_eq!(bucket_of(value_of(b)), b, "{v}");
        }
        let mut t = Samples::default();
        t.merge(&s);
        t.merge(&s);
        assert_eq!(t.len(), 200_000);
        assert_eq!(t.quantile(0.5), s.quantile(0.5));
    }

    #[test]
    fn quantiles_pick_the_nearest_rank() {
        let mut s = Samples::default();
        for v in 1..=100 {
            s.push(v);
        }
        assert_eq!(s.quantile(0.5), Some(51));
        assert_eq!(s.quantile(0.99), Some(99));
        assert_eq!(s.quantile(1.0), Some(100));
        assert_eq!(Samples::default().quantile(0.5), None);
    }
}

//! Replay: several event streams merged by event time, paced against the wall clock.
//!
//! [`Merge`] is a k-way merge holding one pending event per input, so memory does not grow with
//! file size. Ties are broken deterministically: trades before book images and quotes, then
//! input order, then record order within the input. An input that fails is closed, its error
//! kept for the caller, and the other inputs go on: nothing valid is lost.
//!
//! [`Pacer`] releases events on an absolute schedule (`wall_start + (ts − ts_first) / speed`), so
//! errors in sleeping never accumulate into drift.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

use crate::event::{Event, EventKind};
use crate::io::{EventSink, EventSource, SinkError, SourceError};

/// Order of events within one timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct MergeKey {
    ts: u64,
    /// 0 for trades, 1 for everything else.
    rank: u8,
    input: usize,
    record: u64,
}

struct Input<S> {
    source: S,
    /// Events of the current timestamp not yet released, by record index − `base`.
    batch: Vec<Option<Event>>,
    base: u64,
    outstanding: usize,
    /// The first event of the next timestamp, read while closing the current batch.
    lookahead: Option<Event>,
    records: u64,
    done: bool,
}

/// A k-way merge of event sources by `ts_event_ns`.
///
/// Each input contributes all of its events of one timestamp at a time (a batch), so the
/// tie-break "trades first" holds within an input too; memory is bounded by the largest
/// burst of equal timestamps, not by the input's size.
pub struct Merge<S> {
    inputs: Vec<Input<S>>,
    heap: BinaryHeap<Reverse<MergeKey>>,
    errors: Vec<SourceError>,
    primed: bool,
    /// The input of the event returned last: the one that reads next, so recycled events go
    /// back to it.
    last_input: usize,
}

impl<S: EventSource> Merge<S> {
    pub fn new(sources: Vec<S>) -> Self {
        let inputs = sources
            .into_iter()
            .map(|source| Input {
                source,
                batch: Vec::new(),
                base: 0,
                outstanding: 0,
                lookahead: None,
                records: 0,
                done: false,
            })
            .collect::<Vec<_>>();
        Merge {
            heap: BinaryHeap::with_capacity(inputs.len() * 4),
            inputs,
            errors: Vec::new(),
            primed: false,
            last_input: 0,
        }
    }

    /// The inputs, e.g. to ask them for their skip counts after the run.
    pub fn inputs(&self) -> impl Iterator<Item = &S> {
        self.inputs.iter().map(|i| &i.source)
    }

    /// Errors of inputs that were closed early, in the order they happened.
    pub fn errors(&self) -> &[SourceError] {
        &self.errors
    }

    /// The next event of input `i`, or `None` when it ended or failed (failure recorded).
    fn read(&mut self, i: usize) -> Option<Event> {
        let input = &mut self.inputs[i];
        if let Some(e) = input.lookahead.take() {
            return Some(e);
        }
        while !input.done {
            match input.source.next_event() {
                Ok(Some(event)) => return Some(event),
                Ok(None) => input.done = true,
                Err(e) if e.is_recoverable() => {
                    tracing::warn!("{e}");
                    self.errors.push(e);
                }
                Err(e) => {
                    self.errors.push(e);
                    input.done = true;
                }
            }
        }
        None
    }

    /// Loads input `i`'s next batch (all events sharing the next timestamp) and queues them.
    fn refill(&mut self, i: usize) {
        let Some(first) = self.read(i) else { return };
        let ts = first.ts_event_ns();
        let mut batch = std::mem::take(&mut self.inputs[i].batch);
        batch.clear();
        batch.push(Some(first));
        while let Some(next) = self.read(i) {
            if next.ts_event_ns() == ts {
                batch.push(Some(next));
            } else {
                self.inputs[i].lookahead = Some(next);
                break;
            }
        }
        let input = &mut self.inputs[i];
        input.base = input.records;
        input.records += batch.len() as u64;
        input.outstanding = batch.len();
        for (k, event) in batch.iter().enumerate() {
            let kind = event.as_ref().map_or(EventKind::Mbp10, Event::kind);
            self.heap.push(Reverse(MergeKey {
                ts,
                rank: u8::from(!kind.is_trade()),
                input: i,
                record: input.base + k as u64,
            }));
        }
        input.batch = batch;
    }
}

impl<S: EventSource> EventSource for Merge<S> {
    /// The next event in merged order. Input failures never surface here: they are kept in
    /// [`Merge::errors`] and the remaining inputs go on.
    fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        if !self.primed {
            self.primed = true;
            for i in 0..self.inputs.len() {
                self.refill(i);
            }
        }
        let Some(Reverse(key)) = self.heap.pop() else {
            return Ok(None);
        };
        self.last_input = key.input;
        let input = &mut self.inputs[key.input];
        let event = input.batch[(key.record - input.base) as usize].take();
        input.outstanding -= 1;
        if input.outstanding == 0 {
            self.refill(key.input);
        }
        Ok(event)
    }

    fn recycle(&mut self, event: Event) {
        if let Some(input) = self.inputs.get_mut(self.last_input) {
            input.source.recycle(event);
        }
    }
}

/// Releases events on an absolute wall-clock schedule.
#[derive(Debug)]
pub struct Pacer {
    speed: f64,
    origin: Option<(Instant, u64)>,
}

impl Pacer {
    /// `speed` 0 (or negative, or not finite) means as fast as possible; 1 real time; 2 twice.
    pub fn new(speed: f64) -> Self {
        Pacer {
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                0.0
            },
            origin: None,
        }
    }

    pub fn is_paced(&self) -> bool {
        self.speed > 0.0
    }

    /// How long to wait before releasing an event at `ts` (zero when it is due).
    pub fn delay(&mut self, ts: u64, now: Instant) -> Duration {
        if self.speed == 0.0 {
            return Duration::ZERO;
        }
        let (wall0, ts0) = *self.origin.get_or_insert((now, ts));
        let offset_s = ts.saturating_sub(ts0) as f64 / 1e9 / self.speed;
        let due = wall0 + Duration::from_secs_f64(offset_s);
        due.saturating_duration_since(now)
    }
}

/// Which events a replay lets through.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeRange {
    /// First event time included (ns).
    pub start: Option<u64>,
    /// First event time excluded (ns).
    pub end: Option<u64>,
}

/// Parses a time given as integer nanoseconds or ISO-8601 / RFC 3339 (UTC when no offset).
pub fn parse_time(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(ns) = s.parse::<u64>() {
        return Ok(ns);
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&chrono::Utc))
        .or_else(|_| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
            .or_else(|| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
            .map(|n| n.and_utc())
            .ok_or(())
        })
        .map_err(|_| format!("`{s}` is neither nanoseconds nor an ISO-8601 time"))?;
    parsed
        .timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| format!("`{s}` is outside the representable range"))
}

/// Bytes of each file that go into [`input_identity`].
const IDENTITY_PREFIX: u64 = 1 << 20;

/// The identity of what a replay publishes, as 16 hex digits: each file's name (without its
/// folder), size and first MiB, in the order given, and the options that change the events
/// (time range, `source`). The same files and options give the same identity on any machine
/// and from any folder, so a re-run resumes where the stream stands.
pub fn input_identity(
    files: &[std::path::PathBuf],
    range: TimeRange,
    source: &str,
) -> std::io::Result<String> {
    use std::io::Read;
    let mut material = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let file = std::fs::File::open(path)?;
        let size = file.metadata()?.len();
        material.extend_from_slice(name.as_bytes());
        material.push(0);
        material.extend_from_slice(&size.to_le_bytes());
        file.take(IDENTITY_PREFIX).read_to_end(&mut material)?;
        material.push(0);
    }
    for bound in [range.start, range.end] {
        material.extend_from_slice(&bound.map_or(u64::MAX, |b| b).to_le_bytes());
    }
    material.extend_from_slice(source.as_bytes());
    Ok(format!("{:016x}", crate::hash::fnv1a64(&material)))
}

/// What a replay did.
#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
    pub events: BTreeMap<EventKind, u64>,
    pub first_ts: Option<u64>,
    pub last_ts: Option<u64>,
    pub wall: Duration,
    /// Stopped by a signal or a closed output before the inputs ended.
    pub interrupted: bool,
    /// Leading events the output already held (a resumed replay), not sent again.
    pub resumed: u64,
}

impl ReplaySummary {
    pub fn total(&self) -> u64 {
        self.events.values().sum()
    }
}

impl ReplaySummary {
    /// The exit summary: events by type, skipped records and why, wall time and rate.
    pub fn report(&self, skipped: &BTreeMap<String, u64>) -> String {
        use crate::cli::thousands;
        use std::fmt::Write;
        let mut out = String::new();
        let secs = self.wall.as_secs_f64();
        let _ = writeln!(
            out,
            "replayed {} events in {:.2} s ({:.0} events/s){}",
            thousands(self.total()),
            secs,
            self.total() as f64 / secs.max(1e-9),
            if self.interrupted {
                ", interrupted"
            } else {
                ""
            }
        );
        if self.resumed > 0 {
            let _ = writeln!(
                out,
                "  already in the stream, not sent again: {} (resumed after them)",
                thousands(self.resumed)
            );
        }
        for (kind, n) in &self.events {
            let _ = writeln!(out, "  {:<14} {:>12}", kind.type_name(), thousands(*n));
        }
        if let (Some(a), Some(b)) = (self.first_ts, self.last_ts) {
            let _ = writeln!(
                out,
                "  event time     {} .. {} UTC",
                crate::cli::format_ts(a),
                crate::cli::format_ts(b)
            );
        }
        if skipped.is_empty() {
            let _ = writeln!(out, "  skipped records: none");
        } else {
            let total: u64 = skipped.values().sum();
            let _ = writeln!(out, "  skipped records: {}", thousands(total));
            for (why, n) in skipped {
                let _ = writeln!(out, "    {:>12}  {why}", thousands(*n));
            }
        }
        out
    }
}

/// Progress reports from a running replay (called every few thousand events).
pub trait Progress {
    fn update(&self, events: u64, ts: u64);
}

impl Progress for () {
    fn update(&self, _: u64, _: u64) {}
}

/// Streams `source` to `sink` within `range`, paced by `pacer`, until the input ends or `stop`
/// becomes true. A closed output (the reader went away) ends the replay quietly. The first
/// [`EventSink::resume_point`] events of the range are skipped, unpaced: the sink holds them.
pub fn run(
    source: &mut dyn EventSource,
    sink: &mut dyn EventSink,
    range: TimeRange,
    pacer: &mut Pacer,
    stop: &std::sync::atomic::AtomicBool,
    progress: &dyn Progress,
) -> Result<ReplaySummary, ReplayError> {
    use std::sync::atomic::Ordering;
    let started = Instant::now();
    let mut summary = ReplaySummary::default();
    let mut counts = [0u64; EventKind::ALL.len()];
    let mut n = 0u64;
    let skip = sink.resume_point();
    loop {
        if n.is_multiple_of(1024) && stop.load(Ordering::Relaxed) {
            summary.interrupted = true;
            break;
        }
        let event = match source.next_event() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) if e.is_recoverable() => {
                tracing::warn!("{e}");
                continue;
            }
            Err(e) => return Err(ReplayError::Source(e)),
        };
        let ts = event.ts_event_ns();
        if range.start.is_some_and(|s| ts < s) {
            continue;
        }
        if range.end.is_some_and(|e| ts >= e) {
            break;
        }
        if summary.resumed < skip {
            summary.resumed += 1;
            source.recycle(event);
            continue;
        }
        if pacer.is_paced() {
            let wait = pacer.delay(ts, Instant::now());
            if !wait.is_zero() {
                match sink.flush() {
                    Err(SinkError::Closed) => {
                        summary.interrupted = true;
                        break;
                    }
                    other => other?,
                }
                sleep_interruptibly(wait, stop);
                if stop.load(Ordering::Relaxed) {
                    summary.interrupted = true;
                    break;
                }
            }
        }
        match sink.send(&event) {
            Ok(()) => {}
            Err(SinkError::Closed) => {
                summary.interrupted = true;
                break;
            }
            Err(e) => return Err(e.into()),
        }
        counts[event.kind() as usize] += 1;
        source.recycle(event);
        summary.first_ts.get_or_insert(ts);
        summary.last_ts = Some(ts);
        n += 1;
        if n.is_multiple_of(4096) {
            progress.update(n, ts);
        }
    }
    match sink.finish() {
        Ok(()) => {}
        Err(SinkError::Closed) => summary.interrupted = true,
        Err(e) => return Err(e.into()),
    }
    if let Some(ts) = summary.last_ts {
        progress.update(n, ts);
    }
    for kind in EventKind::ALL {
        let c = counts[kind as usize];
        if c > 0 {
            summary.events.insert(kind, c);
        }
    }
    summary.wall = started.elapsed();
    Ok(summary)
}

/// A progress bar on stderr: events/s, event-time position and ETA over the inputs' time span.
pub struct ProgressBar {
    bar: indicatif::ProgressBar,
    span: Option<(u64, u64)>,
}

impl ProgressBar {
    /// `span` is the inputs' event-time range from their metadata, when known.
    pub fn new(span: Option<(u64, u64)>) -> Self {
        let bar = match span {
            Some((start, end)) if end > start => {
                let bar = indicatif::ProgressBar::new((end - start) / 1_000_000);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {msg} ETA {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            }
            _ => {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar
            }
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
        ProgressBar {
            bar,
            span: span.filter(|(s, e)| e > s),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for ProgressBar {
    fn update(&self, events: u64, ts: u64) {
        let secs = self.bar.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{} events ({:.0}/s) at {}",
            crate::cli::thousands(events),
            events as f64 / secs,
            crate::cli::format_ts(ts)
        ));
        if let Some((start, _)) = self.span {
            self.bar.set_position(ts.saturating_sub(start) / 1_000_000);
        } else {
            self.bar.tick();
        }
    }
}

fn sleep_interruptibly(total: Duration, stop: &std::sync::atomic::AtomicBool) {
    let deadline = Instant::now() + total;
    loop {
        let now = Instant::now();
        if now >= deadline || stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
    }
}

/// Errors that end a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("output: {0}")]
    Sink(#[from] SinkError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FuturesTrade, StockQuote};

    struct VecSource {
        events: std::vec::IntoIter<Event>,
        fail_after: Option<SourceError>,
    }

    impl VecSource {
        fn new(events: Vec<Event>) -> Self {
            VecSource {
                events: events.into_iter(),
                fail_after: None,
            }
        }
    }

    impl EventSource for VecSource {
        fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
            match self.events.next() {
                Some(e) => Ok(Some(e)),
                None => match self.fail_after.take() {
                    Some(err) => Err(err),
                    None => Ok(None),
                },
            }
        }
    }

    fn trade(ts: u64, tag: &str) -> Event {
        Event::FuturesTrade(FuturesTrade {
            ts_event_ns: ts,
            ts_recv_ns: ts,
            source: tag.into(),
            symbol: "ESZ5".into(),
            price: 1.0,
            size: 1,
            aggressor: 0,
            exchange: None,
            seq: None,
        })
    }

    fn quote(ts: u64, tag: &str) -> Event {
        Event::StockQuote(StockQuote {
            ts_event_ns: ts,
            ts_recv_ns: ts,
            source: tag.into(),
            symbol: "SPY".into(),
            bid_px: 1.0,
            ask_px: 2.0,
            bid_sz: 1,
            ask_sz: 1,
            seq: None,
        })
    }

    fn tag(e: &Event) -> String {
        match e {
            Event::FuturesTrade(t) => t.source.clone(),
            Event::StockQuote(q) => q.source.clone(),
            _ => unreachable!(),
        }
    }

    fn drain(m: &mut impl EventSource) -> Vec<String> {
        std::iter::from_fn(|| m.next_event().unwrap())
            .map(|e| tag(&e))
            .collect()
    }

    #[test]
    fn merge_orders_by_time_then_trades_first_then_input_then_record() {
        let a = VecSource::new(vec![
            quote(1, "a1"),
            quote(5, "a5q"),
            trade(5, "a5t"),
            trade(9, "a9"),
        ]);
        let b = VecSource::new(vec![trade(1, "b1"), quote(5, "b5q"), trade(5, "b5t")]);
        let mut m = Merge::new(vec![a, b]);
        assert_eq!(
            drain(&mut m),
            ["b1", "a1", "a5t", "b5t", "a5q", "b5q", "a9"]
        );
        assert!(m.errors().is_empty());
    }

    #[test]
    fn failing_input_keeps_its_earlier_events_and_the_others_go_on() {
        let mut a = VecSource::new(vec![trade(1, "a1"), trade(3, "a3")]);
        a.fail_after = Some(SourceError::Fatal {
            input: "a.dbn".into(),
            message: "truncated record at byte offset 99".into(),
        });
        let b = VecSource::new(vec![trade(2, "b2"), trade(4, "b4"), trade(6, "b6")]);
        let mut m = Merge::new(vec![a, b]);
        assert_eq!(drain(&mut m), ["a1", "b2", "a3", "b4", "b6"]);
        assert_eq!(m.errors().len(), 1);
        assert!(
            m.errors()[0]
                .to_string()
                .contains("a.dbn: truncated record at byte offset 99")
        );
    }

    #[test]
    fn pacer_schedule_is_absolute_and_speed_scales_it() {
        let t0 = Instant::now();
        let mut p = Pacer::new(2.0);
        assert_eq!(p.delay(1_000_000_000, t0), Duration::ZERO);
        // 4 s of event time at speed 2 is due 2 s after the first event.
        assert_eq!(p.delay(5_000_000_000, t0), Duration::from_secs(2));
        // Being late does not shift the schedule.
        assert_eq!(
            p.delay(5_000_000_000, t0 + Duration::from_secs(3)),
            Duration::ZERO
        );
        assert_eq!(
            p.delay(9_000_000_000, t0 + Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        let mut fast = Pacer::new(0.0);
        assert!(!fast.is_paced());
        assert_eq!(fast.delay(u64::MAX, t0), Duration::ZERO);
    }

    #[test]
    fn times_parse_as_nanoseconds_or_iso8601() {
        assert_eq!(
            parse_time("1700000000000000000").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T17:13:20-05:00").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20.5").unwrap(),
            1_700_000_000_500_000_000
        );
        assert_eq!(parse_time("2023-11-14").unwrap(), 1_699_920_000_000_000_000);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn run_applies_the_time_range_and_counts_by_kind() {
        let src = VecSource::new((1..=10).map(|t| trade(t, "x")).collect());
        let mut merge = Merge::new(vec![src]);
        let mut sink = crate::io::pipe::PipeSink::new(Vec::new(), crate::io::PipeFormat::Ndjson);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let summary = run(
            &mut merge,
            &mut sink,
            TimeRange {
                start: Some(3),
                end: Some(8),
            },
            &mut Pacer::new(0.0),
            &stop,
            &(),
        )
        .unwrap();
        assert_eq!(summary.total(), 5);
        assert_eq!(summary.first_ts, Some(3));
        assert_eq!(summary.last_ts, Some(7));
        let out = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(out.lines().count(), 5);
    }
}

//! The run loop of `spm-core`: events from a source through the engine, snaps to a sink.

use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Engine;
use crate::event::Event;
use crate::io::{EventSink, EventSource, SinkError, SourceError};

/// Which clock triggers snaps besides events crossing boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Clock {
    /// Only event time (replays, pipes): deterministic.
    #[default]
    Event,
    /// Also a wall-clock timer when the market is quiet (live use).
    Wall,
}

/// Options of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Stop at the first bad input item instead of skipping it.
    pub strict: bool,
    /// Log a statistics line every this many events (0: never by count).
    pub stats_every_events: u64,
    /// Log a statistics line every this much event time, in ns (0: never by time).
    pub stats_every_ns: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            strict: false,
            stats_every_events: 1_000_000,
            stats_every_ns: 60_000_000_000,
        }
    }
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(SinkError),
}

/// Periodic statistics logging on event count and event time.
struct StatsLog {
    opts: RunOptions,
    next_count: u64,
    next_ts: Option<u64>,
}

impl StatsLog {
    fn new(opts: RunOptions) -> StatsLog {
        StatsLog {
            opts,
            next_count: opts.stats_every_events,
            next_ts: None,
        }
    }

    fn tick(&mut self, engine: &Engine, ts: u64) {
        let stats = engine.stats();
        let events = stats.events();
        let by_count = self.opts.stats_every_events > 0 && events >= self.next_count;
        let by_time = self.opts.stats_every_ns > 0
            && match self.next_ts {
                None => {
                    self.next_ts = Some(ts.saturating_add(self.opts.stats_every_ns));
                    false
                }
                Some(next) => ts >= next,
            };
        if by_count || by_time {
            self.next_count = events + self.opts.stats_every_events;
            self.next_ts = Some(ts.saturating_add(self.opts.stats_every_ns));
            tracing::info!(
                events,
                snaps = stats.snaps_emitted,
                out_of_order = stats.out_of_order,
                options_recorded = stats.options_recorded,
                contract = engine.market().followed_symbol().unwrap_or("-"),
                event_time_ms = ts / 1_000_000,
                "core progress"
            );
        }
    }
}

fn send(
    sink: &mut dyn EventSink,
    snap: Option<crate::event::LevelSignals>,
) -> Result<bool, RunError> {
    if let Some(snap) = snap {
        match sink.send(&Event::LevelSignals(snap)) {
            Ok(()) => {}
            Err(SinkError::Closed) => return Ok(false),
            Err(e) => return Err(RunError::Sink(e)),
        }
    }
    Ok(true)
}

fn finish(sink: &mut dyn EventSink) -> Result<(), RunError> {
    match sink.finish() {
        Ok(()) | Err(SinkError::Closed) => Ok(()),
        Err(e) => Err(RunError::Sink(e)),
    }
}

/// Handles a source error: bad items are logged and skipped unless `strict`.
fn on_source_error(e: SourceError, strict: bool) -> Result<(), RunError> {
    if e.is_recoverable() && !strict {
        tracing::warn!("skipping bad input: {e}");
        Ok(())
    } else {
        Err(RunError::Source(e))
    }
}

/// Runs the engine on event time until the source ends; snaps go to `sink`.
/// A closed sink (the reader went away) ends the run quietly.
pub fn run(
    engine: &mut Engine,
    source: &mut dyn EventSource,
    sink: &mut dyn EventSink,
    opts: &RunOptions,
) -> Result<(), RunError> {
    let mut log = StatsLog::new(*opts);
    loop {
        let event = match source.next_event() {
            Ok(Some(event)) => event,
            Ok(None) => break,
            Err(e) => {
                on_source_error(e, opts.strict)?;
                continue;
            }
        };
        let snap = engine.apply(&event);
        if !send(sink, snap)? {
            return Ok(());
        }
        log.tick(engine, event.ts_event_ns());
        source.recycle(event);
    }
    finish(sink)
}

fn wall_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Like [`run`], and also snaps on the wall clock when no event crosses a boundary (live use).
/// The source is read on its own thread.
pub fn run_wall_clock(
    engine: &mut Engine,
    source: Box<dyn EventSource + Send>,
    sink: &mut dyn EventSink,
    opts: &RunOptions,
) -> Result<(), RunError> {
    let (tx, rx) = mpsc::sync_channel::<Result<Option<Event>, SourceError>>(4096);
    let reader = std::thread::spawn(move || {
        let mut source = source;
        loop {
            let item = source.next_event();
            let end = matches!(item, Ok(None)) || matches!(&item, Err(e) if !e.is_recoverable());
            if tx.send(item).is_err() || end {
                break;
            }
        }
    });
    let mut log = StatsLog::new(*opts);
    let interval = Duration::from_millis(engine.config().snap_interval_ms.max(1));
    let result = loop {
        let item = match rx.recv_timeout(interval) {
            Ok(item) => Some(item),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break finish(sink),
        };
        match item {
            Some(Ok(Some(event))) => {
                let snap = engine.apply(&event);
                match send(sink, snap) {
                    Ok(true) => {}
                    Ok(false) => break Ok(()),
                    Err(e) => break Err(e),
                }
                log.tick(engine, event.ts_event_ns());
            }
            Some(Ok(None)) => break finish(sink),
            Some(Err(e)) => {
                if let Err(e) = on_source_error(e, opts.strict) {
                    break Err(e);
                }
            }
            None => {}
        }
        let now = wall_now_ns();
        if engine.next_boundary().is_some_and(|b| now >= b) {
            match send(sink, engine.snap_at(now)) {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        }
    };
    drop(rx);
    // The reader may be blocked on input; it ends with the process if it does not return.
    if reader.is_finished() {
        let _ = reader.join();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Config;
    use crate::event::{BOOK_DEPTH, BookRow, FuturesTrade, Mbp10};
    use crate::io::Position;

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_795_532_400 * 1_000_000_000;

    /// A scripted source: events and bad items in order.
    struct Script(std::vec::IntoIter<Result<Event, u64>>);

    impl EventSource for Script {
        fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
            match self.0.next() {
                None => Ok(None),
                Some(Ok(e)) => Ok(Some(e)),
                Some(Err(line)) => Err(SourceError::Bad {
                    input: "script".into(),
                    position: Position::Line(line),
                    message: "bad".into(),
                }),
            }
        }
    }

    #[derive(Default)]
    struct Collect {
        sent: Vec<Event>,
        finished: bool,
        closed_after: Option<usize>,
    }

    impl EventSink for Collect {
        fn send(&mut self, event: &Event) -> Result<(), SinkError> {
            if self.closed_after.is_some_and(|n| self.sent.len() >= n) {
                return Err(SinkError::Closed);
            }
            self.sent.push(event.clone());
            Ok(())
        }
        fn finish(&mut self) -> Result<(), SinkError> {
            self.finished = true;
            Ok(())
        }
    }

    fn trade(ts: u64) -> Event {
        Event::FuturesTrade(FuturesTrade {
            ts_event_ns: ts,
            ts_recv_ns: ts,
            source: "t".into(),
            symbol: "ESZ5".into(),
            price: 6870.0,
            size: 1,
            aggressor: 1,
            exchange: None,
            seq: None,
        })
    }

    fn book(ts: u64) -> Event {
        let mut levels = [BookRow::EMPTY; BOOK_DEPTH];
        levels[0].bid_px = Some(6869.75);
        levels[0].bid_sz = 10;
        levels[0].ask_px = Some(6870.0);
        levels[0].ask_sz = 10;
        Event::Mbp10(Box::new(Mbp10 {
            ts_event_ns: ts,
            ts_recv_ns: ts,
            source: "t".into(),
            symbol: "ESZ5".into(),
            levels,
            is_snapshot: false,
            seq: None,
            action: None,
            side: None,
            price: None,
            size: None,
            flags: None,
        }))
    }

    fn script() -> Script {
        Script(
            vec![
                Ok(trade(T0)),
                Ok(book(T0 + 1)),
                Err(3),
                Ok(trade(T0 + 300 * MS)),
                Ok(trade(T0 + 600 * MS)),
            ]
            .into_iter(),
        )
    }

    #[test]
    fn bad_items_are_skipped_and_snaps_sent_then_the_sink_is_finished() {
        let mut engine = Engine::new(Config::default());
        let mut sink = Collect::default();
        run(
            &mut engine,
            &mut script(),
            &mut sink,
            &RunOptions::default(),
        )
        .unwrap();
        assert_eq!(sink.sent.len(), 2);
        assert!(
            sink.sent
                .iter()
                .all(|e| matches!(e, Event::LevelSignals(_)))
        );
        assert!(sink.finished);
    }

    #[test]
    fn strict_runs_stop_at_the_first_bad_item_with_its_position() {
        let mut engine = Engine::new(Config::default());
        let mut sink = Collect::default();
        let opts = RunOptions {
            strict: true,
            ..RunOptions::default()
        };
        let err = run(&mut engine, &mut script(), &mut sink, &opts).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(sink.sent.is_empty());
    }

    #[test]
    fn a_closed_sink_ends_the_run_quietly() {
        let mut engine = Engine::new(Config::default());
        let mut sink = Collect {
            closed_after: Some(1),
            ..Collect::default()
        };
        run(
            &mut engine,
            &mut script(),
            &mut sink,
            &RunOptions::default(),
        )
        .unwrap();
        assert_eq!(sink.sent.len(), 1);
        assert!(!sink.finished);
    }
}

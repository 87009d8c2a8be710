//! Reading snaps into an [`Evaluator`]: a pipe (NDJSON lines read through the borrowed
//! [`SnapView`], or the binary framing) or any event source (NATS).
//!
//! Other events in the input (market data, feed status) are counted and skipped; a line that
//! is not an event at all is reported with its line number and skipped, or ends the read with
//! `strict`.

use std::io::Read;

use super::{Evaluator, Observed, SnapView};
use crate::event::Event;
use crate::io::pipe::{PipeSource, RawItem};
use crate::io::{EventSource, Position, SourceError};

/// What the input held besides snaps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadCounts {
    /// Events of other types (market data, feed status), skipped.
    pub other_events: u64,
    /// The type of the first of them.
    pub first_other: Option<String>,
    /// Items that were not events, skipped.
    pub bad: u64,
}

/// Skipped snaps logged one by one; after that they are only counted (the report says how
/// many).
const LOGGED_SKIPS: u64 = 5;

fn observed(
    evaluator: &mut Evaluator,
    snap: &SnapView,
    input: &str,
    position: &dyn Fn() -> String,
) {
    let skipped = {
        let c = evaluator.counts();
        c.out_of_order + c.no_spot
    };
    let why = match evaluator.observe(snap) {
        Observed::Scored => return,
        Observed::OutOfOrder { previous_ts } => {
            format!("a snap out of order (ts {} after {previous_ts})", snap.ts)
        }
        Observed::NoSpot => format!("a snap without spot (ts {})", snap.ts),
    };
    if skipped < LOGGED_SKIPS {
        tracing::warn!("{input}: {}: skipping {why}", position());
    } else if skipped == LOGGED_SKIPS {
        tracing::warn!(
            "{input}: {}: skipping {why}; further skipped snaps are counted in the report, not logged",
            position()
        );
    }
}

impl ReadCounts {
    fn other(&mut self, kind: &str) {
        self.other_events += 1;
        if self.first_other.is_none() {
            self.first_other = Some(kind.to_string());
        }
    }

    fn bad(&mut self, e: SourceError, strict: bool) -> Result<(), SourceError> {
        if strict || !e.is_recoverable() {
            return Err(e);
        }
        tracing::warn!("skipping bad input: {e}");
        self.bad += 1;
        Ok(())
    }

    fn event(
        &mut self,
        evaluator: &mut Evaluator,
        event: &Event,
        input: &str,
        position: &dyn Fn() -> String,
    ) {
        match event {
            Event::LevelSignals(snap) => observed(evaluator, &SnapView::of(snap), input, position),
            other => self.other(other.kind().type_name()),
        }
    }
}

/// Scores every snap of a pipe until it ends.
pub fn score_pipe<R: Read>(
    source: &mut PipeSource<R>,
    evaluator: &mut Evaluator,
    strict: bool,
) -> Result<ReadCounts, SourceError> {
    let mut counts = ReadCounts::default();
    let input = source.name().to_string();
    loop {
        match source.next_raw() {
            Ok(None) => return Ok(counts),
            Ok(Some(RawItem::Event(event))) => {
                counts.event(evaluator, &event, &input, &|| "a frame".to_string())
            }
            Ok(Some(RawItem::Line { bytes, line })) => match SnapView::parse(bytes) {
                Ok(view) if !view.is_other_type() => {
                    observed(evaluator, &view, &input, &|| format!("line {line}"))
                }
                Ok(view) => counts.other(view.kind.as_deref().unwrap_or_default()),
                // Not a snap: another event without `ts`, or not an event at all.
                Err(view_err) => match Event::from_json(bytes, None) {
                    Ok(event) => {
                        counts.event(evaluator, &event, &input, &|| format!("line {line}"))
                    }
                    Err(e) => {
                        let message = match e.to_string() {
                            m if m.contains("level_signals") || !bytes.contains(&b'"') => {
                                format!("{m} ({view_err})")
                            }
                            m => m,
                        };
                        counts.bad(
                            SourceError::Bad {
                                input: input.clone(),
                                position: Position::Line(line),
                                message,
                            },
                            strict,
                        )?
                    }
                },
            },
            Err(e) => counts.bad(e, strict)?,
        }
    }
}

/// Scores the snaps of an event source (NATS) until it ends, or until `count` snaps were
/// read when given.
pub fn score_events(
    source: &mut dyn EventSource,
    evaluator: &mut Evaluator,
    strict: bool,
    count: Option<u64>,
) -> Result<ReadCounts, SourceError> {
    let mut counts = ReadCounts::default();
    loop {
        if let Some(n) = count {
            let c = evaluator.counts();
            if c.snaps + c.out_of_order + c.no_spot >= n {
                return Ok(counts);
            }
        }
        match source.next_event() {
            Ok(None) => return Ok(counts),
            Ok(Some(event)) => {
                counts.event(evaluator, &event, "nats", &|| "a message".to_string());
                source.recycle(event);
            }
            Err(e) => counts.bad(e, strict)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::EvalSettings;

    const SNAP: &str = r#"{"type":"level_signals","ts":1000,"spy":{"spot":687.02,"bid":687.0,"ask":687.03},"levels":[]}"#;

    fn read(text: &str, strict: bool) -> (Result<ReadCounts, SourceError>, Evaluator) {
        let mut e = Evaluator::new(EvalSettings::default(), false);
        let mut source = PipeSource::new(text.as_bytes(), "test");
        (score_pipe(&mut source, &mut e, strict), e)
    }

    #[test]
    fn market_events_are_counted_and_malformed_lines_named_by_line_and_skipped() {
        let text = format!(
            "{SNAP}\n{}\nnot json\n\n{}\n",
            r#"{"type":"futures_trade","ts_event_ns":1,"ts_recv_ns":1,"source":"x","symbol":"ESZ5","price":6870.0,"size":1,"aggressor":1}"#,
            SNAP.replace("1000", "1250")
        );
        let (counts, e) = read(&text, false);
        let counts = counts.unwrap();
        assert_eq!(counts.other_events, 1);
        assert_eq!(counts.first_other.as_deref(), Some("futures_trade"));
        assert_eq!(counts.bad, 1);
        assert_eq!(e.counts().snaps, 2);
        let (strict, _) = read(&text, true);
        let err = strict.unwrap_err().to_string();
        assert!(err.starts_with("test: line 3: "), "{err}");
    }

    #[test]
    fn a_snap_with_a_missing_field_is_bad_not_silently_dropped() {
        let text = r#"{"type":"level_signals","ts":1,"spy":{"spot":1.0},"levels":[{"id":"X","price":1.0}]}"#;
        let (result, e) = read(text, true);
        let err = result.unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        assert_eq!(e.counts().snaps, 0);
    }
}

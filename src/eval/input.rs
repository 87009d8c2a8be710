//! Reading snaps into an [`Evaluator`]: a pipe (NDJSON lines read through the borrowed
//! [`SnapView`], or the binary framing) or any event source (NATS).
//!
//! Other events in the input (market data, feed status) are counted and skipped; a line that
//! is not an event at all is reported with its line number and skipped, or ends the read with
//! `strict`.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc;

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

/// One input item, read and parsed off the scoring thread.
enum Item {
    Snap { view: SnapView<'static>, line: u64 },
    Event(Event),
    Other(String),
    Bad(SourceError),
}

/// Lines handed to a parser at a time, and the bytes that close a chunk early.
const CHUNK_LINES: usize = 256;
const CHUNK_BYTES: usize = 1 << 20;

/// A run of consecutive input: raw lines (their bytes back to back, with each line's number
/// and end), or items that need no parsing (binary frames, errors).
enum Chunk {
    Lines {
        bytes: Vec<u8>,
        lines: Vec<(u64, usize)>,
    },
    Items(Vec<Item>),
}

/// Parses one NDJSON line.
fn parse_line(bytes: &[u8], line: u64, input: &str) -> Item {
    match SnapView::parse(bytes) {
        Ok(view) if !view.is_other_type() => Item::Snap {
            view: view.into_owned(),
            line,
        },
        Ok(view) => Item::Other(view.kind.as_deref().unwrap_or_default().to_string()),
        // Not a snap: another event without `ts`, or not an event at all.
        Err(view_err) => match Event::from_json(bytes, None) {
            Ok(event) => Item::Event(event),
            Err(e) => {
                let message = match e.to_string() {
                    m if m.contains("level_signals") || !bytes.contains(&b'"') => {
                        format!("{m} ({view_err})")
                    }
                    m => m,
                };
                Item::Bad(SourceError::Bad {
                    input: input.to_string(),
                    position: Position::Line(line),
                    message,
                })
            }
        },
    }
}

fn parse_chunk(chunk: Chunk, input: &str) -> Vec<Item> {
    match chunk {
        Chunk::Items(items) => items,
        Chunk::Lines { bytes, lines } => {
            let mut start = 0;
            lines
                .into_iter()
                .map(|(line, end)| {
                    let item = parse_line(&bytes[start..end], line, input);
                    start = end;
                    item
                })
                .collect()
        }
    }
}

/// Reads the pipe into chunks, in order, until it ends or a fatal error; `send` returns false
/// when nobody listens any more.
fn read_chunks<R: Read>(source: &mut PipeSource<R>, mut send: impl FnMut(Chunk) -> bool) {
    let mut bytes = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
    let mut lines = Vec::with_capacity(CHUNK_LINES);
    let mut items = Vec::new();
    loop {
        let next = source.next_raw();
        let end = !matches!(next, Ok(Some(_)));
        match next {
            Ok(Some(RawItem::Line {
                bytes: line,
                line: n,
            })) => {
                bytes.extend_from_slice(line);
                lines.push((n, bytes.len()));
            }
            Ok(Some(RawItem::Event(event))) => items.push(Item::Event(event)),
            Ok(None) => {}
            Err(e) => items.push(Item::Bad(e)),
        }
        let full =
            lines.len() >= CHUNK_LINES || bytes.len() >= CHUNK_BYTES || items.len() >= CHUNK_LINES;
        // Lines and items stay in input order: a pending run of one kind goes before the other.
        if (!lines.is_empty() && (full || end || !items.is_empty()))
            && !send(Chunk::Lines {
                bytes: std::mem::replace(&mut bytes, Vec::with_capacity(CHUNK_BYTES + 64 * 1024)),
                lines: std::mem::replace(&mut lines, Vec::with_capacity(CHUNK_LINES)),
            })
        {
            return;
        }
        if !items.is_empty()
            && (full || end || matches!(items.last(), Some(Item::Bad(_))))
            && !send(Chunk::Items(std::mem::take(&mut items)))
        {
            return;
        }
        if end {
            return;
        }
    }
}

/// Scores every snap of a pipe until it ends.
///
/// Parsing the payloads is most of the work, so it runs on every core: one thread reads
/// chunks of lines, parsers turn them into snaps, and this thread scores the chunks in input
/// order, so the result is the same as reading line by line.
pub fn score_pipe<R: Read + Send + 'static>(
    mut source: PipeSource<R>,
    evaluator: &mut Evaluator,
    strict: bool,
) -> Result<ReadCounts, SourceError> {
    let input = source.name().to_string();
    let parsers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    // The threads are not joined: after a `strict` stop the reader may be waiting on a pipe
    // that stays open, and the receivers going away is all it takes to stop the others.
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Vec<Item>)>(parsers * 4);
    let mut to_parsers = Vec::with_capacity(parsers);
    for _ in 0..parsers {
        let (tx, rx) = mpsc::sync_channel::<(u64, Chunk)>(2);
        to_parsers.push(tx);
        let done_tx = done_tx.clone();
        let input = input.clone();
        std::thread::spawn(move || {
            for (index, chunk) in rx {
                if done_tx.send((index, parse_chunk(chunk, &input))).is_err() {
                    return;
                }
            }
        });
    }
    drop(done_tx);
    std::thread::spawn(move || {
        let mut index = 0u64;
        read_chunks(&mut source, |chunk| {
            let sent = to_parsers[(index % parsers as u64) as usize].send((index, chunk));
            index += 1;
            sent.is_ok()
        });
    });
    // Chunks come back in any order; score them in input order.
    let mut counts = ReadCounts::default();
    let mut waiting = BTreeMap::new();
    let mut next = 0u64;
    for (index, items) in done_rx {
        waiting.insert(index, items);
        while let Some(items) = waiting.remove(&next) {
            next += 1;
            for item in items {
                match item {
                    Item::Snap { view, line } => {
                        observed(evaluator, &view, &input, &|| format!("line {line}"))
                    }
                    Item::Event(event) => {
                        counts.event(evaluator, &event, &input, &|| "a frame".to_string())
                    }
                    Item::Other(kind) => counts.other(&kind),
                    // Returning drops the receivers: the reader and parsers stop.
                    Item::Bad(e) => counts.bad(e, strict)?,
                }
            }
        }
    }
    Ok(counts)
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
        let source = PipeSource::new(std::io::Cursor::new(text.as_bytes().to_vec()), "test");
        (score_pipe(source, &mut e, strict), e)
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

    #[test]
    fn chunks_parsed_in_parallel_are_scored_in_input_order() {
        // Several chunks' worth of snaps, each later than the one before: any reordering
        // would show as snaps out of order. Bad lines at 700 and 900.
        let mut text = String::new();
        for i in 1..=2_000u64 {
            if i == 700 || i == 900 {
                text.push_str("{\"ts\":\n");
            } else {
                text.push_str(&SNAP.replace("1000", &(i * 250).to_string()));
                text.push('\n');
            }
        }
        let (counts, e) = read(&text, false);
        assert_eq!(counts.unwrap().bad, 2);
        let c = *e.counts();
        assert_eq!((c.snaps, c.out_of_order), (1_998, 0));
        assert_eq!(c.last_ts, Some(500_000));
        let (strict, e) = read(&text, true);
        assert!(
            strict
                .unwrap_err()
                .to_string()
                .starts_with("test: line 700: ")
        );
        assert_eq!(e.counts().snaps, 699);
    }
}

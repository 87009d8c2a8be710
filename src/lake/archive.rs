//! The archiving loop: events from a source into a [`LakeWriter`], with progress and stats.
//!
//! A piped input is named by a deterministic identity (a hash of its first events, or
//! `--input-id`), and each event's position is its 0-based index in the input, so a re-run of
//! the same input after a kill stores exactly what the first run had not.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::writer::Pushed;
use super::{Lake, LakeError, LakeWriter, Table, WriteOptions};
use crate::event::Event;
use crate::io::{EventSource, SourceError};

/// Events hashed into a piped input's identity.
pub const IDENTITY_EVENTS: usize = 1000;

/// Errors of an archiving run.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// How an archiving run behaves.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    pub write: WriteOptions,
    /// The input's name in object names; default: `stdin-` and a hash of its first events.
    pub input_id: Option<String>,
    /// Stop at the first malformed item instead of skipping it.
    pub strict: bool,
    /// Interval of the progress log line.
    pub log_every: Duration,
    /// Store everything pending when the input holds this many unacknowledged items.
    pub max_unacked: usize,
    /// Stop after this long without an event (a live input), instead of waiting for a signal.
    pub idle_exit: Option<Duration>,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            write: WriteOptions::default(),
            input_id: None,
            strict: false,
            log_every: Duration::from_secs(10),
            max_unacked: 1_000_000,
            idle_exit: None,
        }
    }
}

/// What an archiving run did.
#[derive(Debug, Clone, Default)]
pub struct ArchiveReport {
    pub input_id: String,
    pub events: u64,
    pub rows: BTreeMap<Table, u64>,
    pub already_stored: u64,
    /// Skipped items by reason (malformed input, or events the schema cannot hold).
    pub skipped: BTreeMap<String, u64>,
    pub objects: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

impl ArchiveReport {
    /// The summary printed on exit.
    pub fn summary(&self) -> String {
        use crate::cli::thousands;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut s = format!(
            "spm-lake: {} events from {} in {:.1} s ({}/s): {} objects, {} bytes\n",
            thousands(self.events),
            self.input_id,
            secs,
            thousands((self.events as f64 / secs) as u64),
            thousands(self.objects),
            thousands(self.bytes),
        );
        for (table, rows) in &self.rows {
            s.push_str(&format!(
                "  {:<16} {:>12} rows\n",
                table.name(),
                thousands(*rows)
            ));
        }
        if self.already_stored > 0 {
            s.push_str(&format!(
                "  already stored (skipped): {}\n",
                thousands(self.already_stored)
            ));
        }
        for (reason, n) in &self.skipped {
            s.push_str(&format!("  skipped, {reason}: {}\n", thousands(*n)));
        }
        s
    }
}

/// The identity of a piped input: `stdin-` and a hash of the JSON of its first events.
pub fn input_identity(first: &[Event]) -> String {
    let mut bytes = Vec::with_capacity(first.len() * 256);
    for e in first {
        e.write_json(&mut bytes);
        bytes.push(b'\n');
    }
    format!("stdin-{:016x}", crate::hash::fnv1a64(&bytes))
}

/// What an [`ArchiveInput`] yields.
#[derive(Debug)]
pub enum Next {
    /// An event at its lake position; `true` when the input delivered it before (to a worker
    /// that died before it was acknowledged).
    Event(Event, u64, bool),
    /// An item that is not an event, at its position (when it has one): reported and skipped.
    Bad(Option<u64>, SourceError),
    /// Nothing within the timeout (a live input): time to flush what is due.
    Idle,
    End,
}

/// Where the lake's events come from: a pipe, or a durable bus consumer.
pub trait ArchiveInput {
    /// The name of the input in object names, when the input has one of its own (a stream).
    fn identity(&self) -> Option<String>;
    /// This reader's id when other readers may share the input (their objects are then
    /// sparse, see [`super::writer`]).
    fn worker(&self) -> Option<String> {
        None
    }
    fn next(&mut self, timeout: Duration) -> Result<Next, SourceError>;
    /// Everything at or below `pos` is stored: the input may forget it (acknowledge it).
    fn stored_through(&mut self, _pos: u64, _last: bool) -> Result<(), SourceError> {
        Ok(())
    }
    /// Items read and not yet stored that the input holds on to (unacknowledged messages).
    fn unacked(&self) -> usize {
        0
    }
    /// Hands back an event the caller is done with (the input may free it where it was made).
    fn recycle(&mut self, event: Event) {
        drop(event);
    }
}

/// Events parsed ahead by a [`PipeInput`]'s reader thread, handed over a chunk at a time.
const PIPE_CHUNK: usize = 512;
/// Chunks the reader thread may be ahead of the writer.
const PIPE_AHEAD: usize = 8;

type Chunk = Vec<Result<Event, SourceError>>;

/// A piped input: positions are the events' 0-based indexes.
///
/// A reader thread parses the pipe while the caller gathers rows (and the encoder threads
/// encode them), so parsing, the most expensive step for NDJSON, overlaps with the rest. The
/// events come back to the reader thread to be freed ([`ArchiveInput::recycle`]): memory is
/// released by the thread that allocated it, which keeps the allocator's arenas uncontended.
pub struct PipeInput {
    chunks: std::sync::mpsc::Receiver<Chunk>,
    chunk: std::vec::IntoIter<Result<Event, SourceError>>,
    used: Vec<Event>,
    recycled: std::sync::mpsc::Sender<Vec<Event>>,
    pos: u64,
    strict: bool,
    ended: bool,
}

impl PipeInput {
    pub fn new<S: EventSource + Send + 'static>(mut source: S, strict: bool) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Chunk>(PIPE_AHEAD);
        let (recycled, used) = std::sync::mpsc::channel::<Vec<Event>>();
        // The thread ends at the end of the input, at a fatal error, or when the input is
        // dropped (its next send fails).
        std::thread::spawn(move || {
            let mut chunk = Vec::with_capacity(PIPE_CHUNK);
            loop {
                while let Ok(events) = used.try_recv() {
                    drop(events);
                }
                let item = source.next_event();
                let last = match &item {
                    Ok(None) => true,
                    Err(e) => !e.is_recoverable() || strict,
                    Ok(Some(_)) => false,
                };
                if let Some(item) = item.transpose() {
                    chunk.push(item);
                }
                if last || chunk.len() >= PIPE_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(PIPE_CHUNK));
                    if tx.send(full).is_err() || last {
                        return;
                    }
                }
            }
        });
        PipeInput {
            chunks: rx,
            chunk: Vec::new().into_iter(),
            used: Vec::with_capacity(PIPE_CHUNK),
            recycled,
            pos: 0,
            strict,
            ended: false,
        }
    }
}

impl ArchiveInput for PipeInput {
    fn identity(&self) -> Option<String> {
        None
    }

    fn next(&mut self, _timeout: Duration) -> Result<Next, SourceError> {
        loop {
            match self.chunk.next() {
                Some(Ok(e)) => {
                    self.pos += 1;
                    return Ok(Next::Event(e, self.pos - 1, false));
                }
                Some(Err(e)) if e.is_recoverable() && !self.strict => {
                    return Ok(Next::Bad(None, e));
                }
                Some(Err(e)) => return Err(e),
                None if self.ended => return Ok(Next::End),
                None => {
                    if !self.used.is_empty() {
                        let used =
                            std::mem::replace(&mut self.used, Vec::with_capacity(PIPE_CHUNK));
                        // The reader may be gone (end of input): then they are freed here.
                        let _ = self.recycled.send(used);
                    }
                    match self.chunks.recv() {
                        Ok(chunk) => self.chunk = chunk.into_iter(),
                        // The reader thread is done: it sent its last chunk (end or error).
                        Err(_) => self.ended = true,
                    }
                }
            }
        }
    }

    fn recycle(&mut self, event: Event) {
        self.used.push(event);
    }
}

/// Archives everything `input` yields until its end or `stop`, then flushes.
pub fn archive(
    input: &mut dyn ArchiveInput,
    lake: Lake,
    opts: &ArchiveOptions,
    stop: &AtomicBool,
) -> Result<ArchiveReport, ArchiveError> {
    let started = Instant::now();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let poll = Duration::from_millis(200);
    // A piped input is named by its first events; they are held until the name is known.
    let mut head = VecDeque::new();
    let mut ended = false;
    let input_id = match opts.input_id.clone().or_else(|| input.identity()) {
        Some(id) => id,
        None => {
            // Read even after a signal: a shorter head would name the input differently.
            let mut first = Vec::new();
            while first.len() < IDENTITY_EVENTS {
                match input.next(poll)? {
                    Next::Event(e, pos, again) => {
                        first.push(e.clone());
                        head.push_back(Next::Event(e, pos, again));
                    }
                    Next::End => {
                        ended = true;
                        break;
                    }
                    other => head.push_back(other),
                }
            }
            input_identity(&first)
        }
    };
    let mut writer = LakeWriter::with_worker(lake, &input_id, opts.write.clone(), input.worker())?;
    let mut events: u64 = 0;
    let mut last_log = Instant::now();
    let mut last_check = Instant::now();
    let mut logged_rows: u64 = 0;
    let mut acked: Option<u64> = None;
    // When the latest event came, noted at the periodic check and when the input goes idle
    // (not per event: the clock is not free).
    let mut last_event = Instant::now();
    let mut events_seen: u64 = 0;
    // A fatal input error still stores everything valid read before it.
    let mut failed = None;
    loop {
        let next = match head.pop_front() {
            Some(n) => n,
            None if ended || stop.load(Ordering::Relaxed) => break,
            None => match input.next(poll) {
                Ok(n) => n,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            },
        };
        let mut idle = false;
        match next {
            Next::Event(event, pos, redelivered) => {
                events += 1;
                if let Pushed::Rejected(reason) = writer.push(&event, pos, redelivered)? {
                    tracing::warn!(
                        "event {pos} ({} at {}): {reason}; skipped",
                        event.kind().type_name(),
                        event.ts_event_ns()
                    );
                }
                input.recycle(event);
            }
            Next::Bad(pos, e) => {
                tracing::warn!("{e}; skipped");
                *skipped.entry("malformed input".into()).or_default() += 1;
                if let Some(pos) = pos {
                    writer.note_position(pos);
                }
            }
            Next::Idle => {
                if events != events_seen {
                    events_seen = events;
                    last_event = Instant::now();
                }
                if opts.idle_exit.is_some_and(|d| last_event.elapsed() >= d) {
                    tracing::info!(
                        "no event for {:?}: stopping",
                        opts.idle_exit.unwrap_or_default()
                    );
                    break;
                }
                idle = true;
            }
            Next::End => break,
        }
        if idle || events.is_multiple_of(4096) {
            let now = Instant::now();
            if events != events_seen {
                events_seen = events;
                last_event = now;
            }
            if idle || now.duration_since(last_check) >= Duration::from_millis(100) {
                last_check = now;
                writer.flush_due(now)?;
                // The bus holds unacknowledged messages up to a limit: store before it is hit.
                if input.unacked() >= opts.max_unacked {
                    writer.finish()?;
                }
                if let Some(through) = writer.durable_through()
                    && acked.is_none_or(|a| through > a)
                {
                    input.stored_through(through, false)?;
                    acked = Some(through);
                }
            }
            if now.duration_since(last_log) >= opts.log_every {
                let rows: u64 = writer.stats().rows.values().sum();
                let secs = now.duration_since(last_log).as_secs_f64();
                tracing::info!(
                    "{} events; {:.0} rows/s; {} batches pending ({} rows), oldest {:.1} s; {} unacknowledged",
                    events,
                    (rows - logged_rows) as f64 / secs,
                    writer.pending_batches(),
                    writer.pending_rows(),
                    writer
                        .oldest_pending()
                        .map_or(0.0, |t| now.duration_since(t).as_secs_f64()),
                    input.unacked(),
                );
                logged_rows = rows;
                last_log = now;
            }
        }
    }
    writer.finish()?;
    if let Some(through) = writer.durable_through() {
        input.stored_through(through, true)?;
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    let stats = writer.stats();
    for (reason, n) in &stats.rejected {
        *skipped.entry(reason.to_string()).or_default() += n;
    }
    Ok(ArchiveReport {
        input_id,
        events,
        rows: stats.rows.clone(),
        already_stored: stats.already_stored,
        skipped,
        objects: stats.objects,
        bytes: stats.bytes,
        elapsed: started.elapsed(),
    })
}

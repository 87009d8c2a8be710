//! The archiving loop: events from a source into a [`LakeWriter`], with progress and stats.
//!
//! A piped input is named by a deterministic identity (a hash of its first events, or
//! `--input-id`), and each event's position is its 0-based index in the input, so a re-run of
//! the same input after a kill stores exactly what the first run had not.

use std::collections::BTreeMap;
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
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        ArchiveOptions {
            write: WriteOptions::default(),
            input_id: None,
            strict: false,
            log_every: Duration::from_secs(10),
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

/// Archives everything `source` yields until its end or `stop`, then flushes.
pub fn archive(
    source: &mut dyn EventSource,
    lake: Lake,
    opts: &ArchiveOptions,
    stop: &AtomicBool,
) -> Result<ArchiveReport, ArchiveError> {
    let started = Instant::now();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut next = |skipped: &mut BTreeMap<String, u64>| -> Result<Option<Event>, SourceError> {
        loop {
            match source.next_event() {
                Ok(e) => return Ok(e),
                Err(e) if e.is_recoverable() && !opts.strict => {
                    tracing::warn!("{e}; skipped");
                    *skipped.entry("malformed input".into()).or_default() += 1;
                }
                Err(e) => return Err(e),
            }
        }
    };
    // The identity needs the first events; they are held until it is known.
    let mut head = Vec::new();
    if opts.input_id.is_none() {
        // Read even after a signal: a shorter head would name the input differently.
        while head.len() < IDENTITY_EVENTS {
            match next(&mut skipped)? {
                Some(e) => head.push(e),
                None => break,
            }
        }
    }
    let input_id = opts
        .input_id
        .clone()
        .unwrap_or_else(|| input_identity(&head));
    let mut writer = LakeWriter::new(lake, &input_id, opts.write.clone())?;
    let mut pos: u64 = 0;
    let mut last_log = Instant::now();
    let mut logged_rows: u64 = 0;
    let mut head = head.into_iter();
    // A fatal input error still stores everything valid read before it.
    let mut failed = None;
    loop {
        let event = match head.next() {
            Some(e) => Some(e),
            None if stop.load(Ordering::Relaxed) => None,
            None => match next(&mut skipped) {
                Ok(e) => e,
                Err(e) => {
                    failed = Some(e);
                    None
                }
            },
        };
        let Some(event) = event else { break };
        match writer.push(&event, pos)? {
            Pushed::Buffered | Pushed::AlreadyStored => {}
            Pushed::Rejected(reason) => {
                tracing::warn!(
                    "event {pos} ({} at {}): {reason}; skipped",
                    event.kind().type_name(),
                    event.ts_event_ns()
                );
            }
        }
        pos += 1;
        if pos.is_multiple_of(4096) {
            let now = Instant::now();
            writer.flush_due(now)?;
            if now.duration_since(last_log) >= opts.log_every {
                let rows: u64 = writer.stats().rows.values().sum();
                let secs = now.duration_since(last_log).as_secs_f64();
                tracing::info!(
                    "{} events; {:.0} rows/s; {} batches pending ({} rows), oldest {:.1} s",
                    pos,
                    (rows - logged_rows) as f64 / secs,
                    writer.pending_batches(),
                    writer.pending_rows(),
                    writer
                        .oldest_pending()
                        .map_or(0.0, |t| now.duration_since(t).as_secs_f64()),
                );
                logged_rows = rows;
                last_log = now;
            }
        }
    }
    writer.finish()?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    let stats = writer.stats();
    for (reason, n) in &stats.rejected {
        *skipped.entry(reason.to_string()).or_default() += n;
    }
    Ok(ArchiveReport {
        input_id,
        events: pos,
        rows: stats.rows.clone(),
        already_stored: stats.already_stored,
        skipped,
        objects: stats.objects,
        bytes: stats.bytes,
        elapsed: started.elapsed(),
    })
}

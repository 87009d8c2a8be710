//! DBN on stdin (plain or zstd, DBN v1–v3: a saved live session or `dbn` CLI output) →
//! events, decoded as the bytes arrive.
//!
//! The bytes go through the same reader and the same one-input merge as `spm-replay`, so
//! `cat f.dbn.zst | spm-ingest --source stdin` writes exactly what `spm-replay f` writes.
//! A pipe can wait, so nothing is ever dropped here: the reader waits for room in the queue.
//! Corrupt or truncated input ends the feed with an error naming the byte offset; every event
//! before it has been handed on.

use std::io::Read;
use std::thread::JoinHandle;

use super::{FeedTx, IngestError};
use crate::dbn::DbnEventReader;
use crate::event::FeedState;
use crate::io::EventSource;
use crate::replay::Merge;

/// Starts reading `input` (named `name` in errors) on a thread of its own.
pub fn spawn<R: Read + Send + 'static>(
    input: R,
    name: String,
    mut tx: FeedTx,
) -> std::io::Result<JoinHandle<Result<(), IngestError>>> {
    std::thread::Builder::new()
        .name("ingest-stdin".into())
        .spawn(move || {
            let result = read(input, &name, &mut tx);
            if let Err(e) = &result {
                let s = tx.status_of(FeedState::Error, e.to_string());
                tx.status_blocking(s);
            }
            result
        })
}

fn read<R: Read + Send + 'static>(
    input: R,
    name: &str,
    tx: &mut FeedTx,
) -> Result<(), IngestError> {
    let source = tx.source().to_string();
    let reader = DbnEventReader::from_reader(input, name, &source)
        .map_err(|e| IngestError::Input(e.to_string()))?;
    let stop = tx.stop();
    let mut merge = Merge::new(vec![reader]);
    loop {
        if stop.is_stopped() {
            return Ok(());
        }
        match merge.next_event() {
            Ok(Some(event)) => tx.event_blocking(event)?,
            Ok(None) => break,
            Err(e) => return Err(IngestError::Input(e.to_string())),
        }
    }
    for reader in merge.inputs() {
        for (why, n) in reader.skipped() {
            tracing::info!("{name}: {n} record(s) skipped: {why}");
        }
    }
    match merge.errors().first() {
        Some(e) => Err(IngestError::Input(format!(
            "{e} (every event before it was published)"
        ))),
        None => Ok(()),
    }
}

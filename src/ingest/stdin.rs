//! DBN on stdin (plain or zstd, DBN v1–v3: a saved live session or `dbn` CLI output) →
//! events, decoded as the bytes arrive.
//!
//! The bytes go through the same reader and the same one-input merge as `spm-replay`, so
//! `cat f.dbn.zst | spm-ingest --source stdin` writes exactly what `spm-replay f` writes.
//! A pipe can wait, so nothing is ever dropped here: the reader waits for room in the queue.
//! Corrupt or truncated input ends the feed with an error naming the byte offset; every event
//! before it has been handed on. A stop (SIGINT) ends the input where it is: every whole
//! record received is published, a record cut in half by the stop is not (and is logged).

use std::io::{self, Read};
use std::thread::JoinHandle;

use super::{FeedTx, IngestError, Stop};
use crate::dbn::DbnEventReader;
use crate::event::FeedState;
use crate::io::EventSource;
use crate::replay::Merge;

/// Starts reading this process's stdin on a thread of its own; a stop ends the input at once,
/// even while no byte is coming.
pub fn spawn_stdin(tx: FeedTx) -> io::Result<JoinHandle<Result<(), IngestError>>> {
    let stop = tx.stop();
    spawn(StdinUntilStop { stop }, "stdin".into(), tx)
}

/// Reads fd 0 with poll(2), so that a stop ends the input (as an end of file) without waiting
/// for bytes that may never come.
struct StdinUntilStop {
    stop: Stop,
}

impl Read for StdinUntilStop {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.is_stopped() {
                return Ok(0);
            }
            let mut pfd = libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, its count, a timeout in ms.
            let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if ready == 0 {
                continue;
            }
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            return Ok(n as usize);
        }
    }
}

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
        Some(e) if stop.is_stopped() => {
            tracing::warn!("stopped inside a record, which is dropped: {e}");
            Ok(())
        }
        Some(e) => Err(IngestError::Input(format!(
            "{e} (every event before it was published)"
        ))),
        None => Ok(()),
    }
}

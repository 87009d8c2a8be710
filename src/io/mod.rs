//! Sources and sinks of events: the one abstraction every command uses.
//!
//! A stage reads from an [`EventSource`] and writes to an [`EventSink`]; whether those are a pipe
//! (NDJSON or the binary framing, detected from the first bytes) or NATS subjects is decided
//! once, in [`crate::wiring`], and the stage never knows. The traits are synchronous: pipes are read
//! with plain buffered I/O for speed, and the NATS adaptors in [`crate::bus`] run their own async
//! runtime behind a bounded channel.

pub mod codec;
pub mod pipe;

use crate::event::Event;

/// Where an error happened in an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of an NDJSON input.
    Line(u64),
    /// Byte offset of a frame in a binary input.
    Offset(u64),
    /// A NATS message, by subject and stream sequence.
    Message { subject: String, stream_seq: u64 },
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Offset(o) => write!(f, "byte offset {o}"),
            Position::Message {
                subject,
                stream_seq,
            } => write!(f, "message {stream_seq} on {subject}"),
        }
    }
}

/// Errors from reading events.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// One input item could not be read as an event; the source has moved past it and can
    /// go on (`--strict` callers stop here instead).
    #[error("{input}: {position}: {message}")]
    Bad {
        input: String,
        position: Position,
        message: String,
    },
    /// The input cannot be read any further.
    #[error("{input}: {message}")]
    Fatal { input: String, message: String },
    #[error("{input}: {source}")]
    Io {
        input: String,
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// Whether the source can go on after this error (a single bad item was skipped).
    pub fn is_recoverable(&self) -> bool {
        matches!(self, SourceError::Bad { .. })
    }
}

/// Errors from writing events.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The reader went away (`EPIPE`): stop quietly.
    #[error("output closed")]
    Closed,
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("publish failed: {0}")]
    Publish(String),
}

/// Something events are read from, in order.
pub trait EventSource {
    /// The next event; `Ok(None)` at the end of the input. After a recoverable error the
    /// source can be called again.
    fn next_event(&mut self) -> Result<Option<Event>, SourceError>;

    /// Hands back an event the caller is done with, so the source may reuse its allocations
    /// for a later event (a hint: the default drops it).
    fn recycle(&mut self, event: Event) {
        drop(event);
    }
}

/// Something events are written to, in order.
pub trait EventSink {
    fn send(&mut self, event: &Event) -> Result<(), SinkError>;
    /// Hands buffered events on to the reader now (before a pause in a paced replay).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Writes out everything buffered and waits for acknowledgements; call before exit.
    fn finish(&mut self) -> Result<(), SinkError>;
    /// How many leading events of this input the destination already holds (a resumed
    /// replay): the caller skips that many and sends from the next one.
    fn resume_point(&self) -> u64 {
        0
    }
}

impl<S: EventSource + ?Sized> EventSource for Box<S> {
    fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        (**self).next_event()
    }
    fn recycle(&mut self, event: Event) {
        (**self).recycle(event)
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn send(&mut self, event: &Event) -> Result<(), SinkError> {
        (**self).send(event)
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        (**self).finish()
    }
    fn resume_point(&self) -> u64 {
        (**self).resume_point()
    }
}

/// Wire format of a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PipeFormat {
    /// One JSON object per line: the contract.
    #[default]
    Ndjson,
    /// The compact binary framing of the same events (pipes only).
    Bin,
}

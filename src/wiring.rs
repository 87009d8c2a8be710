//! Choosing a command's source and sink: a pipe or NATS, decided once from the flags and from
//! what stdin/stdout are connected to (DESIGN.md: a FIFO or a redirected file is a pipe; a
//! terminal or `/dev/null` is not). Every binary goes through here, so none of them carries
//! its own copy of this glue. It sits above both [`crate::io`] (pipes) and [`crate::bus`]
//! (NATS), which know nothing of each other, and it is where the lake meets the bus.

use std::time::Duration;

use crate::bus::{
    BatchSettings, Bus, BusConfig, BusError, DurableSettings, DurableSource, Polled, SinkSettings,
    SourceOptions,
};
use crate::event::Event;
use crate::io::pipe::{LineFlush, PipeSink, PipeSource, StdioKind, stdio_kind};
use crate::io::{EventSink, EventSource, PipeFormat, SourceError};
use crate::lake::archive::{ArchiveInput, Next};

/// Where a command writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputTarget {
    Stdout,
    Nats,
}

impl OutputTarget {
    /// stdout when it is a pipe or a file, else NATS.
    pub fn auto() -> Self {
        if stdio_kind(1) == StdioKind::Pipe {
            OutputTarget::Stdout
        } else {
            OutputTarget::Nats
        }
    }
}

/// Where a command reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputSource {
    Stdin,
    Nats,
}

impl InputSource {
    /// stdin when it is a pipe or a file, else NATS.
    pub fn auto() -> Self {
        if stdio_kind(0) == StdioKind::Pipe {
            InputSource::Stdin
        } else {
            InputSource::Nats
        }
    }
}

/// How a command publishes to NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publishing {
    /// One acknowledged publish with a message id per event: low-rate outputs (signals).
    PerEvent,
    /// Fast-ingest batches, each message stamped with its position in `input`; with `resume`,
    /// what the stream already holds of `input` is skipped (see [`crate::bus::BatchSink`]).
    Bulk { input: String, resume: bool },
}

/// Opens the sink. `line_flush` hands every event on at once (low-rate outputs such as signals,
/// so a terminal or a downstream reader sees each snap as it is taken).
pub fn open_sink(
    target: OutputTarget,
    format: PipeFormat,
    bus: &BusConfig,
    line_flush: bool,
    publishing: Publishing,
) -> Result<Box<dyn EventSink>, BusError> {
    Ok(match target {
        OutputTarget::Stdout if line_flush => Box::new(LineFlush(PipeSink::stdout(format))),
        OutputTarget::Stdout => Box::new(PipeSink::stdout(format)),
        OutputTarget::Nats => {
            if format != PipeFormat::Ndjson {
                tracing::warn!("--format applies to pipes only; NATS messages are JSON");
            }
            let bus = Bus::connect(bus)?;
            match publishing {
                Publishing::PerEvent => Box::new(bus.sink(SinkSettings::default())?),
                Publishing::Bulk { input, resume } => {
                    let settings = BatchSettings {
                        resume,
                        ..BatchSettings::new(input)
                    };
                    match bus.batch_sink(settings) {
                        Ok(sink) => Box::new(sink),
                        Err(e @ BusError::BatchDisabled { .. }) => {
                            tracing::warn!(
                                "{e}: publishing event by event with message ids instead (several times slower; a re-run is deduplicated only within the stream's duplicate window)"
                            );
                            Box::new(bus.sink(SinkSettings::default())?)
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    })
}

/// Opens the source: stdin in either pipe format, or NATS `subjects` through ordered consumers.
pub fn open_source(
    input: InputSource,
    subjects: &[String],
    from_start: bool,
    bus: &BusConfig,
) -> Result<Box<dyn EventSource + Send>, BusError> {
    Ok(match input {
        InputSource::Stdin => Box::new(PipeSource::stdin()),
        InputSource::Nats => {
            let opts = SourceOptions {
                from_start,
                stop_on_signal: true,
                ..SourceOptions::default()
            };
            Box::new(Bus::connect(bus)?.source(subjects, opts)?)
        }
    })
}

/// A durable bus consumer as the lake's input: positions are stream sequences, the input is
/// named after its stream, and stored positions are acknowledged.
pub struct BusArchiveInput {
    source: DurableSource,
}

impl BusArchiveInput {
    /// Creates the streams if missing, then the durable consumer.
    pub fn open(bus: &BusConfig, settings: DurableSettings) -> Result<Self, BusError> {
        let bus = Bus::connect(bus)?;
        bus.ensure_streams()?;
        Ok(BusArchiveInput {
            source: DurableSource::new(&bus, settings)?,
        })
    }
}

impl ArchiveInput for BusArchiveInput {
    fn identity(&self) -> Option<String> {
        Some(self.source.identity().to_string())
    }

    fn worker(&self) -> Option<String> {
        Some(self.source.worker().to_string())
    }

    fn next(&mut self, timeout: Duration) -> Result<Next, SourceError> {
        match self.source.poll(timeout)? {
            Polled::Idle => Ok(Next::Idle),
            Polled::Message(m) => match Event::from_json(&m.payload, Some(&m.subject)) {
                Ok(e) => Ok(Next::Event(e, m.stream_seq, m.delivered > 1)),
                Err(err) => Ok(Next::Bad(
                    Some(m.stream_seq),
                    SourceError::Bad {
                        input: self.source.input().to_string(),
                        position: m.position(),
                        message: err.to_string(),
                    },
                )),
            },
        }
    }

    fn stored_through(&mut self, pos: u64, last: bool) -> Result<(), SourceError> {
        self.source.ack_through(pos, last)
    }

    fn unacked(&self) -> usize {
        self.source.unacked()
    }
}

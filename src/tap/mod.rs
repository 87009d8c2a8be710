//! `spm-tap`: prints the events on NATS subjects (or an NDJSON pipe) for a person or a script:
//! `json` (the exact line a pipe carries), `pretty`, `csv` (flattened columns; one row per level
//! for `level_signals`, `bid_px_1 … ask_ct_10` for MBP-10 images) and `table` (the levels view
//! of `levels.signals`, redrawn in place on a terminal).

mod format;

pub use format::{Formatter, TapFormat, csv_columns};

use std::io::{IsTerminal, Write};

use crate::bus::{Bus, BusConfig, BusError, SourceOptions};
use crate::io::{EventSource, SourceError};

/// Command-line arguments of `spm-tap`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "spm-tap",
    version,
    about = "Print the events on NATS subjects (wildcards allowed) as JSON lines, pretty JSON, CSV or a levels table"
)]
pub struct TapArgs {
    /// Subjects to read, e.g. `levels.signals` or `market.>`.
    #[arg(required_unless_present = "stdin", value_name = "SUBJECT")]
    pub subjects: Vec<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = TapFormat::Json)]
    pub format: TapFormat,
    /// Exit after this many messages.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    /// Start with the retained history of the streams instead of new messages only.
    #[arg(long)]
    pub from_start: bool,
    /// Format NDJSON read from standard input instead of NATS.
    #[arg(long, conflicts_with_all = ["subjects", "from_start"])]
    pub stdin: bool,
    #[command(flatten)]
    pub bus: BusConfig,
}

/// Errors that stop `spm-tap`.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
}

/// Copies events from `source` to `formatter` until the source ends or `count` events were
/// written. Bad items are logged with their position and skipped. Returns the number written;
/// a closed output (`EPIPE`) ends the copy quietly.
pub fn copy<S, W>(
    source: &mut S,
    formatter: &mut Formatter<W>,
    count: Option<u64>,
    flush_each: bool,
) -> Result<u64, TapError>
where
    S: EventSource + ?Sized,
    W: Write,
{
    let mut written = 0u64;
    while count.is_none_or(|c| written < c) {
        let event = match source.next_event() {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(e) if e.is_recoverable() => {
                tracing::warn!("skipping bad message: {e}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let result = formatter.write_event(&event).and_then(|()| {
            if flush_each {
                formatter.flush()
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => written += 1,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(written),
            Err(e) => return Err(TapError::Output(e)),
        }
    }
    match formatter.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(TapError::Output(e)),
        _ => Ok(written),
    }
}

/// Runs `spm-tap`.
pub fn run(args: &TapArgs) -> Result<(), TapError> {
    // A tap has nothing to flush: each message is flushed as written.
    crate::cli::exit_on_signal();
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut formatter = Formatter::new(std::io::BufWriter::new(stdout.lock()), args.format, tty);
    if args.stdin {
        let mut source = crate::io::pipe::PipeSource::stdin();
        copy(&mut source, &mut formatter, args.count, tty)?;
        return Ok(());
    }
    let bus = Bus::connect(&args.bus)?;
    let mut source = bus.source(
        &args.subjects,
        SourceOptions {
            from_start: args.from_start,
            ..Default::default()
        },
    )?;
    copy(&mut source, &mut formatter, args.count, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn copy_stops_after_count_and_skips_bad_items() {
        let line = "{\"type\":\"stock_trade\",\"ts_event_ns\":1,\"ts_recv_ns\":2,\"source\":\"x\",\"symbol\":\"SPY\",\"price\":1.5,\"size\":3}";
        let input = format!("{line}\nbad\n{line}\n{line}\n");
        let mut src = crate::io::pipe::PipeSource::new(input.as_bytes(), "stdin");
        let mut f = Formatter::new(Vec::new(), TapFormat::Json, false);
        assert_eq!(copy(&mut src, &mut f, Some(2), false).unwrap(), 2);
        assert_eq!(
            String::from_utf8(f.into_inner()).unwrap(),
            format!("{line}\n{line}\n")
        );
    }

    #[test]
    fn arguments_need_a_subject_unless_reading_stdin() {
        assert!(TapArgs::try_parse_from(["spm-tap"]).is_err());
        assert!(TapArgs::try_parse_from(["spm-tap", "--stdin"]).is_ok());
        assert!(TapArgs::try_parse_from(["spm-tap", "--stdin", "levels.signals"]).is_err());
        let a = TapArgs::try_parse_from(["spm-tap", "-f", "table", "-n", "3", "levels.signals"])
            .unwrap();
        assert_eq!(a.format, TapFormat::Table);
        assert_eq!(a.count, Some(3));
    }
}

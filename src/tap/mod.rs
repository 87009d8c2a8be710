//! `spm-tap`: prints the events on NATS subjects (or an NDJSON pipe) for a person or a script:
//! `json` (the exact line a pipe carries), `pretty`, `csv` (flattened columns; one row per level
//! for `level_signals`, `bid_px_1 … ask_ct_10` for MBP-10 images) and `table` (the levels view
//! of `levels.signals`, redrawn in place on a terminal).

mod format;

pub use format::{Formatter, TapFormat, csv_columns};

use std::io::{BufRead, IsTerminal, Write};

use crate::bus::{Bus, BusConfig, BusError, SourceOptions};
use crate::event::Event;
use crate::io::{EventSource, Position, SourceError};

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

/// Reads NDJSON events line by line (blank lines are skipped).
struct LineSource<R> {
    reader: R,
    input: String,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> EventSource for LineSource<R> {
    fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| SourceError::Io {
                    input: self.input.clone(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            let text = self.buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            return Event::from_json(text, None)
                .map(Some)
                .map_err(|e| SourceError::Bad {
                    input: self.input.clone(),
                    position: Position::Line(self.line),
                    message: e.to_string(),
                });
        }
    }
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

/// Exits the process with status 0 on SIGINT or SIGTERM (a tap has nothing to flush: each
/// message is flushed as written, except when formatting a pipe to a pipe).
fn exit_on_signal() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                if let Ok(mut term) = signal(SignalKind::terminate()) {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                    return;
                }
            }
            let _ = tokio::signal::ctrl_c().await;
        });
        // No flush here: the main thread holds the stdout lock, and every message already
        // written to a terminal or from NATS has been flushed.
        std::process::exit(0);
    });
}

/// Runs `spm-tap`.
pub fn run(args: &TapArgs) -> Result<(), TapError> {
    exit_on_signal();
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut formatter = Formatter::new(std::io::BufWriter::new(stdout.lock()), args.format, tty);
    if args.stdin {
        let mut source = LineSource {
            reader: std::io::stdin().lock(),
            input: "stdin".into(),
            line: 0,
            buf: Vec::new(),
        };
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
    fn line_source_skips_blank_lines_and_reports_bad_ones_by_line() {
        let input = b"{\"type\":\"stock_trade\",\"ts_event_ns\":1,\"ts_recv_ns\":2,\"source\":\"x\",\"symbol\":\"SPY\",\"price\":1.5,\"size\":3}\n\nnot json\r\n";
        let mut src = LineSource {
            reader: &input[..],
            input: "stdin".into(),
            line: 0,
            buf: Vec::new(),
        };
        assert!(src.next_event().unwrap().is_some());
        let err = src.next_event().unwrap_err();
        assert!(err.is_recoverable());
        assert!(err.to_string().starts_with("stdin: line 3:"), "{err}");
        assert!(src.next_event().unwrap().is_none());
    }

    #[test]
    fn copy_stops_after_count_and_skips_bad_items() {
        let line = "{\"type\":\"stock_trade\",\"ts_event_ns\":1,\"ts_recv_ns\":2,\"source\":\"x\",\"symbol\":\"SPY\",\"price\":1.5,\"size\":3}";
        let input = format!("{line}\nbad\n{line}\n{line}\n");
        let mut src = LineSource {
            reader: input.as_bytes(),
            input: "stdin".into(),
            line: 0,
            buf: Vec::new(),
        };
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

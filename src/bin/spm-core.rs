//! `spm-core`: market events in, `level_signals` snaps out (PHYSICS.md).

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use spymaster::core::{self, Clock, Config, Engine, RunOptions};
use spymaster::event::Event;
use spymaster::io::{EventSink, EventSource, Position, SinkError, SourceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Input {
    Stdin,
    Nats,
}

/// Turns market events into live BREAK / REJECT calls at SPY price levels.
#[derive(Debug, Parser)]
#[command(name = "spm-core", version)]
struct Args {
    /// Write snaps as NDJSON to stdout instead of NATS `levels.signals`.
    #[arg(long)]
    stdout: bool,
    /// Where events come from (default: stdin when it is a pipe or a file, else NATS).
    #[arg(long, value_enum)]
    input: Option<Input>,
    /// With NATS input: start from the retained history instead of new messages.
    #[arg(long)]
    from_start: bool,
    /// Snap on event time only, or also on the wall clock when the market is quiet.
    #[arg(long, value_enum, default_value_t = Clock::Event)]
    clock: Clock,
    /// TOML file overriding physics constants.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Extra levels to watch (SPY prices, comma separated).
    #[arg(long, value_delimiter = ',', value_name = "P,...")]
    hotzone: Vec<f64>,
    /// Futures contract to follow (default: the most traded outright contract).
    #[arg(long)]
    futures_symbol: Option<String>,
    /// Stop at the first malformed input line (exit 1) instead of skipping it.
    #[arg(long)]
    strict: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(args: &Args) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Config::from_toml_str(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Config::default(),
    };
    config.hotzones.extend(args.hotzone.iter().copied());
    if args.futures_symbol.is_some() {
        config.futures_symbol = args.futures_symbol.clone();
    }
    config.validate()?;
    Ok(config)
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = load_config(&args)?;
    if args.print_config {
        print!("{}", config.to_toml_string());
        return Ok(ExitCode::SUCCESS);
    }
    // TODO(merge): replace with crate::io::pipe / crate::bus sources and sinks.
    if args.input == Some(Input::Nats) || !args.stdout {
        eprintln!("spm-core: NATS is not wired into this build yet; use --input stdin --stdout");
        return Ok(ExitCode::from(2));
    }
    let opts = RunOptions {
        strict: args.strict,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(config);
    let mut sink = StdoutSink::new();
    let result = match args.clock {
        Clock::Event => core::run(&mut engine, &mut StdinSource::new(), &mut sink, &opts),
        Clock::Wall => {
            core::run_wall_clock(&mut engine, Box::new(StdinSource::new()), &mut sink, &opts)
        }
    };
    let stats = serde_json::to_string(engine.stats()).unwrap_or_default();
    tracing::info!(%stats, "core finished");
    result.context("spm-core")?;
    Ok(ExitCode::SUCCESS)
}

// --- Minimal stdin/stdout adaptors, to be replaced by `crate::io::pipe` at merge. ---

/// NDJSON events from stdin, with line numbers in errors.
struct StdinSource {
    input: std::io::BufReader<std::io::Stdin>,
    line: u64,
    buf: Vec<u8>,
}

impl StdinSource {
    fn new() -> StdinSource {
        StdinSource {
            input: std::io::BufReader::with_capacity(1 << 16, std::io::stdin()),
            line: 0,
            buf: Vec::with_capacity(4096),
        }
    }
}

impl EventSource for StdinSource {
    fn next_event(&mut self) -> Result<Option<Event>, SourceError> {
        loop {
            self.buf.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| SourceError::Io {
                    input: "stdin".into(),
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
                    input: "stdin".into(),
                    position: Position::Line(self.line),
                    message: e.to_string(),
                });
        }
    }
}

/// NDJSON events to stdout.
struct StdoutSink {
    out: BufWriter<std::io::Stdout>,
    buf: Vec<u8>,
}

impl StdoutSink {
    fn new() -> StdoutSink {
        StdoutSink {
            out: BufWriter::with_capacity(1 << 16, std::io::stdout()),
            buf: Vec::with_capacity(1 << 14),
        }
    }
}

fn sink_error(e: std::io::Error) -> SinkError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        SinkError::Closed
    } else {
        SinkError::Io(e)
    }
}

impl EventSink for StdoutSink {
    fn send(&mut self, event: &Event) -> Result<(), SinkError> {
        self.buf.clear();
        event.write_json(&mut self.buf);
        self.buf.push(b'\n');
        self.out.write_all(&self.buf).map_err(sink_error)?;
        // Snaps are few; flush each so a live reader sees it at once.
        self.out.flush().map_err(sink_error)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(sink_error)
    }
}

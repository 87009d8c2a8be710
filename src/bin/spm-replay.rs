//! spm-replay: DBN files → canonical events, merged by event time, on stdout or NATS.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use spymaster::bus::BusConfig;
use spymaster::cli;
use spymaster::dbn::DbnEventReader;
use spymaster::io::PipeFormat;
use spymaster::replay::{self, Merge, Pacer, TimeRange};
use spymaster::wiring::{OutputTarget, Publishing, open_sink};

/// Replay DBN files (v1–v3, plain or zstd) as canonical events, merged by event time.
#[derive(Parser, Debug)]
#[command(name = "spm-replay", version)]
struct Args {
    /// DBN files (.dbn or .dbn.zst), from any mix of datasets.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// 0 = as fast as possible, 1 = real time, 2 = twice as fast.
    #[arg(long, env = "REPLAY_SPEED", default_value_t = 0.0)]
    speed: f64,
    /// First event time to replay: ISO-8601 (UTC unless an offset is given) or nanoseconds.
    #[arg(long, value_parser = replay::parse_time)]
    start: Option<u64>,
    /// Event time to stop at (excluded): ISO-8601 or nanoseconds.
    #[arg(long, value_parser = replay::parse_time)]
    end: Option<u64>,
    /// Where events go [default: stdout when stdout is a pipe or a file, else nats].
    #[arg(long, value_enum)]
    output: Option<OutputTarget>,
    /// Pipe format on stdout.
    #[arg(long, value_enum, default_value_t)]
    format: PipeFormat,
    /// The `source` field of every event.
    #[arg(long, default_value = "replay")]
    source: String,
    /// On NATS, publish every event again even when the stream already holds this input
    /// (by default a re-run resumes after the last event of these files the stream holds).
    #[arg(long)]
    republish: bool,
    #[command(flatten)]
    bus: BusConfig,
}

fn main() -> ExitCode {
    spymaster::cli::generate_docs::<Args>();
    let args = Args::parse();
    cli::init_logging();
    cli::finish(run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.speed.is_nan() || args.speed < 0.0 {
        bail!("--speed must be 0 or more, got {}", args.speed);
    }
    let mut readers = Vec::with_capacity(args.files.len());
    for path in &args.files {
        readers.push(
            DbnEventReader::open(path, &args.source)
                .with_context(|| format!("opening {}", path.display()))?,
        );
    }
    let span = readers
        .iter()
        .map(|r| (r.metadata().start, r.metadata().end.map(|e| e.get())))
        .fold(None, |acc: Option<(u64, Option<u64>)>, (s, e)| match acc {
            None => Some((s, e)),
            Some((s0, e0)) => Some((s0.min(s), e0.zip(e).map(|(a, b)| a.max(b)))),
        })
        .and_then(|(s, e)| {
            Some((
                args.start.unwrap_or(s).max(s),
                args.end.unwrap_or(e?).min(e?),
            ))
        });
    let output = args.output.unwrap_or_else(OutputTarget::auto);
    let range = TimeRange {
        start: args.start,
        end: args.end,
    };
    let publishing = match output {
        OutputTarget::Nats => Publishing::Bulk {
            input: replay::input_identity(&args.files, range, &args.source)
                .context("reading the inputs' identity")?,
            resume: !args.republish,
        },
        OutputTarget::Stdout => Publishing::PerEvent,
    };
    let mut sink = open_sink(output, args.format, &args.bus, false, publishing)
        .context("opening the output")?;
    let mut merge = Merge::new(readers);
    let progress = cli::progress_enabled().then(|| replay::ProgressBar::new(span));
    let summary = replay::run(
        &mut merge,
        sink.as_mut(),
        range,
        &mut Pacer::new(args.speed),
        cli::stop_flag(),
        progress
            .as_ref()
            .map_or(&() as &dyn replay::Progress, |p| p as &dyn replay::Progress),
    );
    if let Some(p) = &progress {
        p.finish();
    }
    let mut skipped = BTreeMap::new();
    for reader in merge.inputs() {
        for (why, n) in reader.skipped() {
            *skipped
                .entry(format!("{}: {why}", reader.name()))
                .or_insert(0) += n;
        }
    }
    let summary = summary?;
    eprint!("{}", summary.report(&skipped));
    if let Some(first) = merge.errors().first() {
        for e in merge.errors() {
            eprintln!("error: {e}");
        }
        bail!(
            "{} input error(s); every event before them was written (first: {first})",
            merge.errors().len()
        );
    }
    Ok(())
}

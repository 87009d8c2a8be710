//! `spm-eval`: are the calls any good? Scores every BREAK / REJECT call against a base rate.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use spymaster::bus::BusConfig;
use spymaster::cli;
use spymaster::core::Config;
use spymaster::dbn::DbnEventReader;
use spymaster::eval::{self, EvalSettings, Evaluation, Evaluator, input, plot, report, sweep};
use spymaster::io::pipe::PipeSource;
use spymaster::replay::Merge;
use spymaster::wiring::{InputSource, open_source};

/// Scores every BREAK / REJECT call in `level_signals` against what spot did next, beside the
/// rate a coin would get touching the same levels.
///
/// `spm-replay day.dbn.zst | spm-core --stdout | spm-eval --plot day.svg`
#[derive(Debug, Parser)]
#[command(name = "spm-eval", version, after_help = AFTER_HELP)]
struct Args {
    /// Where snaps come from [default: stdin when it is a pipe or a file, else NATS
    /// `levels.signals`, read until SIGINT/SIGTERM].
    #[arg(long, value_enum)]
    input: Option<InputSource>,
    /// With NATS input: start from the retained history instead of new snaps.
    #[arg(long)]
    from_start: bool,
    /// With NATS input: stop after this many snaps.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// $ beyond (BREAK) or away from (REJECT) the level that makes a win.
    #[arg(long, default_value_t = 0.25, value_name = "$")]
    target: f64,
    /// $ through the level the other way that makes a loss.
    #[arg(long, default_value_t = 0.25, value_name = "$")]
    stop: f64,
    /// Event time after the call within which the outcome must come: `120s`, `2m`, `90`.
    #[arg(long, default_value = "120s", value_parser = cli::parse_duration_s)]
    horizon: f64,
    /// How close spot must come to a level to count as a touch for the base rate
    /// [default: the engine's `touch_band`, $0.05].
    #[arg(long, value_name = "$")]
    touch_band: Option<f64>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also write one row per call to this CSV file.
    #[arg(long, value_name = "FILE.csv")]
    calls: Option<PathBuf>,
    /// Also draw the session (spot, levels, calls) into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Stop at the first malformed input item (exit 1) instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Tuning: re-run the engine over FILES for each value of a physics constant
    /// (`KEY=V1,V2,...`; twice for a grid of two) and print the edge of each.
    #[arg(long, value_name = "KEY=V1,V2,...")]
    sweep: Vec<sweep::Axis>,
    /// With --sweep: TOML file of physics constants the sweep starts from.
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// With --sweep: DBN files (merged by event time, as spm-replay does), or `-` for market
    /// events on stdin.
    #[arg(last = true, value_name = "FILES")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    bus: BusConfig,
}

const AFTER_HELP: &str = "\
A call is a level's signal turning to BREAK or REJECT. It wins when spot goes --target beyond the \
level (BREAK) or away from it (REJECT) before going --stop through it the other way, loses in the \
opposite case, and is open when neither happens within --horizon. The base rate scores every touch \
of a level without a call both ways; the edge is the win rate minus the base rate.

Examples:
  spm-replay day.dbn.zst opra.dbn.zst | spm-core --stdout | spm-eval --plot day.svg
  spm-lake cat --table levels/signals --date 2025-11-21 | spm-eval --format csv
  spm-eval --sweep break_score_threshold=70,80,90 -- day.dbn.zst opra.dbn.zst";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

fn main() -> ExitCode {
    spymaster::cli::generate_docs::<Args>();
    let args = Args::parse();
    cli::init_logging();
    cli::finish(run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    let settings = EvalSettings {
        target: args.target,
        stop: args.stop,
        horizon_s: args.horizon,
        touch_band: args
            .touch_band
            .unwrap_or(EvalSettings::default().touch_band),
    };
    settings.validate()?;
    if !args.sweep.is_empty() {
        return run_sweep(&args, settings);
    }
    if !args.files.is_empty() || args.config.is_some() {
        bail!("FILES and --config go with --sweep; without it spm-eval reads level_signals");
    }
    cli::stop_flag();
    let started = Instant::now();
    let mut evaluator = Evaluator::new(settings, args.plot.is_some());
    let counts = match args.input.unwrap_or_else(InputSource::auto) {
        InputSource::Stdin => input::score_pipe(PipeSource::stdin(), &mut evaluator, args.strict),
        nats => {
            let mut source = open_source(
                nats,
                &["levels.signals".to_owned()],
                args.from_start,
                &args.bus,
            )
            .context("opening the input")?;
            input::score_events(source.as_mut(), &mut evaluator, args.strict, args.count)
        }
    }
    .context("reading level_signals")?;
    let evaluation = evaluator.finish();
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(kind) = &counts.first_other {
        if evaluation.counts.snaps == 0 {
            bail!(
                "the input holds {} other events (the first a {kind}) and no level_signals: \
                 spm-eval scores the engine's calls, so run market data through spm-core first \
                 (spm-replay … | spm-core --stdout | spm-eval), or re-run it with --sweep -- FILES",
                cli::thousands(counts.other_events)
            );
        }
        tracing::info!(
            "skipped {} events that are not level_signals ({kind} first)",
            cli::thousands(counts.other_events)
        );
    }
    let c = &evaluation.counts;
    eprintln!(
        "spm-eval: {} snaps, {} level-snaps, {} calls in {elapsed:.2} s ({:.0} level-snaps/s){}",
        cli::thousands(c.snaps),
        cli::thousands(c.level_snaps),
        cli::thousands(evaluation.calls.len() as u64),
        c.level_snaps as f64 / elapsed.max(1e-9),
        if counts.bad > 0 {
            format!("; {} bad input items skipped", cli::thousands(counts.bad))
        } else {
            String::new()
        }
    );
    write_outputs(&args, &evaluation)
}

fn create(path: &PathBuf) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ))
}

fn write_outputs(args: &Args, evaluation: &Evaluation) -> anyhow::Result<()> {
    if let Some(path) = &args.calls {
        let mut out = create(path)?;
        report::write_calls_csv(&evaluation.calls, &mut out)
            .and_then(|()| out.flush())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        let title = match evaluation.counts.first_ts {
            Some(ts) => format!("SPY calls · {}", report::et_date(ts)),
            None => "SPY calls".to_string(),
        };
        std::fs::write(path, plot::render_svg(evaluation, &title))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let report = eval::report::build(evaluation);
    to_stdout("the report", |out| match args.format {
        Format::Table => report::write_table(&report, out),
        Format::Json => report::write_json(&report, out),
        Format::Csv => report::write_csv(&report, out),
    })
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn to_stdout(
    what: &str,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.with_context(|| format!("writing {what}")),
    }
}

fn run_sweep(args: &Args, settings: EvalSettings) -> anyhow::Result<()> {
    if args.calls.is_some() || args.plot.is_some() {
        bail!("--calls and --plot describe one run; they do not go with --sweep");
    }
    if args.files.is_empty() {
        bail!("--sweep needs the market data to re-run: spm-eval --sweep KEY=V1,V2 -- FILES...");
    }
    let base = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Config::from_toml_str(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Config::default(),
    };
    let points = sweep::grid(&base, &args.sweep)?;
    let started = Instant::now();
    let results = if args.files == [PathBuf::from("-")] {
        sweep::run(&points, settings, &mut PipeSource::stdin(), args.strict)?
    } else {
        let mut readers = Vec::with_capacity(args.files.len());
        for path in &args.files {
            readers.push(
                DbnEventReader::open(path, "replay")
                    .with_context(|| format!("opening {}", path.display()))?,
            );
        }
        let mut merge = Merge::new(readers);
        let results = sweep::run(&points, settings, &mut merge, args.strict)?;
        // A truncated or corrupt file ends its input early: the runs would be of part of it.
        if let Some(e) = merge
            .errors()
            .iter()
            .find(|e| args.strict || !e.is_recoverable())
        {
            bail!("{e} (the sweep would score only the events before it)");
        }
        results
    };
    eprintln!(
        "spm-eval: {} runs of the engine in {:.2} s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    to_stdout("the sweep", |out| match args.format {
        Format::Table => sweep::write_table(&results, out),
        Format::Json => sweep::write_json(&results, out),
        Format::Csv => sweep::write_csv(&results, out),
    })
}

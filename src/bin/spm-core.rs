//! `spm-core`: market events in, `level_signals` snaps out (PHYSICS.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use spymaster::bus::BusConfig;
use spymaster::cli;
use spymaster::core::{self, Clock, Config, Engine, RunOptions};
use spymaster::io::PipeFormat;
use spymaster::wiring::{InputSource, OutputTarget, Publishing, open_sink, open_source};

/// Turns market events into live BREAK / REJECT calls at SPY price levels.
#[derive(Debug, Parser)]
#[command(name = "spm-core", version)]
struct Args {
    /// Write snaps as NDJSON to stdout instead of NATS `levels.signals`.
    #[arg(long)]
    stdout: bool,
    /// Where events come from [default: stdin when it is a pipe or a file, else NATS `market.>`].
    #[arg(long, value_enum)]
    input: Option<InputSource>,
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
    /// Stop at the first malformed input item (exit 1) instead of skipping it.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    bus: BusConfig,
}

fn main() -> ExitCode {
    spymaster::cli::generate_docs::<Args>();
    let args = Args::parse();
    cli::init_logging();
    cli::finish(run(args))
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

fn run(args: Args) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    if args.print_config {
        print!("{}", config.to_toml_string());
        return Ok(());
    }
    cli::stop_flag();
    let input = args.input.unwrap_or_else(InputSource::auto);
    let output = if args.stdout {
        OutputTarget::Stdout
    } else {
        OutputTarget::Nats
    };
    let mut source = open_source(input, &["market.>".to_owned()], args.from_start, &args.bus)
        .context("opening the input")?;
    let mut sink = open_sink(
        output,
        PipeFormat::Ndjson,
        &args.bus,
        args.clock == Clock::Wall,
        Publishing::PerEvent,
    )
    .context("opening the output")?;
    let opts = RunOptions {
        strict: args.strict,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(config);
    let result = match args.clock {
        Clock::Event => core::run(&mut engine, &mut source, sink.as_mut(), &opts),
        Clock::Wall => core::run_wall_clock(&mut engine, source, sink.as_mut(), &opts),
    };
    eprint!("{}", engine.stats().report());
    result.context("spm-core")?;
    Ok(())
}

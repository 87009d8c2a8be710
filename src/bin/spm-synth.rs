//! spm-synth: write a realistic synthetic market (ES MBP-10 + trades, SPY 0DTE options, SPY
//! trades) as DBN files, optionally steered by a scenario script.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{NaiveDate, NaiveTime};
use clap::Parser;
use spymaster::synth::{self, Scenario, SynthConfig, scenario::TimeSpec};

#[derive(Parser, Debug)]
#[command(
    name = "spm-synth",
    version,
    about = "Generate a synthetic market as DBN files"
)]
struct Args {
    /// Seed of every random stream (same seed and arguments → byte-identical files).
    #[arg(long)]
    seed: Option<u64>,
    /// Session date (YYYY-MM-DD, ET).
    #[arg(long)]
    date: Option<NaiveDate>,
    /// Session start, ET time of day (HH:MM[:SS]).
    #[arg(long, value_parser = parse_clock)]
    start: Option<NaiveTime>,
    /// Session length: HH:MM:SS, MM:SS, or seconds.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<f64>,
    /// Scenario script (TOML); its [session] settings apply unless overridden by flags.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Output directory.
    #[arg(long, short = 'o', default_value = "synth-out")]
    out_dir: PathBuf,
    /// ES contract symbol.
    #[arg(long)]
    es_symbol: Option<String>,
    /// ES price at the start.
    #[arg(long)]
    es_start: Option<f64>,
    /// Mean ES book events per second (quiet regime, mid-day).
    #[arg(long)]
    event_rate: Option<f64>,
    /// Rate multiplier of the busy regime.
    #[arg(long)]
    busy_multiplier: Option<f64>,
    /// Annualised volatility of the ES fair price.
    #[arg(long)]
    volatility: Option<f64>,
    /// At-the-money implied volatility of the options.
    #[arg(long)]
    atm_vol: Option<f64>,
    /// Background 0DTE option trades per second.
    #[arg(long)]
    option_rate: Option<f64>,
    /// SPY trades per second (0: no SPY file).
    #[arg(long)]
    spy_rate: Option<f64>,
    /// SPY − ES/10 basis in dollars.
    #[arg(long)]
    spy_basis: Option<f64>,
    /// Strikes listed from spot − range to spot + range dollars.
    #[arg(long)]
    strike_range: Option<u32>,
    /// Scale of resting ES depth per level.
    #[arg(long)]
    depth_scale: Option<f64>,
    /// Share of ES book events that are market orders.
    #[arg(long)]
    trade_share: Option<f64>,
    /// zstd level (1-22).
    #[arg(long, default_value_t = 3)]
    zstd_level: i32,
    /// Write plain .dbn files.
    #[arg(long)]
    no_zstd: bool,
}

fn parse_clock(s: &str) -> Result<NaiveTime, String> {
    match TimeSpec::parse(s).map_err(|e| e.to_string())? {
        TimeSpec::Clock(t) => Ok(t),
        TimeSpec::Offset(_) => Err("expected an ET clock time like 10:00".into()),
    }
}

fn parse_duration(s: &str) -> Result<f64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Ok(secs);
    }
    match TimeSpec::parse(&format!("+{}", s.trim_start_matches('+'))).map_err(|e| e.to_string())? {
        TimeSpec::Offset(ns) => Ok(ns as f64 / 1e9),
        TimeSpec::Clock(_) => Err("expected HH:MM:SS".into()),
    }
}

/// A usage error (bad scenario or settings): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

fn main() -> std::process::ExitCode {
    spymaster::cli::generate_docs::<Args>();
    let args = Args::parse();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spm-synth: error: {e:#}");
            let usage = e.chain().any(|c| {
                c.is::<Usage>()
                    || matches!(
                        c.downcast_ref::<synth::SynthError>(),
                        Some(synth::SynthError::Config(_) | synth::SynthError::Scenario(_))
                    )
            });
            std::process::ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn run(args: Args) -> Result<()> {
    spymaster::cli::init_logging();

    let scenario = match &args.scenario {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Scenario::from_toml_str(&text).map_err(|e| Usage(format!("{}: {e}", p.display())))?
        }
        None => Scenario::empty(),
    };
    let mut cfg = SynthConfig::default();
    cfg.apply_session(&scenario.session);
    macro_rules! set { ($($f:ident),*) => { $( if let Some(v) = args.$f.clone() { cfg.$f = v; } )* } }
    set!(
        seed,
        date,
        start,
        es_symbol,
        es_start,
        event_rate,
        busy_multiplier,
        volatility,
        option_rate,
        spy_rate,
        spy_basis,
        strike_range,
        depth_scale,
        trade_share
    );
    if let Some(d) = args.duration {
        cfg.duration_s = d;
    }
    if let Some(v) = args.atm_vol {
        cfg.smile.atm = v;
    }
    cfg.zstd_level = (!args.no_zstd).then_some(args.zstd_level);

    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(1000);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {percent:>3}% {msg} [{elapsed_precise}<{eta_precise}]",
            )
            .expect("valid template"),
        );
        b
    });
    let report = |p: synth::Progress| {
        if let Some(b) = &bar {
            b.set_position(p.done_ns.saturating_mul(1000) / p.total_ns.max(1));
            b.set_message(format!("{} records", p.records));
        }
    };
    let t0 = std::time::Instant::now();
    let summary = synth::generate(&cfg, &scenario, &args.out_dir, Some(&report))
        .with_context(|| format!("generating into {}", args.out_dir.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for f in &summary.files {
        tracing::info!(path = %f.path.display(), records = f.records, "wrote");
    }
    tracing::info!(
        es_records = summary.es_records,
        es_trades = summary.es_trades,
        option_trades = summary.option_trades,
        spy_trades = summary.spy_trades,
        es_low = summary.es_low,
        es_high = summary.es_high,
        es_last = summary.es_last,
        skipped_actions = summary.skipped_actions,
        seconds = t0.elapsed().as_secs_f64(),
        "done"
    );
    Ok(())
}
